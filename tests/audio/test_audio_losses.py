import pytest
import torch

from audiotok.discriminators import (DACDiscriminator, DiscriminatorSet, MultiPeriodDiscriminator,
                                     MultiResolutionDiscriminator)
from audiotok.dsp import MelSpectrogram
from audiotok.losses import (AdversarialTerm, AudioAdversarial, MelReconstructionLoss, MultiResolutionSTFTLoss,
                             feature_matching_loss, hinge_discriminator_loss, hinge_generator_loss,
                             lsgan_discriminator_loss, lsgan_generator_loss, wavtokenizer_terms)

# ----- formulas on known inputs -----


def test_hinge_losses_on_known_logits():
    real = [torch.tensor([[2.0, 0.5]]), torch.tensor([[-1.0]])]  # relu(1 - r): means 0.25 and 2
    fake = [torch.tensor([[-2.0, 0.0]]), torch.tensor([[1.0]])]  # relu(1 + f): means 0.5 and 2
    assert hinge_discriminator_loss(real, fake).item() == pytest.approx((0.25 + 0.5 + 2 + 2) / 2)
    assert hinge_discriminator_loss(real, fake, "sum").item() == pytest.approx(4.75)
    # generator: relu(1 - f): means (3 + 1) / 2 = 2 and 0
    assert hinge_generator_loss(fake).item() == pytest.approx(1.0)
    assert hinge_generator_loss(fake, "sum").item() == pytest.approx(2.0)


def test_lsgan_losses_on_known_logits():
    real = [torch.tensor([[1.0, 0.0]]), torch.tensor([[3.0]])]  # (1 - r)^2: 0.5 and 4
    fake = [torch.tensor([[0.0, 2.0]]), torch.tensor([[-1.0]])]  # f^2: 2 and 1
    assert lsgan_discriminator_loss(real, fake, "sum").item() == pytest.approx(7.5)
    assert lsgan_discriminator_loss(real, fake).item() == pytest.approx(3.75)
    # generator: (1 - f)^2: (1 + 1) / 2 = 1 and 4
    assert lsgan_generator_loss(fake, "sum").item() == pytest.approx(5.0)
    assert lsgan_generator_loss(fake).item() == pytest.approx(2.5)


def test_feature_matching_sums_layers_and_reduces_sub_discriminators():
    real = [[torch.zeros(2, 3), torch.ones(4)], [torch.full((2,), 2.0)]]
    fake = [[torch.ones(2, 3), torch.ones(4) * 0.5], [torch.zeros(2)]]
    # sub 1: 1 + 0.5 = 1.5; sub 2: 2
    assert feature_matching_loss(real, fake).item() == pytest.approx(1.75)
    assert feature_matching_loss(real, fake, "sum").item() == pytest.approx(3.5)


def test_feature_matching_detaches_real_features():
    real = [[torch.randn(3, requires_grad=True)]]
    fake = [[torch.randn(3, requires_grad=True)]]
    feature_matching_loss(real, fake).backward()
    assert real[0][0].grad is None and fake[0][0].grad is not None


def test_loss_inputs_are_checked():
    with pytest.raises(ValueError, match="reduction"):
        hinge_generator_loss([torch.zeros(1)], "max")
    with pytest.raises(ValueError, match="2 real vs 1 fake"):
        lsgan_discriminator_loss([torch.zeros(1)] * 2, [torch.zeros(1)])
    with pytest.raises(ValueError, match="loss must be"):
        AdversarialTerm(loss="wasserstein")


def test_mel_loss_is_l1_of_clipped_log_mel():
    torch.manual_seed(0)
    real, fake = torch.randn(2, 4800) * 0.1, torch.randn(2, 4800) * 0.1
    loss = MelReconstructionLoss()
    mel = MelSpectrogram(24000, 1024, 256, n_mels=100)
    expected = (mel(real).clamp_min(1e-7).log() - mel(fake).clamp_min(1e-7).log()).abs().mean()
    assert loss(real, fake).item() == pytest.approx(expected.item(), rel=1e-6)
    assert loss(real, real).item() == 0.0
    assert loss(real, fake).item() == pytest.approx(loss(fake, real).item())
    with pytest.raises(ValueError, match="shapes differ"):
        loss(real, fake[:, :-1])


