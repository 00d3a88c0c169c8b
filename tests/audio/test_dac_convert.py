"""DAC converters: the official descript-audio-codec layout (legacy weight norm, or the
parametrization form), transformers' DacModel layout (weight norm removed), the way back, the
release metadata's config and the errors strict loading gives."""
import pytest
import torch

from audiotok.models.dac import DAC
from audiotok.models.dac.convert import (config_from_kwargs, convert_dac_state_dict, detect_layout,
                                         load_dac_state_dict, module_table, resolve_card_config,
                                         to_official_state_dict)
from tests.audio.test_dac import _wav, tiny_config, tiny_model
from vistok.errors import InputError
from vistok.models.state_dict import CheckpointMismatch, read_state_dict
from vistok.registry import get_family

#: The state dict of the official ``dac.DAC(encoder_dim=4, encoder_rates=[2, 3], decoder_dim=16,
#: decoder_rates=[3, 2], n_codebooks=4, codebook_size=16, codebook_dim=4)`` (descript-audio-codec
#: 1.0.0), listed as "key shape" in its order: the layout the released ``.pth`` files hold.
OFFICIAL_KEYS = """
encoder.block.0.bias 4
encoder.block.0.weight_g 4x1x1
encoder.block.0.weight_v 4x1x7
encoder.block.1.block.0.block.0.alpha 1x4x1
encoder.block.1.block.0.block.1.bias 4
encoder.block.1.block.0.block.1.weight_g 4x1x1
encoder.block.1.block.0.block.1.weight_v 4x4x7
encoder.block.1.block.0.block.2.alpha 1x4x1
encoder.block.1.block.0.block.3.bias 4
encoder.block.1.block.0.block.3.weight_g 4x1x1
encoder.block.1.block.0.block.3.weight_v 4x4x1
encoder.block.1.block.1.block.0.alpha 1x4x1
encoder.block.1.block.1.block.1.bias 4
encoder.block.1.block.1.block.1.weight_g 4x1x1
encoder.block.1.block.1.block.1.weight_v 4x4x7
encoder.block.1.block.1.block.2.alpha 1x4x1
encoder.block.1.block.1.block.3.bias 4
encoder.block.1.block.1.block.3.weight_g 4x1x1
encoder.block.1.block.1.block.3.weight_v 4x4x1
encoder.block.1.block.2.block.0.alpha 1x4x1
encoder.block.1.block.2.block.1.bias 4
encoder.block.1.block.2.block.1.weight_g 4x1x1
encoder.block.1.block.2.block.1.weight_v 4x4x7
encoder.block.1.block.2.block.2.alpha 1x4x1
encoder.block.1.block.2.block.3.bias 4
encoder.block.1.block.2.block.3.weight_g 4x1x1
encoder.block.1.block.2.block.3.weight_v 4x4x1
encoder.block.1.block.3.alpha 1x4x1
encoder.block.1.block.4.bias 8
encoder.block.1.block.4.weight_g 8x1x1
encoder.block.1.block.4.weight_v 8x4x4
encoder.block.2.block.0.block.0.alpha 1x8x1
encoder.block.2.block.0.block.1.bias 8
encoder.block.2.block.0.block.1.weight_g 8x1x1
encoder.block.2.block.0.block.1.weight_v 8x8x7
encoder.block.2.block.0.block.2.alpha 1x8x1
encoder.block.2.block.0.block.3.bias 8
encoder.block.2.block.0.block.3.weight_g 8x1x1
encoder.block.2.block.0.block.3.weight_v 8x8x1
encoder.block.2.block.1.block.0.alpha 1x8x1
encoder.block.2.block.1.block.1.bias 8
encoder.block.2.block.1.block.1.weight_g 8x1x1
encoder.block.2.block.1.block.1.weight_v 8x8x7
encoder.block.2.block.1.block.2.alpha 1x8x1
encoder.block.2.block.1.block.3.bias 8
encoder.block.2.block.1.block.3.weight_g 8x1x1
encoder.block.2.block.1.block.3.weight_v 8x8x1
encoder.block.2.block.2.block.0.alpha 1x8x1
encoder.block.2.block.2.block.1.bias 8
encoder.block.2.block.2.block.1.weight_g 8x1x1
encoder.block.2.block.2.block.1.weight_v 8x8x7
encoder.block.2.block.2.block.2.alpha 1x8x1
encoder.block.2.block.2.block.3.bias 8
encoder.block.2.block.2.block.3.weight_g 8x1x1
encoder.block.2.block.2.block.3.weight_v 8x8x1
encoder.block.2.block.3.alpha 1x8x1
encoder.block.2.block.4.bias 16
encoder.block.2.block.4.weight_g 16x1x1
encoder.block.2.block.4.weight_v 16x8x6
encoder.block.3.alpha 1x16x1
encoder.block.4.bias 16
encoder.block.4.weight_g 16x1x1
encoder.block.4.weight_v 16x16x3
quantizer.quantizers.0.in_proj.bias 4
quantizer.quantizers.0.in_proj.weight_g 4x1x1
quantizer.quantizers.0.in_proj.weight_v 4x16x1
quantizer.quantizers.0.out_proj.bias 16
quantizer.quantizers.0.out_proj.weight_g 16x1x1
quantizer.quantizers.0.out_proj.weight_v 16x4x1
quantizer.quantizers.0.codebook.weight 16x4
quantizer.quantizers.1.in_proj.bias 4
quantizer.quantizers.1.in_proj.weight_g 4x1x1
quantizer.quantizers.1.in_proj.weight_v 4x16x1
quantizer.quantizers.1.out_proj.bias 16
quantizer.quantizers.1.out_proj.weight_g 16x1x1
quantizer.quantizers.1.out_proj.weight_v 16x4x1
quantizer.quantizers.1.codebook.weight 16x4
quantizer.quantizers.2.in_proj.bias 4
quantizer.quantizers.2.in_proj.weight_g 4x1x1
quantizer.quantizers.2.in_proj.weight_v 4x16x1
quantizer.quantizers.2.out_proj.bias 16
quantizer.quantizers.2.out_proj.weight_g 16x1x1
quantizer.quantizers.2.out_proj.weight_v 16x4x1
quantizer.quantizers.2.codebook.weight 16x4
quantizer.quantizers.3.in_proj.bias 4
quantizer.quantizers.3.in_proj.weight_g 4x1x1
quantizer.quantizers.3.in_proj.weight_v 4x16x1
quantizer.quantizers.3.out_proj.bias 16
quantizer.quantizers.3.out_proj.weight_g 16x1x1
quantizer.quantizers.3.out_proj.weight_v 16x4x1
quantizer.quantizers.3.codebook.weight 16x4
decoder.model.0.bias 16
decoder.model.0.weight_g 16x1x1
decoder.model.0.weight_v 16x16x7
decoder.model.1.block.0.alpha 1x16x1
decoder.model.1.block.1.bias 8
decoder.model.1.block.1.weight_g 16x1x1
decoder.model.1.block.1.weight_v 16x8x6
decoder.model.1.block.2.block.0.alpha 1x8x1
decoder.model.1.block.2.block.1.bias 8
decoder.model.1.block.2.block.1.weight_g 8x1x1
decoder.model.1.block.2.block.1.weight_v 8x8x7
decoder.model.1.block.2.block.2.alpha 1x8x1
decoder.model.1.block.2.block.3.bias 8
decoder.model.1.block.2.block.3.weight_g 8x1x1
decoder.model.1.block.2.block.3.weight_v 8x8x1
decoder.model.1.block.3.block.0.alpha 1x8x1
decoder.model.1.block.3.block.1.bias 8
decoder.model.1.block.3.block.1.weight_g 8x1x1
decoder.model.1.block.3.block.1.weight_v 8x8x7
decoder.model.1.block.3.block.2.alpha 1x8x1
decoder.model.1.block.3.block.3.bias 8
decoder.model.1.block.3.block.3.weight_g 8x1x1
decoder.model.1.block.3.block.3.weight_v 8x8x1
decoder.model.1.block.4.block.0.alpha 1x8x1
decoder.model.1.block.4.block.1.bias 8
decoder.model.1.block.4.block.1.weight_g 8x1x1
decoder.model.1.block.4.block.1.weight_v 8x8x7
decoder.model.1.block.4.block.2.alpha 1x8x1
decoder.model.1.block.4.block.3.bias 8
decoder.model.1.block.4.block.3.weight_g 8x1x1
decoder.model.1.block.4.block.3.weight_v 8x8x1
decoder.model.2.block.0.alpha 1x8x1
decoder.model.2.block.1.bias 4
decoder.model.2.block.1.weight_g 8x1x1
decoder.model.2.block.1.weight_v 8x4x4
decoder.model.2.block.2.block.0.alpha 1x4x1
decoder.model.2.block.2.block.1.bias 4
decoder.model.2.block.2.block.1.weight_g 4x1x1
decoder.model.2.block.2.block.1.weight_v 4x4x7
decoder.model.2.block.2.block.2.alpha 1x4x1
decoder.model.2.block.2.block.3.bias 4
decoder.model.2.block.2.block.3.weight_g 4x1x1
decoder.model.2.block.2.block.3.weight_v 4x4x1
decoder.model.2.block.3.block.0.alpha 1x4x1
decoder.model.2.block.3.block.1.bias 4
decoder.model.2.block.3.block.1.weight_g 4x1x1
decoder.model.2.block.3.block.1.weight_v 4x4x7
decoder.model.2.block.3.block.2.alpha 1x4x1
decoder.model.2.block.3.block.3.bias 4
decoder.model.2.block.3.block.3.weight_g 4x1x1
decoder.model.2.block.3.block.3.weight_v 4x4x1
decoder.model.2.block.4.block.0.alpha 1x4x1
decoder.model.2.block.4.block.1.bias 4
decoder.model.2.block.4.block.1.weight_g 4x1x1
decoder.model.2.block.4.block.1.weight_v 4x4x7
decoder.model.2.block.4.block.2.alpha 1x4x1
decoder.model.2.block.4.block.3.bias 4
decoder.model.2.block.4.block.3.weight_g 4x1x1
decoder.model.2.block.4.block.3.weight_v 4x4x1
decoder.model.3.alpha 1x4x1
decoder.model.4.bias 1
decoder.model.4.weight_g 1x1x1
decoder.model.4.weight_v 1x4x7
"""


