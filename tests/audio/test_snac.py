"""SNAC: ids layout and rates, first-k levels, batched unequal lengths == each item alone, the
official layout (keys of snac 1.2.1 for a tiny config) converts strictly, errors, the release cards."""
import pytest
import torch

from audiotok.models.snac import PAD_ID, SNAC, SNACConfig
from audiotok.models.snac.convert import convert_snac_state_dict, load_snac_state_dict, to_official_state_dict
from vistok.hub.catalogue import get_card
from vistok.models.state_dict import CheckpointMismatch
from vistok.registry import get_family

#: ``snac.SNAC(sampling_rate=1000, encoder_dim=16, encoder_rates=[2, 3], decoder_dim=64,
#: decoder_rates=[3, 2], attn_window_size=4, codebook_size=16, codebook_dim=4, vq_strides=[4, 2, 1],
#: noise=True, depthwise=True).state_dict()`` (snac 1.2.1), "key shape" in its order.
OFFICIAL_KEYS = """
encoder.block.0.bias 16
encoder.block.0.parametrizations.weight.original0 16x1x1
encoder.block.0.parametrizations.weight.original1 16x1x7
encoder.block.1.block.0.block.0.alpha 1x16x1
encoder.block.1.block.0.block.1.bias 16
encoder.block.1.block.0.block.1.parametrizations.weight.original0 16x1x1
encoder.block.1.block.0.block.1.parametrizations.weight.original1 16x1x7
encoder.block.1.block.0.block.2.alpha 1x16x1
encoder.block.1.block.0.block.3.bias 16
encoder.block.1.block.0.block.3.parametrizations.weight.original0 16x1x1
encoder.block.1.block.0.block.3.parametrizations.weight.original1 16x16x1
encoder.block.1.block.1.block.0.alpha 1x16x1
encoder.block.1.block.1.block.1.bias 16
encoder.block.1.block.1.block.1.parametrizations.weight.original0 16x1x1
encoder.block.1.block.1.block.1.parametrizations.weight.original1 16x1x7
encoder.block.1.block.1.block.2.alpha 1x16x1
encoder.block.1.block.1.block.3.bias 16
encoder.block.1.block.1.block.3.parametrizations.weight.original0 16x1x1
encoder.block.1.block.1.block.3.parametrizations.weight.original1 16x16x1
encoder.block.1.block.2.block.0.alpha 1x16x1
encoder.block.1.block.2.block.1.bias 16
encoder.block.1.block.2.block.1.parametrizations.weight.original0 16x1x1
encoder.block.1.block.2.block.1.parametrizations.weight.original1 16x1x7
encoder.block.1.block.2.block.2.alpha 1x16x1
encoder.block.1.block.2.block.3.bias 16
encoder.block.1.block.2.block.3.parametrizations.weight.original0 16x1x1
encoder.block.1.block.2.block.3.parametrizations.weight.original1 16x16x1
encoder.block.1.block.3.alpha 1x16x1
encoder.block.1.block.4.bias 32
encoder.block.1.block.4.parametrizations.weight.original0 32x1x1
encoder.block.1.block.4.parametrizations.weight.original1 32x16x4
encoder.block.2.block.0.block.0.alpha 1x32x1
encoder.block.2.block.0.block.1.bias 32
encoder.block.2.block.0.block.1.parametrizations.weight.original0 32x1x1
encoder.block.2.block.0.block.1.parametrizations.weight.original1 32x1x7
encoder.block.2.block.0.block.2.alpha 1x32x1
encoder.block.2.block.0.block.3.bias 32
encoder.block.2.block.0.block.3.parametrizations.weight.original0 32x1x1
encoder.block.2.block.0.block.3.parametrizations.weight.original1 32x32x1
encoder.block.2.block.1.block.0.alpha 1x32x1
encoder.block.2.block.1.block.1.bias 32
encoder.block.2.block.1.block.1.parametrizations.weight.original0 32x1x1
encoder.block.2.block.1.block.1.parametrizations.weight.original1 32x1x7
encoder.block.2.block.1.block.2.alpha 1x32x1
encoder.block.2.block.1.block.3.bias 32
encoder.block.2.block.1.block.3.parametrizations.weight.original0 32x1x1
encoder.block.2.block.1.block.3.parametrizations.weight.original1 32x32x1
encoder.block.2.block.2.block.0.alpha 1x32x1
encoder.block.2.block.2.block.1.bias 32
encoder.block.2.block.2.block.1.parametrizations.weight.original0 32x1x1
encoder.block.2.block.2.block.1.parametrizations.weight.original1 32x1x7
encoder.block.2.block.2.block.2.alpha 1x32x1
encoder.block.2.block.2.block.3.bias 32
encoder.block.2.block.2.block.3.parametrizations.weight.original0 32x1x1
encoder.block.2.block.2.block.3.parametrizations.weight.original1 32x32x1
encoder.block.2.block.3.alpha 1x32x1
encoder.block.2.block.4.bias 64
encoder.block.2.block.4.parametrizations.weight.original0 64x1x1
encoder.block.2.block.4.parametrizations.weight.original1 64x32x6
encoder.block.3.norm.weight 64
encoder.block.3.norm.bias 64
encoder.block.3.to_qkv.weight 192x64
encoder.block.3.rel_pos.inv_freq 32
encoder.block.3.to_out.weight 64x64
encoder.block.4.bias 64
encoder.block.4.parametrizations.weight.original0 64x1x1
encoder.block.4.parametrizations.weight.original1 64x1x7
quantizer.quantizers.0.in_proj.bias 4
quantizer.quantizers.0.in_proj.parametrizations.weight.original0 4x1x1
quantizer.quantizers.0.in_proj.parametrizations.weight.original1 4x64x1
quantizer.quantizers.0.out_proj.bias 64
quantizer.quantizers.0.out_proj.parametrizations.weight.original0 64x1x1
quantizer.quantizers.0.out_proj.parametrizations.weight.original1 64x4x1
quantizer.quantizers.0.codebook.weight 16x4
quantizer.quantizers.1.in_proj.bias 4
quantizer.quantizers.1.in_proj.parametrizations.weight.original0 4x1x1
quantizer.quantizers.1.in_proj.parametrizations.weight.original1 4x64x1
quantizer.quantizers.1.out_proj.bias 64
quantizer.quantizers.1.out_proj.parametrizations.weight.original0 64x1x1
quantizer.quantizers.1.out_proj.parametrizations.weight.original1 64x4x1
quantizer.quantizers.1.codebook.weight 16x4
quantizer.quantizers.2.in_proj.bias 4
quantizer.quantizers.2.in_proj.parametrizations.weight.original0 4x1x1
quantizer.quantizers.2.in_proj.parametrizations.weight.original1 4x64x1
quantizer.quantizers.2.out_proj.bias 64
quantizer.quantizers.2.out_proj.parametrizations.weight.original0 64x1x1
quantizer.quantizers.2.out_proj.parametrizations.weight.original1 64x4x1
quantizer.quantizers.2.codebook.weight 16x4
decoder.model.0.bias 64
decoder.model.0.parametrizations.weight.original0 64x1x1
decoder.model.0.parametrizations.weight.original1 64x1x7
decoder.model.1.bias 64
decoder.model.1.parametrizations.weight.original0 64x1x1
decoder.model.1.parametrizations.weight.original1 64x64x1
decoder.model.2.norm.weight 64
decoder.model.2.norm.bias 64
decoder.model.2.to_qkv.weight 192x64
decoder.model.2.rel_pos.inv_freq 32
decoder.model.2.to_out.weight 64x64
decoder.model.3.block.0.alpha 1x64x1
decoder.model.3.block.1.bias 32
decoder.model.3.block.1.parametrizations.weight.original0 64x1x1
decoder.model.3.block.1.parametrizations.weight.original1 64x32x6
decoder.model.3.block.2.linear.parametrizations.weight.original0 32x1x1
decoder.model.3.block.2.linear.parametrizations.weight.original1 32x32x1
decoder.model.3.block.3.block.0.alpha 1x32x1
decoder.model.3.block.3.block.1.bias 32
decoder.model.3.block.3.block.1.parametrizations.weight.original0 32x1x1
decoder.model.3.block.3.block.1.parametrizations.weight.original1 32x1x7
decoder.model.3.block.3.block.2.alpha 1x32x1
decoder.model.3.block.3.block.3.bias 32
decoder.model.3.block.3.block.3.parametrizations.weight.original0 32x1x1
decoder.model.3.block.3.block.3.parametrizations.weight.original1 32x32x1
decoder.model.3.block.4.block.0.alpha 1x32x1
decoder.model.3.block.4.block.1.bias 32
decoder.model.3.block.4.block.1.parametrizations.weight.original0 32x1x1
decoder.model.3.block.4.block.1.parametrizations.weight.original1 32x1x7
decoder.model.3.block.4.block.2.alpha 1x32x1
decoder.model.3.block.4.block.3.bias 32
decoder.model.3.block.4.block.3.parametrizations.weight.original0 32x1x1
decoder.model.3.block.4.block.3.parametrizations.weight.original1 32x32x1
decoder.model.3.block.5.block.0.alpha 1x32x1
decoder.model.3.block.5.block.1.bias 32
decoder.model.3.block.5.block.1.parametrizations.weight.original0 32x1x1
decoder.model.3.block.5.block.1.parametrizations.weight.original1 32x1x7
decoder.model.3.block.5.block.2.alpha 1x32x1
decoder.model.3.block.5.block.3.bias 32
decoder.model.3.block.5.block.3.parametrizations.weight.original0 32x1x1
decoder.model.3.block.5.block.3.parametrizations.weight.original1 32x32x1
decoder.model.4.block.0.alpha 1x32x1
decoder.model.4.block.1.bias 16
decoder.model.4.block.1.parametrizations.weight.original0 32x1x1
decoder.model.4.block.1.parametrizations.weight.original1 32x16x4
decoder.model.4.block.2.linear.parametrizations.weight.original0 16x1x1
decoder.model.4.block.2.linear.parametrizations.weight.original1 16x16x1
decoder.model.4.block.3.block.0.alpha 1x16x1
decoder.model.4.block.3.block.1.bias 16
decoder.model.4.block.3.block.1.parametrizations.weight.original0 16x1x1
decoder.model.4.block.3.block.1.parametrizations.weight.original1 16x1x7
decoder.model.4.block.3.block.2.alpha 1x16x1
decoder.model.4.block.3.block.3.bias 16
decoder.model.4.block.3.block.3.parametrizations.weight.original0 16x1x1
decoder.model.4.block.3.block.3.parametrizations.weight.original1 16x16x1
decoder.model.4.block.4.block.0.alpha 1x16x1
decoder.model.4.block.4.block.1.bias 16
decoder.model.4.block.4.block.1.parametrizations.weight.original0 16x1x1
decoder.model.4.block.4.block.1.parametrizations.weight.original1 16x1x7
decoder.model.4.block.4.block.2.alpha 1x16x1
decoder.model.4.block.4.block.3.bias 16
decoder.model.4.block.4.block.3.parametrizations.weight.original0 16x1x1
decoder.model.4.block.4.block.3.parametrizations.weight.original1 16x16x1
decoder.model.4.block.5.block.0.alpha 1x16x1
decoder.model.4.block.5.block.1.bias 16
decoder.model.4.block.5.block.1.parametrizations.weight.original0 16x1x1
decoder.model.4.block.5.block.1.parametrizations.weight.original1 16x1x7
decoder.model.4.block.5.block.2.alpha 1x16x1
decoder.model.4.block.5.block.3.bias 16
decoder.model.4.block.5.block.3.parametrizations.weight.original0 16x1x1
decoder.model.4.block.5.block.3.parametrizations.weight.original1 16x16x1
decoder.model.5.alpha 1x16x1
decoder.model.6.bias 1
decoder.model.6.parametrizations.weight.original0 1x1x1
decoder.model.6.parametrizations.weight.original1 1x16x7
"""


