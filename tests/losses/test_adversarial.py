import pytest
import torch
import torch.distributed as dist
import torch.nn as nn

from vistok.losses import AdversarialLoss, PatchDiscriminator, hinge_d_loss, hinge_g_loss


def make(**kwargs):
    disc = PatchDiscriminator(channels=8, norm="group")
    return AdversarialLoss(disc, **{"weight": 0.5, "start_step": 10, **kwargs})


def test_zero_before_start_step():
    adv = make()
    fake = torch.rand(2, 3, 32, 32, requires_grad=True)
    g, g_stats = adv.generator_loss(fake, step=9)
    d, d_stats = adv.discriminator_loss(torch.rand(2, 3, 32, 32), fake, step=9)
    for loss in (g, d):
        assert loss.dim() == 0 and loss.item() == 0.0 and loss.dtype == torch.float32
        loss.backward()  # grad-safe on its own
    assert g_stats == {"gan/g_weight": 0.0} and d_stats == {}
    assert not adv.active(9) and adv.active(10)
    assert not make(weight=0.0).active(10)


def test_generator_loss_leaves_discriminator_alone():
    adv = make()
    fake = torch.rand(2, 3, 32, 32, requires_grad=True)
    loss, stats = adv.generator_loss(fake, step=10)
    with torch.no_grad():
        expected = 0.5 * hinge_g_loss(adv.discriminator(fake))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    loss.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert all(p.grad is None for p in adv.discriminator.parameters())
    assert all(p.requires_grad for p in adv.discriminator.parameters())
    assert stats["gan/g_weight"] == 0.5 and all(isinstance(v, float) for v in stats.values())


def test_discriminator_loss_detaches_fake_and_adds_lecam():
    adv = make(lecam_weight=0.1)
    real = torch.rand(2, 3, 32, 32)
    fake = torch.rand(2, 3, 32, 32, requires_grad=True)
    with torch.no_grad():
        lr, lf = adv.discriminator(real), adv.discriminator(fake)
        expected = hinge_d_loss(lr, lf) + 0.1 * adv.lecam.penalty(lr, lf)
    loss, stats = adv.discriminator_loss(real, fake, step=10)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()
    assert fake.grad is None
    assert all(p.grad is not None for p in adv.discriminator.parameters())
    assert stats["gan/ema_logits_real"] == pytest.approx(0.001 * lr.mean().item(), rel=1e-4)
    assert set(stats) >= {"gan/d_loss", "gan/logits_real", "gan/logits_fake", "gan/lecam_penalty"}
    assert set(adv.state_dict()) >= {"lecam.ema_real", "lecam.ema_fake"}


def test_adaptive_weight_scales_generator_loss():
    adv = make(adaptive=True)
    decoder = nn.Conv2d(3, 3, 1)
    x = torch.rand(2, 3, 32, 32)
    fake = decoder(x)
    rec = (fake - x).abs().mean()
    loss, stats = adv.generator_loss(fake, step=10, rec_loss=rec, last_layer=decoder.weight)
    g = hinge_g_loss(adv.discriminator(fake))
    rec_grad, = torch.autograd.grad(rec, decoder.weight, retain_graph=True)
    g_grad, = torch.autograd.grad(g, decoder.weight, retain_graph=True)
    expected = 0.5 * rec_grad.norm() / (g_grad.norm() + 1e-4)
    assert stats["gan/g_weight"] == pytest.approx(expected.item(), rel=1e-4)
    (rec + loss).backward()
    with pytest.raises(ValueError):
        adv.generator_loss(fake.detach(), step=10)
    with torch.no_grad():  # validation: no autograd, adaptive factor 0 (taming's convention)
        _, stats = adv.generator_loss(decoder(x), step=10, rec_loss=rec.detach(), last_layer=decoder.weight)
    assert stats["gan/g_weight"] == 0.0


@pytest.fixture
def gloo_world(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


def test_ddp_wrapped_discriminator_trains_for_several_steps(gloo_world):
    """The engine hands a DDP-wrapped discriminator: generator passes must leave no gradient in D
    (it would be all-reduced and mixed into the D step) and G/D passes must alternate under DDP."""
    decoder = nn.parallel.DistributedDataParallel(nn.Conv2d(3, 3, 1))
    disc = nn.parallel.DistributedDataParallel(PatchDiscriminator(channels=8, norm="batch"))
    adv = AdversarialLoss(disc, weight=0.5, start_step=0, lecam_weight=0.1, adaptive=True)
    g_opt = torch.optim.SGD(decoder.parameters(), lr=0.01)
    d_opt = torch.optim.SGD(disc.parameters(), lr=0.01)
    for step in range(3):
        x = torch.rand(2, 3, 32, 32)
        fake = decoder(x)
        rec = (fake - x).abs().mean()
        g, _ = adv.generator_loss(fake, step, rec_loss=rec, last_layer=decoder.module.weight)
        (rec + g).backward()
        assert all(p.grad is None for p in disc.parameters())
        g_opt.step()
        g_opt.zero_grad()
        d, _ = adv.discriminator_loss(x, fake, step)
        d.backward()
        d_opt.step()
        d_opt.zero_grad()
    assert adv.lecam.ema_real.item() != 0.0
