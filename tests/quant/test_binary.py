import itertools

import pytest
import torch

from vistok.quant import BSQ, LFQ


def all_codes(dim, scale=1.0):
    return torch.tensor(list(itertools.product([-1.0, 1.0], repeat=dim))) * scale


@pytest.mark.parametrize("cls", [LFQ, BSQ])
@pytest.mark.parametrize("bit_order", ["lsb", "msb"])
def test_index_round_trip(cls, bit_order):
    q = cls(10, bit_order=bit_order).eval()
    out = q(torch.randn(4, 33, 10))
    assert out.indices.min() >= 0 and out.indices.max() < 2**10
    assert torch.allclose(q.decode_indices(out.indices), out.z_q)
    every = torch.arange(2**10)
    assert torch.equal(q(q.decode_indices(every)).indices, every)


def test_bit_order_is_explicit():
    z = torch.tensor([[1.0, -1, -1, -1]])
    assert LFQ(4, bit_order="lsb")(z).indices.item() == 1
    assert LFQ(4, bit_order="msb")(z).indices.item() == 8
    assert BSQ(4).bit_order == "msb" and LFQ(4).bit_order == "lsb"


def test_bsq_codes_on_unit_sphere():
    q = BSQ(16).eval()
    out = q(torch.randn(50, 16) * 7)
    assert torch.allclose(out.z_q.norm(dim=-1), torch.ones(50), atol=1e-5)


def _brute_entropies(x, codes, tau):
    logits = -tau * torch.cdist(x.double(), codes.double()).pow(2)
    prob = logits.softmax(-1)
    sample = -(prob * prob.clamp_min(1e-30).log()).sum(-1).mean()
    avg = prob.mean(0)
    codebook = -(avg * avg.clamp_min(1e-30).log()).sum()
    return sample.item(), codebook.item()


def test_lfq_entropy_equals_softmax_over_all_codes():
    dim, tau = 6, 0.7
    q = LFQ(dim, inv_temperature=tau).train()
    x = torch.randn(300, dim)
    out = q(x)
    sample, codebook = _brute_entropies(x, all_codes(dim), tau)
    assert out.stats["sample_entropy"] == pytest.approx(sample, rel=1e-4)
    assert out.stats["codebook_entropy"] == pytest.approx(codebook, rel=1e-4)


def test_bsq_entropy_per_bit_and_grouped():
    dim, tau = 8, 3.0
    x = torch.randn(400, dim)
    u = torch.nn.functional.normalize(x, dim=-1)
    sample, codebook = _brute_entropies(u, all_codes(dim, dim**-0.5), tau)
    exact = BSQ(dim, inv_temperature=tau, group_size=dim).train()(x)
    assert exact.stats["sample_entropy"] == pytest.approx(sample, rel=1e-4)
    assert exact.stats["codebook_entropy"] == pytest.approx(codebook, rel=1e-4)
    # groups of 4 bits: the sum of two sub-code entropies is an upper bound of the joint entropy
    grouped = BSQ(dim, inv_temperature=tau, group_size=4).train()(x)
    assert grouped.stats["codebook_entropy"] >= codebook - 1e-4
    assert grouped.stats["sample_entropy"] == pytest.approx(sample, rel=1e-4)


def test_entropy_loss_gradient_reaches_encoder():
    for q in (LFQ(12), BSQ(18)):
        encoder = torch.nn.Linear(5, q.dim)
        out = q.train()(encoder(torch.randn(64, 5)))
        out.loss.backward()
        assert encoder.weight.grad.abs().sum() > 0


def test_large_dim_uses_groups_and_stays_cheap():
    q = LFQ(18).train()  # 2^18 codes: never materialised
    assert q.group_size == 9
    out = q(torch.randn(1024, 18))
    assert torch.isfinite(out.loss) and out.indices.max() < 2**18
