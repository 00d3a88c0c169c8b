"""Mimi on a tiny config: shapes, batched == single, streaming == one-shot, bad input, training refused."""
import pytest
import torch

from audiotok.models.mimi import Mimi, MimiConfig
from vistok.errors import InputError

TINY = dict(dim=16, n_filters=4, strides=[2, 3], residual_layers=1, num_layers=1, num_heads=2, dim_feedforward=8,
            context=3, num_quantizers=4, codebook_size=32, codebook_dim=8)


@torch.no_grad()
def tiny_model(seed=0):
    """The tiny config, seeded, with codebooks drawn (a fresh one is all zeros)."""
    torch.manual_seed(seed)
    m = Mimi(MimiConfig(**TINY)).eval()
    for q in range(4):
        m.quantizer.level(q).embed.normal_()
    return m


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@torch.no_grad()
def test_shapes_and_prefix(model):
    hop = model.hop_length
    wav = torch.randn(2, hop * 5 + 3)
    ids = model.encode(wav)
    assert ids.shape == (2, 4, 6) and model.token_rate == 24000 / hop
    assert torch.equal(model.encode(wav, num_quantizers=2), ids[:, :2])
    assert model.decode(ids[:, :1]).shape == (2, 6 * hop)


@torch.no_grad()
def test_batched_equals_single_and_streaming(model):
    hop = model.hop_length
    sizes = [hop * 6, hop * 2 + 5]
    wav = torch.randn(2, sizes[0])
    wav[1, sizes[1]:] = 0
    ids = model.encode(wav, lengths=torch.tensor(sizes))
    alone = model.encode(wav[1:, : sizes[1]])
    assert torch.equal(ids[1:, :, :3], alone) and bool((ids[1, :, 3:] == -1).all())
    full = model.decode(ids[:1])
    for chunk in (1, 3, 7):
        dec = model.streaming_decoder()
        parts = [dec.step(ids[:1, :, s: s + chunk]) for s in range(0, 6, chunk)] + [dec.flush()]
        assert torch.allclose(torch.cat(parts, -1), full, atol=1e-5)


def test_bad_input_and_training(model):
    with pytest.raises(ValueError, match="num_quantizers"):
        model.encode(torch.randn(1, 100), num_quantizers=5)
    with pytest.raises(ValueError, match="levels"):
        model.decode(torch.zeros(1, 5, 2, dtype=torch.long))
    with pytest.raises(InputError, match="inference-only"):
        model.prepare_training()
