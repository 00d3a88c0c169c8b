"""LlamaGen VQ on a tiny config: the token grid and its range, the [0, 1] contract around the
release's [-1, 1] network, the l2-normalised lookup, batching, strict loading of the release's layout
(every key of both full-size presets, from the official key list in tests/assets), and bad input."""
import argparse
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from vistok.data.bundled import load_samples
from vistok.models.llamagen import LlamaGenVQ, LlamaGenVQConfig, preset
from vistok.models.llamagen.convert import convert_llamagen_state_dict, load_llamagen_state_dict
from vistok.models.state_dict import CheckpointMismatch, read_state_dict

KEYS = Path(__file__).resolve().parents[1] / "assets" / "llamagen_official_keys.json"
# two levels (one downsampling, attention at the lowest level and in the middle), a width change
TINY = dict(image_size=32, base_channels=32, encoder_ch_mult=(1, 2), decoder_ch_mult=(1, 2), num_res_blocks=1,
            z_channels=32, codebook_size=64, codebook_dim=4)


def tiny_model(seed=0, **changes) -> LlamaGenVQ:
    torch.manual_seed(seed)
    model = LlamaGenVQ(dict(TINY, **changes)).eval()
    with torch.no_grad():  # codes spread like the latents, so the ids depend on the image
        model.quantize.embed.copy_(torch.randn(model.quantize.embed.shape))
    return model


def images(size=32) -> torch.Tensor:
    return F.interpolate(load_samples(), size=(size, size), mode="area")


def official_layout(model: LlamaGenVQ) -> dict:
    """``model``'s weights as the release stores them (the inverse of the converter)."""
    state = {k: v.clone() for k, v in model.state_dict().items() if k not in ("quantize.cluster_size", "quantize.initted")}
    state["quantize.embedding.weight"] = state.pop("quantize.embed")
    state["quantize.codebook_used"] = torch.zeros(65536)
    return state


@torch.no_grad()
def test_ids_grid_range_and_round_trip_contract():
    model = tiny_model()
    x = images()
    ids = model.encode(x)
    assert ids.shape == (4, 256) and ids.dtype == torch.long and model.num_tokens == 256
    assert 0 <= int(ids.min()) and int(ids.max()) < model.codebook_size == 64
    assert ids.unique().numel() > 8 and not torch.equal(ids[0], ids[1])
    img = model.decode(ids)
    assert img.shape == x.shape
    assert torch.equal(model.decode(ids.reshape(4, 16, 16)), img) and torch.equal(model.decode(ids.int()), img)
    out = model(x)
    assert torch.equal(out.indices, ids) and torch.allclose(out.recon, img, atol=1e-6)
    assert out.latent.shape == (4, 4, 16, 16) and out.loss.ndim == 0


@torch.no_grad()
def test_network_sees_minus_one_to_one_and_decoder_gets_unit_codes():
    model = tiny_model()
    x = images()
    z = model.quant_conv(model.encoder(x * 2 - 1))  # the release's input range
    assert torch.equal(model.latent(x), z)
    codes = F.normalize(model.quantize.embed, dim=-1)
    cosine = torch.einsum("bchw,kc->bhwk", F.normalize(z, dim=1), codes)
    assert torch.equal(model.encode(x), cosine.argmax(-1).flatten(1))
    z_q = model(x).latent
    assert torch.allclose(z_q.norm(dim=1), torch.ones(()), atol=1e-5)  # unit vectors, not raw codes
    assert torch.allclose(model.decode_latent(z_q), (model.decoder(model.post_quant_conv(z_q)) + 1) / 2)


@torch.no_grad()
def test_batched_equals_each_image_alone_and_other_sizes_work():
    model = tiny_model()
    x = images()
    ids = model.encode(x)
    for i in range(len(x)):
        assert torch.equal(model.encode(x[i:i + 1]), ids[i:i + 1])
    assert torch.allclose(model.decode(ids[1:2]), model.decode(ids)[1:2], atol=1e-5)
    wide = model.encode(F.interpolate(x, size=(16, 32), mode="area"))  # 8 x 16 grid, row-major
    assert wide.shape == (4, 128) and model.decode(wide.reshape(4, 8, 16)).shape == (4, 3, 16, 32)


def test_bad_input_is_named():
    model = tiny_model()
    with pytest.raises(ValueError, match="multiple of the downsampling factor 2"):
        model.encode(torch.rand(1, 3, 31, 32))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model.encode(torch.rand(3, 32, 32))
    with pytest.raises(TypeError, match="integer token ids"):
        model.decode(torch.zeros(1, 16))
    with pytest.raises(ValueError, match="square grid"):
        model.decode(torch.zeros(1, 8, dtype=torch.long))
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 64\), got \[64, 64\]"):
        model.decode(torch.full((1, 16), 64))