def official_keys():
    return {line.split()[0]: tuple(int(d) for d in line.split()[1].split("x"))
            for line in OFFICIAL_KEYS.strip().splitlines()}


def official_state(model):
    return to_official_state_dict(model.state_dict(), model.config)


def transformers_state(model):
    """Our weights in transformers' DacModel layout, weight norm folded into plain weights."""
    ours_to_hf = {ours: theirs for theirs, ours in module_table(model.config, "transformers").items()}
    out = {}
    for key, value in model.state_dict().items():
        module, _, leaf = key.partition(".parametrizations.weight.")
        if leaf == "original1":
            conv = model.get_submodule(module)
            out[f"{ours_to_hf[module]}.weight"] = conv.weight.detach().clone()
        elif not leaf:
            head, _, name = key.rpartition(".")
            out[f"{ours_to_hf[head]}.{name}"] = value
    return out


def test_our_inverse_gives_exactly_the_official_keys_and_shapes():
    model = tiny_model()
    state = official_state(model)
    assert {k: tuple(v.shape) for k, v in state.items()} == official_keys()
    assert detect_layout(state) == "dac" and detect_layout(model.state_dict()) == "tokzoo"


def test_official_layout_converts_and_reproduces_the_outputs():
    model = tiny_model()
    x = _wav(2, 61)
    state = official_state(model)
    again = load_dac_state_dict(DAC(tiny_config()).eval(), state, "official")
    converted = convert_dac_state_dict(state, model.config)
    assert all(torch.equal(converted[k], v) for k, v in model.state_dict().items())
    with torch.no_grad():
        ids = model.encode(x)
        assert torch.equal(again.encode(x), ids) and torch.equal(again.decode(ids), model.decode(ids))
    # the parametrization form (an official model re-saved under torch's new weight norm) converts too
    param = {k.replace("weight_g", "parametrizations.weight.original0")
             .replace("weight_v", "parametrizations.weight.original1"): v for k, v in state.items()}
    assert convert_dac_state_dict(param, model.config).keys() == converted.keys()
    # ... and through the family's declaration, from a dict config as the zoo passes it
    via_family = get_family("dac").convert("official", state, model.config.to_dict())
    assert all(torch.equal(via_family[k], v) for k, v in converted.items())


