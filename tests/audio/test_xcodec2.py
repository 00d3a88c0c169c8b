"""X-Codec 2 on a tiny config: ids layout and range, the release's padding rule, batched unequal
lengths == each item alone, the official key list converting strictly (and mismatches named), the
transformers layout round trip, the log-mel features, bad input and training refused."""
from pathlib import Path

import pytest
import torch

from audiotok.models.codec import PAD_ID
from audiotok.models.xcodec2 import XCodec2, XCodec2Config
from audiotok.models.xcodec2.convert import (convert_xcodec2_state_dict, load_xcodec2_state_dict,
                                             to_official_state_dict)
from audiotok.nn.kaldi_fbank import log_mel_frames, w2v_bert_features
from vistok.errors import InputError
from vistok.models.state_dict import CheckpointMismatch

# the sizes of tests/audio/xcodec2_official_keys.txt (one of its two w2v-BERT layers is used)
TINY = dict(encoder_dim=2, hidden_dim=32, semantic_dim=16, semantic_layers=1, semantic_heads=2, semantic_ffn_dim=32,
            decoder_layers=1, decoder_heads=2, decoder_ffn_dim=128)
KEYS = Path(__file__).with_name("xcodec2_official_keys.txt")


def official_shapes():
    lines = [line.split() for line in KEYS.read_text().splitlines() if line and not line.startswith("#")]
    return {k: tuple(int(n) for n in shape.split("x")) for k, shape in lines}