def test_multi_resolution_stft_loss():
    torch.manual_seed(0)
    real = torch.randn(3, 6000)
    loss = MultiResolutionSTFTLoss()
    assert loss(real, real).item() == pytest.approx(0.0, abs=1e-6)
    per_item = loss.per_item(real, real + 0.1 * torch.randn(3, 6000))
    assert per_item.shape == (3,) and bool((per_item > 0).all())
    louder = loss.per_item(real, real + 0.5 * torch.randn(3, 6000))
    assert bool((louder > per_item).all())
    fake = real.clone().requires_grad_(True)
    loss(real, fake * 0.5).backward()
    assert fake.grad is not None and torch.isfinite(fake.grad).all()


# ----- AudioAdversarial -----


def _small_set(seed=0):
    torch.manual_seed(seed)
    return DiscriminatorSet({
        "mpd": MultiPeriodDiscriminator(periods=(2, 3), num_embeddings=4),
        "mrd": MultiResolutionDiscriminator(((256, 64, 256), (128, 32, 128)), num_embeddings=4),
        "dac": DACDiscriminator(periods=(2,), fft_sizes=(256,)),
    })


def _audio(seed=1, n=2, t=2048):
    g = torch.Generator().manual_seed(seed)
    real = torch.randn(n, t, generator=g) * 0.2
    return real, real + 0.05 * torch.randn(n, t, generator=g)


def _dac_term(adv, real, fake):
    _, stats = adv.generator_loss(real, fake)
    return stats["gan/g_dac"], stats["gan/fm_dac"]


def test_default_is_the_published_recipe():
    terms = wavtokenizer_terms()
    assert terms["mpd"] == AdversarialTerm("hinge", 1.0, 1.0, "mean")
    assert terms["mrd"] == AdversarialTerm("hinge", 1.0, 1.0, "mean")
    assert terms["dac"] == AdversarialTerm("lsgan", 1.0, 1.0, "sum")
    adv = AudioAdversarial(_small_set())
    assert adv.dac_mode == "published" and adv.published_dac is not None
    assert {"published_dac", "discriminators"} <= {n.split(".")[0] for n in adv.state_dict()}


def test_generator_loss_reaches_fake_only():
    adv = AudioAdversarial(_small_set(), dac_mode="corrected")
    real, fake = _audio()
    fake.requires_grad_(True)
    loss, stats = adv.generator_loss(real, fake, torch.tensor([1]))
    loss.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert all(p.grad is None for p in adv.discriminators.parameters())
    assert all(p.requires_grad for p in adv.discriminators.parameters())  # restored after the call
    parts = sum(stats[f"gan/{k}_{n}"] for n in ("mpd", "mrd", "dac") for k in ("g", "fm"))
    assert loss.item() == pytest.approx(parts, rel=1e-5)
    assert stats["gan/g_total"] == pytest.approx(loss.item(), rel=1e-6)


def test_weights_and_loss_types_are_applied():
    real, fake = _audio()
    base = AudioAdversarial(_small_set(), dac_mode="corrected")
    terms = {"mpd": {"loss": "lsgan", "weight": 2.0, "fm_weight": 0.0}, "mrd": {"weight": 0.5, "fm_weight": 3.0},
             "dac": AdversarialTerm("hinge", 1.0, 1.0, "mean")}
    custom = AudioAdversarial(_small_set(), terms=terms, dac_mode="corrected")
    loss, stats = custom.generator_loss(real, fake)
    expected = 2 * stats["gan/g_mpd"] + 0.5 * stats["gan/g_mrd"] + 3 * stats["gan/fm_mrd"]
    expected += stats["gan/g_dac"] + stats["gan/fm_dac"]
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    _, base_stats = base.generator_loss(real, fake)
    assert stats["gan/fm_mrd"] == pytest.approx(base_stats["gan/fm_mrd"], rel=1e-5)
    assert stats["gan/g_mpd"] != pytest.approx(base_stats["gan/g_mpd"])  # lsgan instead of hinge
    with pytest.raises(ValueError, match="terms for"):
        AudioAdversarial(_small_set(), terms={"mpd": {}})
    with pytest.raises(ValueError, match="dac_mode"):
        AudioAdversarial(_small_set(), dac_mode="fixed")


