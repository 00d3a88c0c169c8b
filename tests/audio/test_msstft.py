"""EnCodec's multi-scale STFT discriminator (``loss.audio.discriminators: [msstft]``)."""
import pytest
import torch

from audiotok.discriminators import MultiScaleSTFTDiscriminator
from audiotok.discriminators.msstft import ENCODEC_SCALES

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