def test_config_validation_and_presets():
    assert LlamaGenVQConfig(**LlamaGenVQConfig(**TINY).to_dict()) == LlamaGenVQConfig(**TINY)
    assert LlamaGenVQ(dict(TINY, encoder_ch_mult=[1, 2])).config == LlamaGenVQConfig(**TINY)  # read from JSON
    assert preset("VQ-8").downsample_factor == 8 and preset("VQ-16").grid_size == 16
    assert preset("VQ-16") == LlamaGenVQConfig() and preset("VQ-8", image_size=512).grid_size == 64
    with pytest.raises(ValueError, match="unknown LlamaGen VQ preset 'VQ-32'"):
        preset("VQ-32")
    with pytest.raises(ValueError, match="GroupNorm"):
        LlamaGenVQConfig(base_channels=48)
    with pytest.raises(ValueError, match="same length"):
        LlamaGenVQConfig(decoder_ch_mult=(1, 2))
    with pytest.raises(ValueError, match="image_size 200 is not a multiple"):
        LlamaGenVQConfig(image_size=200)
    with pytest.raises(ValueError, match="entropy_loss_ratio"):
        LlamaGenVQConfig(entropy_loss_ratio=0.1)
    with pytest.raises(ValueError, match="codebook_dim must be positive"):
        LlamaGenVQConfig(codebook_dim=0)


@pytest.mark.parametrize("name", ["VQ-16", "VQ-8"])
def test_every_official_key_of_the_full_size_presets_converts(name):
    official = json.loads(KEYS.read_text())["presets"][name]
    with torch.device("meta"):
        model = LlamaGenVQ(preset(name))
        state = convert_llamagen_state_dict({k: torch.empty(s) for k, s in official.items()}, model.config)
    assert {k: tuple(v.shape) for k, v in state.items()} == {k: tuple(v.shape) for k, v in model.state_dict().items()}
    total = sum(p.numel() for p in model.parameters())
    expected = sum(math.prod(s) for k, s in official.items() if k != "quantize.codebook_used")
    assert total == expected == {"VQ-16": 71_883_403, "VQ-8": 70_109_835}[name]  # the README's 72M and 70M


def test_release_file_layout_loads_and_reproduces(tmp_path):
    model = tiny_model(seed=3)
    path = tmp_path / "vq_ds16_c2i.pt"
    # as the release's training script saves: weights, step count and its argparse.Namespace
    release = {"model": official_layout(model), "steps": 10, "args": argparse.Namespace(vq_model="VQ-16", lr=1e-4)}
    torch.save(release, path)
    loaded = load_llamagen_state_dict(LlamaGenVQ(TINY).eval(), read_state_dict(path), str(path))
    whole = load_llamagen_state_dict(LlamaGenVQ(TINY).eval(), release, "dict")
    x = images()
    with torch.no_grad():
        ids = model.encode(x)
        assert torch.equal(loaded.encode(x), ids) and torch.equal(whole.encode(x), ids)
        assert torch.equal(loaded.decode(ids), model.decode(ids))
    assert "quantize.codebook_used" not in convert_llamagen_state_dict(official_layout(model), model.config)


def test_strict_loading_names_missing_and_unexpected_keys():
    state = official_layout(tiny_model())
    del state["encoder.conv_blocks.1.res.0.nin_shortcut.weight"]
    state["decoder.extra"] = torch.zeros(1)
    with pytest.raises(CheckpointMismatch) as err:
        load_llamagen_state_dict(LlamaGenVQ(TINY), state, "vq_ds16_c2i.pt")
    msg = str(err.value)
    assert "vq_ds16_c2i.pt" in msg and "encoder.conv_blocks.1.res.0.nin_shortcut.weight" in msg
    assert "decoder.extra" in msg
    with pytest.raises(ValueError, match="quantize.embed"):
        load_llamagen_state_dict(LlamaGenVQ(dict(TINY, codebook_size=32)), official_layout(tiny_model()), "x")


def test_save_and_load_pretrained(tmp_path):
    model = tiny_model(seed=2)
    model.save_pretrained(tmp_path / "tok")
    loaded = LlamaGenVQ.from_pretrained(tmp_path / "tok")
    assert loaded.config == model.config
    with torch.no_grad():
        assert torch.equal(loaded.encode(images()[:2]), model.encode(images()[:2]))


def test_training_pass_reaches_every_part():
    model = tiny_model().train()
    out = model(torch.rand(2, 3, 32, 32))
    ((out.recon - 0.5).pow(2).mean() + out.loss).backward()
    for param in (model.encoder.conv_in.weight, model.quant_conv.weight, model.quantize.embed,
                  model.post_quant_conv.weight, model.decoder.conv_out.weight):
        assert param.grad is not None and param.grad.abs().sum() > 0
    assert set(out.stats) >= {"commitment", "codebook"}
