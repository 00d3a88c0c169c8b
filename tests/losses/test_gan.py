import pytest
import torch

from vistok.losses import (LeCam, adaptive_generator_weight, hinge_d_loss, hinge_g_loss, non_saturating_d_loss,
                           non_saturating_g_loss)


def test_hinge_on_known_logits():
    real = torch.tensor([2.0, 0.5, -1.0])  # relu(1 - real) = 0, 0.5, 2 -> mean 5/6
    fake = torch.tensor([-2.0, 0.0, 1.0])  # relu(1 + fake) = 0, 1, 2 -> mean 1
    assert hinge_d_loss(real, fake).item() == pytest.approx(0.5 * (5 / 6 + 1))
    assert hinge_g_loss(fake).item() == pytest.approx(1 / 3)


def test_non_saturating_on_known_logits():
    real, fake = torch.tensor([0.0, 2.0]), torch.tensor([0.0])
    sp = torch.nn.functional.softplus
    expected = 0.5 * ((sp(torch.tensor(0.0)) + sp(torch.tensor(-2.0))) / 2 + sp(torch.tensor(0.0)))
    assert non_saturating_d_loss(real, fake).item() == pytest.approx(expected.item())
    assert non_saturating_g_loss(fake).item() == pytest.approx(torch.log(torch.tensor(2.0)).item())


def test_lecam_known_values_and_update():
    lecam = LeCam(decay=0.9)
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.0])  # means 2 and -0.5
    # EMAs start at 0: relu(2 - 0)^2 + relu(0 + 0.5)^2
    assert lecam.penalty(real, fake).item() == pytest.approx(4.25)
    lecam.update(real, fake)
    assert lecam.ema_real.item() == pytest.approx(0.2) and lecam.ema_fake.item() == pytest.approx(-0.05)
    # relu(2 + 0.05)^2 + relu(0.2 + 0.5)^2
    assert lecam.penalty(real, fake).item() == pytest.approx(2.05**2 + 0.7**2)
    # logits already "inside" the EMAs give no penalty
    assert lecam.penalty(torch.tensor([-1.0]), torch.tensor([1.0])).item() == 0.0


def test_lecam_gradient_only_through_logits():
    lecam = LeCam()
    real = torch.tensor([1.0, 2.0], requires_grad=True)
    fake = torch.tensor([0.5], requires_grad=True)
    lecam.penalty(real, fake).backward()
    assert real.grad is not None and fake.grad is not None
    assert not lecam.ema_real.requires_grad


def test_lecam_state_dict_round_trip():
    a = LeCam(decay=0.5)
    for _ in range(3):
        a.update(torch.randn(4), torch.randn(4))
    b = LeCam(decay=0.5)
    b.load_state_dict(a.state_dict())
    assert set(a.state_dict()) == {"ema_real", "ema_fake"}
    assert torch.equal(b.ema_real, a.ema_real) and torch.equal(b.ema_fake, a.ema_fake)
    assert b.ema_real.item() != 0.0


def test_adaptive_weight_is_hand_computed_gradient_ratio():
    torch.manual_seed(0)
    x, target, v = torch.randn(4, 3), torch.randn(4, 2), torch.randn(2)
    weight = torch.randn(2, 3, requires_grad=True)
    out = x @ weight.T
    rec = ((out - target) ** 2).mean()
    g = hinge_g_loss(out @ v)
    # d rec / dW = 2 / 8 * (out - t)^T x ;  d g / dW = -1/4 * v (sum_n x_n)^T
    rec_grad = (2 / 8) * (out - target).detach().T @ x
    g_grad = -0.25 * v[:, None] * x.sum(0)[None, :]
    expected = rec_grad.norm() / (g_grad.norm() + 1e-4)
    got = adaptive_generator_weight(rec, g, weight)
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
    assert not got.requires_grad
    (rec + got * g).backward()  # graphs were retained for the real backward
    assert weight.grad is not None
    out = x @ weight.T
    tiny = 1e-12 * hinge_g_loss(out @ v)
    assert adaptive_generator_weight(((out - target) ** 2).mean(), tiny, weight, max_weight=50.0).item() == 50.0
