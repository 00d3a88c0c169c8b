import pytest
import torch

from vistok.quant import BSQ, FSQ, LFQ, DimwiseQuantizer, LatentPerturbation, ResidualVQ, VectorQuantizer
from vistok.quant.perturb import robustok_schedule


def _vq():
    torch.manual_seed(0)
    return VectorQuantizer(512, 8, l2_norm=True).train()


def test_beta_zero_is_bit_identical_to_no_perturbation():
    vq = _vq()
    z = torch.randn(8, 16, 8)
    out = vq(z)
    same = LatentPerturbation(alpha=1.0, beta=0.0, delta=50)(vq, z, out)
    assert same is out
    assert torch.equal(same.z_q, out.z_q) and torch.equal(same.indices, out.indices)


@pytest.mark.parametrize("alpha,delta", [(0.5, 10), (1.0, 4), (0.2, 100)])
def test_replacement_rate_matches_alpha_delta(alpha, delta):
    vq = _vq()
    z = torch.randn(64, 256, 8)
    out = vq(z)
    pert = LatentPerturbation(alpha=alpha, beta=1.0, delta=delta)
    g = torch.Generator().manual_seed(0)
    res = pert(vq, z, out, generator=g)
    measured = (res.indices != out.indices).float().mean().item()
    expected = alpha * (delta - 1) / delta
    assert measured == pytest.approx(expected, abs=0.01)
    assert res.stats["perturb/replaced"] == pytest.approx(measured, abs=1e-6)
    assert pert.expected_replacement_rate == pytest.approx(expected)


def test_replacements_are_near_neighbours_and_loss_is_clean():
    vq = _vq()
    z = torch.randn(16, 32, 8)
    out = vq(z)
    res = LatentPerturbation(alpha=1.0, beta=1.0, delta=3)(vq, z, out)
    top3 = vq.nearby_indices(z, out.indices, 3)
    assert (top3 == res.indices.unsqueeze(-1)).any(-1).all()
    assert torch.equal(res.loss, out.loss)  # quantizer loss computed on clean assignment
    assert torch.allclose(res.z_q, vq.decode_indices(res.indices), atol=1e-6)


def test_only_fraction_beta_of_batch_is_perturbed():
    vq = _vq()
    z = torch.randn(10, 64, 8)
    out = vq(z)
    res = LatentPerturbation(alpha=1.0, beta=0.3, delta=20, batch_selection="first")(vq, z, out)
    changed = (res.indices != out.indices).any(-1)
    assert changed[:3].all() and not changed[3:].any()
    rnd = LatentPerturbation(alpha=1.0, beta=0.3, delta=20)(vq, z, out)
    assert (rnd.indices != out.indices).any(-1).sum() == 3


def test_gradient_reaches_encoder_through_perturbed_tokens():
    vq = _vq()
    encoder = torch.nn.Linear(4, 8)
    z = encoder(torch.randn(4, 16, 4))
    out = vq(z)
    res = LatentPerturbation(alpha=1.0, beta=1.0, delta=10)(vq, z, out)
    res.z_q.pow(2).sum().backward()
    assert encoder.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("make,delta", [
    (lambda: ResidualVQ(3, 64, 8), 5),
    (lambda: FSQ([8, 8, 8, 5, 5, 5]), 5),
    (lambda: LFQ(8), 4),
    (lambda: BSQ(8), 4),
    (lambda: DimwiseQuantizer(bits=4), 3),
])
def test_every_quantizer_supports_perturbation(make, delta):
    q = make().eval()
    dim = 6 if isinstance(q, FSQ) else 8
    z = torch.randn(32, 16, dim)
    out = q(z)
    cand = q.nearby_indices(z, out.indices, delta)
    assert cand.shape == out.indices.shape + (delta,)
    assert torch.equal(cand[..., 0], out.indices)  # own code first
    res = LatentPerturbation(alpha=1.0, beta=1.0, delta=delta)(q, z, out)
    rate = (res.indices != out.indices).float().mean().item()
    assert 0.5 * (delta - 1) / delta < rate <= (delta - 1) / delta + 0.02
    assert torch.allclose(res.z_q, q.decode_indices(res.indices).reshape(res.z_q.shape), atol=1e-5)


def test_fixed_seed_is_reproducible():
    vq = _vq()
    z = torch.randn(8, 32, 8)
    out = vq(z)
    p = LatentPerturbation(alpha=0.5, beta=1.0, delta=10)
    a = p(vq, z, out, generator=torch.Generator().manual_seed(3)).indices
    b = p(vq, z, out, generator=torch.Generator().manual_seed(3)).indices
    assert torch.equal(a, b)


def test_robustok_schedule():
    ratio = robustok_schedule(40, 120, 0.5)
    assert ratio(0) == 1.0 and ratio(39) == 1.0 and ratio(80) == pytest.approx(0.75)
    assert ratio(120) == pytest.approx(0.5) and ratio(199) == 0.5
    p = LatentPerturbation(alpha=1.0, beta=0.1, delta=100, schedule="robustok")
    p.set_progress(80)
    assert p.current_alpha == pytest.approx(0.75) and p.current_delta == 75
    p.set_progress(150)
    assert p.current_delta == 50
    with pytest.raises(ValueError, match="unknown perturbation schedule"):
        LatentPerturbation(0.1, 0.1, 5, schedule="cosine")
