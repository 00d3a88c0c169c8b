"""EnCodec's multi-scale STFT discriminator (``loss.audio.discriminators: [msstft]``)."""
import pytest
import torch

from audiotok.discriminators import MultiScaleSTFTDiscriminator
from audiotok.discriminators.msstft import ENCODEC_SCALES
from audiotok.encodec_losses import (AudioCraftTerm, audiocraft_feature_matching, audiocraft_generator_loss,
                                     generator_terms)

TINY = ((64, 16, 64), (32, 8, 24))


def _halve(bins: int, times: int) -> int:
    """Frequency bins after ``times`` stride-2 convs of width 9, padding 4."""
    for _ in range(times):
        bins = (bins - 1) // 2 + 1
    return bins


def test_tiny_config_output_structure_and_shapes():
    torch.manual_seed(0)
    disc = MultiScaleSTFTDiscriminator(TINY, filters=4)
    x = torch.randn(3, 520)
    logits, fmaps = disc(x)
    assert len(logits) == len(fmaps) == len(TINY)
    for (n_fft, hop, _), logit, maps in zip(TINY, logits, fmaps):
        frames, bins = (520 - n_fft) // hop + 1, n_fft // 2 + 1
        assert len(maps) == 5
        assert maps[0].shape == (3, 4, frames, bins)
        for i in (1, 2, 3):
            assert maps[i].shape == (3, 4, frames, _halve(bins, i))
        assert maps[4].shape == (3, 4, frames, _halve(bins, 3))
        assert logit.shape == (3, frames * _halve(bins, 3))
    # (B, 1, T) is accepted; the class id is ignored (the reference has no conditioning)
    same, _ = disc(x[:, None], cond=torch.tensor([1]))
    for a, b in zip(logits, same):
        torch.testing.assert_close(a, b)


def test_first_conv_is_plain_the_others_weight_normed():
    scale = MultiScaleSTFTDiscriminator(TINY, filters=4).discriminators[0]
    assert not hasattr(scale.convs[0], "parametrizations")
    assert all(hasattr(c, "parametrizations") for c in list(scale.convs[1:]) + [scale.conv_post])


def test_published_config_parameter_count():
    disc = MultiScaleSTFTDiscriminator()
    assert [(d.n_fft, d.hop_length, d.win_length) for d in disc.discriminators] == list(ENCODEC_SCALES)
    # Measured from AudioCraft's audiocraft/adversarial/discriminators/msstftd.py (commit 896ec7c4),
    # MultiScaleSTFTDiscriminator(filters=32, norm="weight_norm", n_ffts=[1024, 2048, 512, 256, 128],
    # hop_lengths=[256, 512, 128, 64, 32], win_lengths=n_ffts, LeakyReLU 0.3), i.e. the msstftd section of
    # config/solver/compression/default.yaml: sum(p.numel() for p in parameters()) == 472330.
    assert sum(p.numel() for p in disc.parameters()) == 472330


def test_gradients_reach_every_parameter_and_the_input():
    torch.manual_seed(0)
    disc = MultiScaleSTFTDiscriminator(TINY, filters=4)
    x = torch.randn(2, 300, requires_grad=True)
    logits, fmaps = disc(x)
    loss = sum(l.mean() for l in logits) + sum(f.mean() for maps in fmaps for f in maps)
    loss.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, p in disc.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_the_audio_objective_builds_and_trains_it_from_a_recipe():
    from audiotok.objective import AudioObjective
    from vistok.engine.recipe import load_recipe

    recipe = load_recipe(None, ["model.family=wavtokenizer", "loss.kind=audio", "loss.adversarial.weight=1.0",
                                "loss.audio.discriminators=[msstft]", "data.kind=audio"])
    objective = AudioObjective(recipe, "cpu")
    assert list(objective.discriminator.keys()) == ["msstft"]
    disc = objective.discriminator["msstft"]
    assert isinstance(disc, MultiScaleSTFTDiscriminator)
    term = objective.adversarial.terms["msstft"]
    assert isinstance(term, AudioCraftTerm)
    assert (term.loss, term.weight, term.fm_weight, term.reduction) == ("hinge", 4.0, 4.0, "mean")
    torch.manual_seed(0)
    real, fake = torch.randn(2, 4096) * 0.1, torch.randn(2, 4096) * 0.1
    loss, stats = objective.adversarial.discriminator_loss(real, fake)
    assert torch.isfinite(loss) and "gan/d_msstft" in stats
    loss.backward()
    for d in disc.discriminators:
        assert d.convs[0].weight.grad is not None and d.convs[0].weight.grad.abs().sum() > 0
        assert d.conv_post.parametrizations.weight.original1.grad is not None