def tiny_config(**overrides):
    cfg = dict(sample_rate=1000, encoder_dim=16, encoder_rates=[2, 3], decoder_dim=64, decoder_rates=[3, 2],
               attn_window_size=4, codebook_size=16, codebook_dim=4, vq_strides=[4, 2, 1])
    cfg.update(overrides)
    return SNACConfig(**cfg)


@torch.no_grad()
def tiny_model(seed=0, **overrides):
    torch.manual_seed(seed)
    model = SNAC(tiny_config(**overrides)).eval()
    for name, p in model.named_parameters():
        if name.endswith(("alpha", "bias", "original0")):
            p.mul_(torch.exp(0.2 * torch.randn(p.shape))) if not name.endswith("bias") else p.add_(0.02 * torch.randn(p.shape))
    return model


def _wav(batch, samples, seed=0):
    return torch.randn(batch, samples, generator=torch.Generator().manual_seed(seed)) * 0.3


def test_rates_layout_and_first_k_levels():
    model = tiny_model()
    cfg = model.config
    assert (cfg.encoder_hop, model.hop_length, model.pad_multiple) == (6, 24, 24)
    assert model.num_levels == 3 and model.num_codebooks == 7 and cfg.level_rates == [1000 / 24, 1000 / 12, 1000 / 6]
    x = _wav(2, 50)  # padded to 72 samples: 3 positions
    with torch.no_grad():
        ids = model.encode(x)
        assert ids.shape == (2, 7, 3) and ids.dtype == torch.int64 and model.positions(50) == 3
        levels = model.ids_to_levels(ids)
        assert [tuple(t.shape) for t in levels] == [(2, 3), (2, 6), (2, 12)]
        assert torch.equal(model.levels_to_ids(levels), ids)
        for k, rows in ((1, 1), (2, 3)):
            assert torch.equal(model.encode(x, num_quantizers=k), ids[:, :rows])
            assert model.decode(ids[:, :rows]).shape == (2, 72)
        gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731
        wav = model.decode(ids, generator=gen())
        assert wav.shape == (2, 72) and torch.equal(wav, model.decode(ids, generator=gen()))
        assert model(x).recon.shape == (2, 50)
    assert len(ids[:, 3:].unique()) > 2


