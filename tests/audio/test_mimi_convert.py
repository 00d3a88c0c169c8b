"""Mimi converters against the official key names: moshi's ``MimiModel.state_dict()`` and the flat
layout transformers' ``MimiModel.save_pretrained`` writes (both listed with their shapes, at a tiny
config, in ``tests/assets/mimi_official_layouts.json``, generated once from moshi 0.2.13 and
transformers 5.25). Every official key maps, the way back gives exactly those keys, files are read
without running pickled code, and strict loading names what is missing or unexpected."""
import json
import pickle
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from audiotok.models.mimi import Mimi, MimiConfig
from audiotok.models.mimi.convert import (config_from_transformers, convert_mimi_state_dict, detect_layout,
                                          load_mimi_state_dict, resolve_card_config, rope_rows_to_halves,
                                          rope_rows_to_interleaved, to_official_state_dict)
from vistok.errors import InputError
from vistok.models.state_dict import CheckpointMismatch, UnreadableFileError, read_state_dict

LAYOUTS = json.loads((Path(__file__).parents[1] / "assets" / "mimi_official_layouts.json").read_text())
CONFIG = MimiConfig(**LAYOUTS["tokzoo_config"])


def official_shapes(layout):
    return {k: tuple(v) for k, v in LAYOUTS[layout].items()}


def tiny_model(seed=0):
    torch.manual_seed(seed)
    model = Mimi(CONFIG).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)
        q = model.quantizer
        for i in range(CONFIG.num_quantizers):
            level = q.level(i)
            level.cluster_size.uniform_(0.5, 2.0)
            level.embed.normal_()
            level.embed_avg.copy_(level.embed * level.cluster_size[:, None])
    return model