@torch.no_grad()
def tiny_model(seed=0):
    """The tiny config, seeded, with the FSQ input projection scaled up so the ids vary."""
    torch.manual_seed(seed)
    model = XCodec2(XCodec2Config(**TINY)).eval()
    for p in model.parameters():
        if p.dim() == 1:
            p.add_(0.1 * torch.randn_like(p))
    model.project_in.weight.mul_(200.0)
    return model


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def _wav(batch, samples, seed=0):
    return 0.3 * torch.randn(batch, samples, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def test_ids_layout_range_and_padding_rule(model):
    assert (model.sample_rate, model.hop_length, model.token_rate, model.num_codebooks) == (16000, 320, 50.0, 1)
    assert model.config.codebook_size == 65536
    ids = model.encode(_wav(2, 320 * 4 + 7))
    assert ids.shape == (2, 1, 5) and ids.dtype == torch.long
    assert int(ids.min()) >= 0 and int(ids.max()) < 65536 and ids.unique().numel() > 3
    # a length that is already a multiple of 320 gains a whole frame, as the release pads
    assert model.encode(_wav(1, 320 * 4)).shape == (1, 1, 5)
    assert torch.equal(model.token_lengths(ids), torch.tensor([5, 5]))
    assert model.decode(ids).shape == (2, 5 * 320)
    out = model(_wav(2, 1000))
    assert out.recon.shape == (2, 1000) and out.indices.shape == (2, 1, 4)


@torch.no_grad()
def test_batched_unequal_lengths_equal_each_item_alone(model):
    sizes = [320 * 6 + 11, 320 * 3, 320 * 6 + 200]
    wav = _wav(3, max(sizes), seed=1)
    for i, n in enumerate(sizes):
        wav[i, n:] = 0
    ids = model.encode(wav, lengths=torch.tensor(sizes))
    audio = model.decode(ids)
    for i, n in enumerate(sizes):
        alone = model.encode(wav[i: i + 1, :n])
        t = alone.shape[-1]
        assert t == n // 320 + 1
        assert torch.equal(ids[i: i + 1, :, :t], alone) and bool((ids[i, :, t:] == PAD_ID).all())
        torch.testing.assert_close(audio[i: i + 1, : t * 320], model.decode(alone), rtol=0, atol=1e-5)
        assert not audio[i, t * 320:].any()


@torch.no_grad()
def test_official_key_list_converts_strictly_and_mismatches_are_named(model):
    shapes = official_shapes()
    official = {k: torch.randn(s) for k, s in shapes.items()}
    converted = convert_xcodec2_state_dict(official, model.config)
    fresh = XCodec2(XCodec2Config(**TINY))
    load_xcodec2_state_dict(fresh, official, "official")
    assert not any(k.startswith("semantic.encoder.layers.1.") for k in converted)  # the unused layer is dropped
    ours = to_official_state_dict(model.state_dict(), model.config)
    dropped = ("filter", "istft.window", "masked_spec_embed", "semantic_model.encoder.layers.1.")
    assert {k: tuple(v.shape) for k, v in ours.items()} == \
        {k: s for k, s in shapes.items() if not any(d in k for d in dropped)}
    legacy = {k.replace("parametrizations.weight.original0", "weight_g")
              .replace("parametrizations.weight.original1", "weight_v"): v for k, v in ours.items()}
    assert convert_xcodec2_state_dict(legacy, model.config).keys() == model.state_dict().keys()
    with pytest.raises(CheckpointMismatch, match="unexpected .*generator.backbone.transformers.1.att.c_attn.weight"):
        load_xcodec2_state_dict(fresh, dict(ours, **{"generator.backbone.transformers.1.att.c_attn.weight":
                                                     torch.zeros(96, 32)}))
    with pytest.raises(CheckpointMismatch, match="missing .*backbone.layers.0.attn.qkv.weight"):
        load_xcodec2_state_dict(fresh, {k: v for k, v in ours.items() if "att.c_attn" not in k})


@torch.no_grad()
def test_transformers_layout_round_trip(model):
    hf = to_official_state_dict(model.state_dict(), model.config, "transformers")
    assert "acoustic_decoder.layers.0.self_attn.q_proj.weight" in hf and "acoustic_encoder.conv1.weight" in hf
    again = XCodec2(XCodec2Config(**TINY)).eval()
    load_xcodec2_state_dict(again, hf, "transformers")
    x = _wav(1, 2000, seed=3)
    assert torch.equal(again.encode(x), model.encode(x))
    torch.testing.assert_close(again.state_dict()["backbone.layers.0.attn.qkv.weight"],
                               model.state_dict()["backbone.layers.0.attn.qkv.weight"], rtol=0, atol=0)


def test_log_mel_features():
    n = 16000
    t = torch.arange(n) / 16000
    tone = 0.5 * torch.sin(2 * torch.pi * 1000 * t)
    frames = log_mel_frames(tone)
    assert frames.shape == (1 + (n - 400) // 160, 80)
    # the 1 kHz tone falls in one mel band: it is the loudest bin of every frame
    peak = frames.argmax(-1)
    assert peak.unique().numel() == 1 and 10 < int(peak[0]) < 40
    noisy = tone + 0.1 * torch.randn(n, generator=torch.Generator().manual_seed(0))
    feats = w2v_bert_features(noisy[: n - 160])  # 97 frames: the odd last one is dropped
    assert feats.shape == (48, 160)
    # normalised per bin over all 97 frames, then consecutive frames side by side
    normalised = log_mel_frames(noisy[: n - 160])
    normalised = (normalised - normalised.mean(0)) / torch.sqrt(normalised.var(0) + 1e-7)
    torch.testing.assert_close(feats, normalised[:96].reshape(48, 160), rtol=0, atol=1e-5)
    assert abs(float(normalised[:, 5].std()) - 1) < 1e-3


def test_bad_input_and_training(model):
    with pytest.raises(ValueError, match="num_quantizers must be 1"):
        model.encode(_wav(1, 1000), num_quantizers=2)
    with pytest.raises(ValueError, match="at least 80 samples"):
        model.encode(_wav(1, 40))
    with pytest.raises(ValueError, match="levels"):
        model.decode(torch.zeros(1, 2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"ids must be in 0\.\.65535"):
        model.decode(torch.full((1, 1, 3), 65536))
    with pytest.raises(ValueError, match="strides"):
        XCodec2Config(strides=[2, 2, 4, 4, 4])
    with pytest.raises(InputError, match="inference-only"):
        model.prepare_training()


def test_release_card_builds_at_full_size():
    from vistok.hub.catalogue import get_card

    card = get_card("xcodec2")
    assert "non-commercial" in card.license.lower()
    with torch.device("meta"):
        full = XCodec2(card.config)
    assert round(sum(p.numel() for p in full.parameters()) / 1e6, 1) == card.params_millions
    assert full.config.codebook_size == 65536 and full.token_rate == 50.0