def test_batched_unequal_lengths_equal_each_item_alone():
    model = tiny_model()
    lengths = [100, 49, 7]
    batch = torch.randn(3, 100)
    with torch.no_grad():
        ids = model.encode(batch, lengths=torch.tensor(lengths))
        gens = [torch.Generator().manual_seed(i) for i in range(3)]
        wav = model.decode(ids, generator=gens)
        for i, n in enumerate(lengths):
            alone = model.encode(batch[i, :n])
            f = alone.shape[-1]
            assert torch.equal(ids[i, :, :f], alone[0]) and (ids[i, :, f:] == PAD_ID).all()
            single = model.decode(alone, generator=torch.Generator().manual_seed(i))[0]
            torch.testing.assert_close(wav[i, : single.shape[-1]], single, rtol=0, atol=1e-6)
            assert not wav[i, single.shape[-1]:].any()


def test_official_layout_converts_strictly():
    model = tiny_model()
    official = to_official_state_dict(model.state_dict(), model.config)
    expected = dict(line.split() for line in OFFICIAL_KEYS.strip().splitlines())
    assert {k: "x".join(map(str, v.shape)) for k, v in official.items()} == expected
    again = load_snac_state_dict(SNAC(tiny_config()).eval(), official, "official")
    x = _wav(1, 60)
    with torch.no_grad():
        assert torch.equal(again.encode(x), model.encode(x))
    legacy = {k.replace("parametrizations.weight.original0", "weight_g")
              .replace("parametrizations.weight.original1", "weight_v"): v for k, v in official.items()}
    assert convert_snac_state_dict(legacy, model.config).keys() == model.state_dict().keys()
    with pytest.raises(CheckpointMismatch, match="unexpected .*quantizer.quantizers.5.codebook.weight"):
        load_snac_state_dict(SNAC(tiny_config()), dict(official, **{"quantizer.quantizers.5.codebook.weight": torch.zeros(16, 4)}))
    with pytest.raises(CheckpointMismatch, match="missing .*quantizer.levels.2"):
        load_snac_state_dict(SNAC(tiny_config()), {k: v for k, v in official.items() if "quantizers.2." not in k})


