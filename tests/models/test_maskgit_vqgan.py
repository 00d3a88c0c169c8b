import math

import pytest
import torch

from tests.helpers import maskgit_reference as ref
from vistok.data.bundled import load_samples
from vistok.models.state_dict import CheckpointMismatch
from vistok.models.maskgit_vqgan.convert import convert_maskgit_state_dict, load_maskgit_state_dict
from vistok.models.maskgit_vqgan import MaskGITVQGAN, MaskGITVQGANConfig

# small but with every structural case: a width change (output-side shortcut), a same-width level,
# two blocks per level, and two downsamplings (f4)
SPEC = dict(hidden=32, mult=(1, 2, 2), blocks=2, z=8, codebook=16)
FULL = dict(hidden=128, mult=(1, 1, 2, 2, 4), blocks=2, z=256, codebook=1024)


def config(spec=SPEC, image_size=32, **kw) -> MaskGITVQGANConfig:
    return MaskGITVQGANConfig(image_size=image_size, hidden_channels=spec["hidden"], channel_mult=spec["mult"],
                              num_res_blocks=spec["blocks"], z_channels=spec["z"], codebook_size=spec["codebook"],
                              **kw)


def load_tiny(seed=1):
    official = ref.official_state_dict(SPEC, seed=seed)
    model = load_maskgit_state_dict(MaskGITVQGAN(config()), official, "tiny official").eval()
    return official, model


def sample_images() -> torch.Tensor:
    return torch.nn.functional.interpolate(load_samples(), size=(32, 32), mode="area")


def test_converted_official_weights_match_reference_forward():
    official, model = load_tiny()
    images = sample_images()
    with torch.no_grad():
        ref_ids, ref_z = ref.encode(official, SPEC, images)
        ids = model.encode(images)
        assert ids.shape == (4, 64) and model.num_tokens == 64
        assert torch.equal(ids, ref_ids)
        assert ids.unique().numel() > 3 and not torch.equal(ids[0], ids[1])
        assert torch.allclose(model.encoder(images), ref_z, atol=1e-5)
        ref_img = ref.decode(official, SPEC, ids, 8, 8)
        img = model.decode(ids)
        assert img.shape == (4, 3, 32, 32)
        assert torch.allclose(img, ref_img, atol=1e-4, rtol=1e-4), (img - ref_img).abs().max()
        assert torch.equal(model.decode(ids.reshape(4, 8, 8)), img)
        assert torch.equal(model.decode(ids.int()), img)
        out = model(images)
    assert torch.equal(out.indices, ids) and torch.allclose(out.recon, img, atol=1e-5)
    assert out.latent.shape == (4, 8, 8, 8) and out.loss.ndim == 0


def test_converter_renames_codebook_and_fills_quantizer_state():
    official = ref.official_state_dict(SPEC)
    state = convert_maskgit_state_dict(official, config())
    assert "quantize.embedding.weight" not in state
    assert torch.equal(state["quantize.embed"], official["quantize.embedding.weight"])
    assert torch.equal(state["quantize.cluster_size"], torch.ones(16)) and bool(state["quantize.initted"])
    assert set(state) == set(MaskGITVQGAN(config()).state_dict())


def test_strict_loading_names_missing_and_unexpected_keys():
    official = ref.official_state_dict(SPEC)
    del official["encoder.down.1.block.0.nin_shortcut.weight"]
    official["decoder.extra_thing"] = torch.zeros(1)
    with pytest.raises(CheckpointMismatch) as err:
        load_maskgit_state_dict(MaskGITVQGAN(config()), official, "maskgit.bin")
    msg = str(err.value)
    assert "maskgit.bin" in msg and "encoder.down.1.block.0.nin_shortcut.weight" in msg
    assert "decoder.extra_thing" in msg


def test_shape_mismatch_is_reported():
    official = ref.official_state_dict(SPEC)
    with pytest.raises(ValueError, match="quantize.embed"):
        load_maskgit_state_dict(MaskGITVQGAN(config(dict(SPEC, codebook=32))), official, "x")


def test_full_size_model_matches_official_layout_and_parameter_count():
    with torch.device("meta"):
        model = MaskGITVQGAN(MaskGITVQGANConfig())
    shapes = ref.official_shapes(FULL)
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    converted = {k: tuple(v.shape) for k, v in convert_maskgit_state_dict(
        {k: torch.empty(s, device="meta") for k, s in shapes.items()}, model.config).items()}
    assert converted == own
    total = sum(p.numel() for p in model.parameters())
    print(f"MaskGIT-VQGAN f16-256 parameters: {total:,}")
    assert total == sum(math.prod(s) for s in shapes.values()) == 54_515_587
    assert round(sum(p.numel() for p in model.decoder.parameters()) / 1e6, 1) == 30.5
    assert model.num_tokens == 256 and tuple(model.quantize.embed.shape) == (1024, 256)


def test_f16_round_trip_shapes_and_id_range():
    narrow = dict(FULL, hidden=32, blocks=1, z=8, codebook=16)
    model = MaskGITVQGAN(config(narrow, image_size=256)).eval()
    assert model.config.downsample_factor == 16 and model.num_tokens == 256
    with torch.no_grad():
        ids = model.encode(torch.rand(1, 3, 256, 256))
        assert ids.shape == (1, 256) and ids.dtype == torch.long
        assert 0 <= int(ids.min()) and int(ids.max()) < 16
        assert model.decode(ids).shape == (1, 3, 256, 256)
        wide = model.encode(torch.rand(1, 3, 128, 256))  # 8 x 16 grid, row-major
        assert wide.shape == (1, 128)
        assert model.decode(wide.reshape(1, 8, 16)).shape == (1, 3, 128, 256)
        with pytest.raises(ValueError, match="square"):
            model.decode(wide)
        with pytest.raises(TypeError):
            model.decode(wide.float())


def test_config_validation_and_dict_round_trip():
    cfg = config()
    assert MaskGITVQGANConfig(**cfg.to_dict()) == cfg
    model = MaskGITVQGAN(dict(cfg.to_dict(), channel_mult=[1, 2, 2]))  # as read back from JSON
    assert model.config == cfg and MaskGITVQGAN.family == "maskgit_vqgan"
    with pytest.raises(ValueError, match="GroupNorm"):
        MaskGITVQGANConfig(hidden_channels=48)
    with pytest.raises(ValueError, match="multiple"):
        MaskGITVQGANConfig(image_size=200)
    with pytest.raises(ValueError, match="channel_mult"):
        MaskGITVQGANConfig(channel_mult=())
    with pytest.raises(ValueError, match="codebook_size"):
        MaskGITVQGANConfig(codebook_size=0)


def test_save_and_load_pretrained(tmp_path):
    _, model = load_tiny()
    model.save_pretrained(tmp_path / "tok")
    loaded = MaskGITVQGAN.from_pretrained(tmp_path / "tok")
    assert loaded.config == model.config
    x = sample_images()[:2]
    with torch.no_grad():
        assert torch.equal(loaded.encode(x), model.encode(x))


def test_gradients_flow_in_training():
    model = MaskGITVQGAN(config()).train()
    out = model(torch.rand(2, 3, 32, 32))
    ((out.recon - 0.5).pow(2).mean() + out.loss).backward()
    assert model.encoder.conv_in.weight.grad.abs().sum() > 0
    assert model.quantize.embed.grad.abs().sum() > 0
    assert model.decoder.conv_out.weight.grad.abs().sum() > 0