def test_the_official_pth_layout_is_read_and_unwrapped(tmp_path):
    model = tiny_model()
    path = tmp_path / "weights.pth"
    kwargs = dict(encoder_dim=4, encoder_rates=[2, 3], latent_dim=16, decoder_dim=16, decoder_rates=[3, 2],
                  n_codebooks=4, codebook_size=16, codebook_dim=4, quantizer_dropout=False, sample_rate=1200)
    torch.save({"state_dict": official_state(model), "metadata": {"kwargs": kwargs}}, path)
    state = read_state_dict(path)
    assert set(state) == set(official_keys())
    card = {k: v for k, v in tiny_config().to_dict().items() if k not in ("latent_dim", "num_quantizers")}
    resolved = resolve_card_config({**card, "num_quantizers": None}, path, "dac")
    assert resolved["num_quantizers"] == 4 and resolved["latent_dim"] == 16
    assert DAC(resolved).config.to_dict() == tiny_config().to_dict()
    with pytest.raises(InputError, match="num_quantizers: card 3, checkpoint 4"):
        resolve_card_config({**card, "num_quantizers": 3}, path, "dac")
    plain = tmp_path / "plain.pth"
    torch.save(official_state(model), plain)
    assert resolve_card_config(card, plain, "dac") == card  # no metadata: the card's config
    assert config_from_kwargs({"codebook_dim": [4, 4], "n_codebooks": 2}) == {"codebook_dim": 4, "num_quantizers": 2}
    with pytest.raises(InputError, match="per-level codebook_dim"):
        config_from_kwargs({"codebook_dim": [4, 8]})