def test_input_shorter_than_the_largest_fft_is_an_error():
    with pytest.raises(RuntimeError):
        MultiScaleSTFTDiscriminator(TINY, filters=4)(torch.randn(1, 40))


def test_audiocraft_normalisation_of_the_gan_terms():
    """AudioCraft's AdversarialLoss with adv_loss hinge, feat_loss l1, normalize true: generator
    -mean(D(fake)) and per-scale mean over feature maps of the L1 distance, both averaged over scales."""
    fake_logits = [torch.tensor([[2.0, -1.0]]), torch.tensor([[0.5, 0.5, 3.5]])]
    assert audiocraft_generator_loss(fake_logits).item() == pytest.approx((-0.5 + -1.5) / 2)
    assert audiocraft_generator_loss(fake_logits, "sum").item() == pytest.approx(-2.0)
    real = [[torch.zeros(1, 2), torch.zeros(1, 4)], [torch.ones(1, 3)]]
    fake = [[torch.ones(1, 2), torch.full((1, 4), 3.0)], [torch.full((1, 3), 2.0)]]
    assert audiocraft_feature_matching(real, fake).item() == pytest.approx(((1 + 3) / 2 + 1) / 2)
    with pytest.raises(ValueError, match="only the hinge"):
        AudioCraftTerm("lsgan")


def test_generator_terms_agree_with_generator_loss_for_shared_terms():
    from audiotok.discriminators import DiscriminatorSet
    from audiotok.losses import AdversarialTerm, AudioAdversarial

    torch.manual_seed(0)
    discs = DiscriminatorSet({"a": MultiScaleSTFTDiscriminator(TINY, filters=4),
                              "b": MultiScaleSTFTDiscriminator(TINY[:1], filters=4)})
    adv = AudioAdversarial(discs, {"a": AdversarialTerm("hinge", 2.0, 0.5, "mean"),
                                   "b": AudioCraftTerm("hinge", 1.0, 3.0, "sum")})
    real, fake = torch.randn(2, 300), torch.randn(2, 300, requires_grad=True)
    parts, total, stats = generator_terms(adv, real, fake)
    assert set(parts) == {"adv_a", "feat_a", "adv_b", "feat_b"}
    reference, ref_stats = adv.generator_loss(real, fake)  # shared normalisation for "a" only
    assert stats["gan/g_a"] == pytest.approx(ref_stats["gan/g_a"])
    assert stats["gan/fm_a"] == pytest.approx(ref_stats["gan/fm_a"])
    logits, fmaps = discs["b"](fake)
    _, fmaps_real = discs["b"](real)
    assert parts["adv_b"].item() == pytest.approx(audiocraft_generator_loss(logits, "sum").item())
    assert parts["feat_b"].item() == pytest.approx(audiocraft_feature_matching(fmaps_real, fmaps, "sum").item())
    expected = 2.0 * parts["adv_a"] + 0.5 * parts["feat_a"] + parts["adv_b"] + 3.0 * parts["feat_b"]
    assert total.item() == pytest.approx(expected.item())
    total.backward()
    assert fake.grad.abs().sum() > 0 and all(p.grad is None for p in discs.parameters())