def random_official(layout, seed=1):
    """Random tensors under the official names and shapes (codebook usages positive, flags set)."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape in official_shapes(layout).items():
        if key.endswith(("cluster_usage",)):
            out[key] = 0.5 + 1.5 * torch.rand(shape, generator=gen)
        elif key.endswith(("_initialized", ".initialized")):
            out[key] = torch.ones(shape)
        else:
            out[key] = torch.randn(shape, generator=gen) * 0.3
    return out


def _wav(batch=2, frames=5):
    return torch.randn(batch, CONFIG.hop_length * frames + 7, generator=torch.Generator().manual_seed(5)) * 0.3


@pytest.mark.parametrize("layout", ["moshi", "transformers"])
def test_our_inverse_gives_exactly_the_official_keys_and_shapes(layout):
    state = to_official_state_dict(tiny_model().state_dict(), CONFIG, layout)
    assert {k: tuple(v.shape) for k, v in state.items()} == official_shapes(layout)
    assert detect_layout(state) == layout and detect_layout(tiny_model().state_dict()) == "tokzoo"


@pytest.mark.parametrize("layout", ["moshi", "transformers"])
def test_every_official_key_converts_and_loads_strictly(layout):
    official = random_official(layout)
    converted = convert_mimi_state_dict(official, CONFIG)
    model = load_mimi_state_dict(Mimi(CONFIG).eval(), official, layout)  # strict: nothing left unmapped
    assert set(converted) == set(model.state_dict())
    # the way back reproduces the official tensors (codebook sums up to one rounding of sum / usage * usage)
    back = to_official_state_dict(model.state_dict(), CONFIG, layout)
    for key, value in official.items():
        torch.testing.assert_close(back[key].float(), value.float(), rtol=1e-6, atol=1e-6, msg=key)


def test_both_layouts_give_the_same_model():
    model = tiny_model()
    x = _wav()
    with torch.no_grad():
        ids = model.encode(x)
        assert len(ids.unique()) > 4
        for layout in ("moshi", "transformers"):
            again = load_mimi_state_dict(Mimi(CONFIG).eval(), to_official_state_dict(model.state_dict(), CONFIG, layout))
            assert torch.equal(again.encode(x), ids), layout
            torch.testing.assert_close(again.decode(ids), model.decode(ids), rtol=0, atol=1e-5)  # code vectors: sum / usage rounds once


def test_transformers_q_k_rows_are_permuted_back_to_interleaved_rope():
    weight = torch.arange(16 * 3, dtype=torch.float32).reshape(16, 3)
    halves = rope_rows_to_halves(weight, CONFIG.num_heads)
    assert not torch.equal(halves, weight) and torch.equal(rope_rows_to_interleaved(halves, CONFIG.num_heads), weight)
    # head 0 holds rows 0..7 as pairs (0,1) (2,3) ...: the halves layout lists the pair firsts, then the seconds
    assert halves[:8, 0].tolist() == [0, 6, 12, 18, 3, 9, 15, 21]
    model = tiny_model()
    hf = to_official_state_dict(model.state_dict(), CONFIG, "transformers")
    ours_in = model.state_dict()["encoder_transformer.layers.0.self_attn.in_proj.weight"]
    q, k, v = ours_in.chunk(3, 0)
    assert torch.equal(hf["encoder_transformer.layers.0.self_attn.q_proj.weight"], rope_rows_to_halves(q, 2))
    assert torch.equal(hf["encoder_transformer.layers.0.self_attn.v_proj.weight"], v)


def test_transformers_config_json_maps_to_the_config():
    assert MimiConfig(**config_from_transformers(LAYOUTS["transformers_config"])).to_dict() == CONFIG.to_dict()
    with pytest.raises(InputError, match="config.json: pad_mode='reflect' is not supported"):
        config_from_transformers(dict(LAYOUTS["transformers_config"], pad_mode="reflect"))
    with pytest.raises(InputError, match="num_key_value_heads=1 is not supported"):
        config_from_transformers(dict(LAYOUTS["transformers_config"], num_key_value_heads=1))


def test_files_are_read_without_running_pickled_code(tmp_path):
    official = random_official("moshi")
    save_file({k: v.contiguous() for k, v in official.items()}, str(tmp_path / "tokenizer.safetensors"))
    torch.save(official, tmp_path / "tokenizer.pt")
    for name in ("tokenizer.safetensors", "tokenizer.pt"):
        state = read_state_dict(tmp_path / name)
        assert set(state) == set(official) and detect_layout(state) == "moshi"
        load_mimi_state_dict(Mimi(CONFIG), state, name)

    class Payload:
        def __reduce__(self):
            return (Path(tmp_path / "ran").write_text, ("pickled code ran",))

    torch.save({"encoder.model.0.conv.conv.weight": Payload()}, tmp_path / "evil.pt")
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"encoder.model.0.conv.conv.weight": Payload()}))
    for name in ("evil.pt", "evil.pkl"):
        with pytest.raises(UnreadableFileError, match=f"{name}: not a readable checkpoint"):
            read_state_dict(tmp_path / name)
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize("layout", ["moshi", "transformers"])
def test_mismatches_are_named(layout):
    official = random_official(layout)
    conv = "encoder.model.0.conv.conv.weight" if layout == "moshi" else "encoder.layers.0.conv.weight"
    short = {k: v for k, v in official.items() if k != conv}
    with pytest.raises(CheckpointMismatch, match=r"missing \(1\): encoder\.stem\.conv\.weight"):
        load_mimi_state_dict(Mimi(CONFIG), short, layout)
    level = ("quantizer.rvq_rest.vq.layers.9._codebook.embedding_sum" if layout == "moshi"
             else "quantizer.acoustic_residual_vector_quantizer.layers.9.codebook.embed_sum")
    usage = level.replace("embedding_sum", "cluster_usage").replace("embed_sum", "cluster_usage")
    stray = "encoder.model.99.conv.conv.bias" if layout == "moshi" else "encoder.layers.99.conv.bias"
    extra = dict(official, **{level: torch.zeros(32, 8), usage: torch.ones(32), stray: torch.zeros(1)})
    with pytest.raises(CheckpointMismatch, match=r"unexpected \(5\): .*" + re.escape(stray) + ".*quantizer\\.acoustic\\.quantizers\\.9\\.embed"):
        load_mimi_state_dict(Mimi(CONFIG), extra, layout)
    with pytest.raises(InputError, match="needs both its embedding sum and its cluster usage"):
        convert_mimi_state_dict({k: v for k, v in official.items() if not k.endswith("cluster_usage")}, CONFIG)
    wrong = dict(official)
    wrong[conv] = torch.zeros(1, 1, 1)
    with pytest.raises(InputError, match=r"shape mismatch\n  encoder\.stem\.conv\.weight: checkpoint \(1, 1, 1\) vs model"):
        load_mimi_state_dict(Mimi(CONFIG), wrong, layout)


def test_transformers_attention_lacking_a_projection_is_named():
    official = random_official("transformers")
    del official["decoder_transformer.layers.1.self_attn.k_proj.weight"]
    with pytest.raises(InputError, match=r"decoder_transformer\.layers\.1\.self_attn lacks k_proj"):
        convert_mimi_state_dict(official, CONFIG)


def test_a_config_json_beside_the_checkpoint_is_checked(tmp_path):
    path = tmp_path / "model.safetensors"
    (tmp_path / "config.json").write_text(json.dumps(LAYOUTS["transformers_config"]))
    assert resolve_card_config(CONFIG.to_dict(), path, "mimi") == CONFIG.to_dict()
    with pytest.raises(InputError, match=r"disagrees with it \(num_quantizers: card 6, config.json 4\)"):
        resolve_card_config(dict(CONFIG.to_dict(), num_quantizers=6), path, "mimi")