def test_transformers_layout_converts_with_weight_norm_restored():
    model = tiny_model()
    state = transformers_state(model)
    assert detect_layout(state) == "transformers"
    assert {k.split(".")[0] for k in state} == {"encoder", "decoder", "quantizer"}
    assert "encoder.block.0.res_unit1.snake1.alpha" in state and "decoder.block.1.conv_t1.weight" in state
    again = load_dac_state_dict(DAC(tiny_config()).eval(), state, "transformers")
    x = _wav(2, 90)
    with torch.no_grad():
        for name, conv in model.named_modules():
            if hasattr(conv, "parametrizations"):  # the same weights up to one rounding
                torch.testing.assert_close(again.get_submodule(name).weight, conv.weight, rtol=1e-6, atol=1e-7)
        ids = model.encode(x)
        assert (again.encode(x) == ids).float().mean() > 0.95
        torch.testing.assert_close(again.decode(ids), model.decode(ids), rtol=0, atol=1e-5)


def test_mismatches_are_named():
    model = tiny_model()
    state = official_state(model)
    extra = dict(state, **{"quantizer.quantizers.9.codebook.weight": torch.zeros(16, 4)})
    with pytest.raises(CheckpointMismatch, match="unexpected .*quantizer.quantizers.9.codebook.weight"):
        load_dac_state_dict(DAC(tiny_config()), extra)
    short = {k: v for k, v in state.items() if not k.startswith("quantizer.quantizers.3.")}
    with pytest.raises(CheckpointMismatch, match="missing .*quantizer.levels.3"):
        load_dac_state_dict(DAC(tiny_config()), short)
    with pytest.raises(ValueError, match="layout must be"):
        module_table(model.config, "encodec")