def test_discriminator_loss_trains_the_discriminators():
    adv = AudioAdversarial(_small_set(), dac_mode="corrected")
    real, fake = _audio()
    fake.requires_grad_(True)
    loss, stats = adv.discriminator_loss(real, fake, torch.tensor([0, 3]))
    loss.backward()
    assert fake.grad is None
    assert all(p.grad is not None for p in adv.discriminators.parameters() if p.requires_grad)
    assert loss.item() == pytest.approx(stats["gan/d_mpd"] + stats["gan/d_mrd"] + stats["gan/d_dac"], rel=1e-5)


def test_published_generator_loss_ignores_the_optimised_dac():
    real, fake = _audio()
    adv = AudioAdversarial(_small_set(), dac_mode="published")
    trained = adv.discriminators["dac"]
    before = _dac_term(adv, real, fake)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(torch.randn_like(p))
    assert _dac_term(adv, real, fake) == pytest.approx(before, rel=1e-6)
    # and no gradient can reach it: the optimised instance is never trained
    fake_g = fake.clone().requires_grad_(True)
    adv.generator_loss(real, fake_g)[0].backward()
    d_loss, _ = adv.discriminator_loss(real, fake, torch.tensor([2]))
    d_loss.backward()
    assert all(p.grad is None for p in trained.parameters())
    assert all(p.grad is not None for n in ("mpd", "mrd") for p in adv.discriminators[n].parameters())


def test_corrected_generator_loss_follows_the_optimised_dac():
    real, fake = _audio()
    adv = AudioAdversarial(_small_set(), dac_mode="corrected")
    before = _dac_term(adv, real, fake)
    with torch.no_grad():
        for p in adv.discriminators["dac"].parameters():
            p.add_(torch.randn_like(p))
    after = _dac_term(adv, real, fake)
    assert after[0] != pytest.approx(before[0], rel=1e-3) and after[1] != pytest.approx(before[1], rel=1e-3)


def test_discriminator_steps_change_only_the_corrected_generator_loss():
    real, fake = _audio()
    moved = {}
    for mode in ("published", "corrected"):
        adv = AudioAdversarial(_small_set(), dac_mode=mode)
        params = [p for p in adv.discriminators.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-2)
        before = _dac_term(adv, real, fake)
        for _ in range(2):
            opt.zero_grad()
            adv.discriminator_loss(real, fake)[0].backward()
            opt.step()
        moved[mode] = abs(_dac_term(adv, real, fake)[0] - before[0])
    assert moved["published"] == 0.0
    assert moved["corrected"] > 1e-4


def test_published_dac_discriminator_term_is_logged_but_carries_no_gradient():
    real, fake = _audio()
    adv = AudioAdversarial(_small_set(), dac_mode="published")
    loss, stats = adv.discriminator_loss(real, fake)
    fixed = adv.published_dac
    with torch.no_grad():
        logits = fixed(torch.cat([real, fake]))[0]
    expected = lsgan_discriminator_loss([l[:2] for l in logits], [l[2:] for l in logits], "sum")
    assert stats["gan/d_dac"] == pytest.approx(expected.item(), rel=1e-5)
    assert loss.item() == pytest.approx(stats["gan/d_mpd"] + stats["gan/d_mrd"] + stats["gan/d_dac"], rel=1e-5)
    # the fixed copy is seeded: a new instance (e.g. after resuming) gets the same network
    again = AudioAdversarial(_small_set(seed=5), dac_mode="published")
    for a, b in zip(fixed.parameters(), again.published_dac.parameters()):
        torch.testing.assert_close(a, b)
    other = AudioAdversarial(_small_set(), dac_mode="published", published_dac_seed=1)
    assert not torch.equal(next(fixed.parameters()), next(other.published_dac.parameters()))


def test_mismatched_real_and_fake_are_rejected():
    adv = AudioAdversarial(_small_set())
    real, fake = _audio()
    with pytest.raises(ValueError, match="differ"):
        adv.generator_loss(real, fake[:, :-10])