def test_bad_input_is_named():
    model = tiny_model()
    ids = model.encode(_wav(1, 30))
    with pytest.raises(ValueError, match="num_quantizers must be an integer in 1..3"):
        model.encode(_wav(1, 30), num_quantizers=4)
    with pytest.raises(ValueError, match="rows; the first k levels"):
        model.decode(ids[:, :2])
    with pytest.raises(ValueError, match="0..15"):
        model.decode(ids + 16)
    with pytest.raises(ValueError, match="mono"):
        model.encode(torch.randn(1, 2, 30))
    with pytest.raises(ValueError, match="vq_strides .* must divide"):
        tiny_config(vq_strides=[4, 3])
    with pytest.raises(ValueError, match="latent_dim must be"):
        tiny_config(latent_dim=32)
    with pytest.raises(ValueError, match="multiple of 64"):
        tiny_config(encoder_dim=8)


@pytest.mark.parametrize("name,params", [("24khz", 19_842_914), ("32khz", 54_546_338), ("44khz", 54_546_338)])
def test_release_cards_build_at_full_size(name, params):
    card = get_card(f"snac-{name}")
    assert card.family == "snac" and card.source.repo == f"hubertsiuzdak/snac_{name}" and card.source.sha256 is None
    with torch.device("meta"):
        model = get_family("snac").build(card.config)
    assert model.config.to_dict() == SNACConfig.preset(name).to_dict()
    assert sum(p.numel() for p in model.parameters()) == params and round(params / 1e6, 1) == card.params_millions
