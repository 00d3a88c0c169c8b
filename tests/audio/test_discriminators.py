import pytest
import torch

from audiotok.discriminators import (ComplexBandDiscriminator, DACDiscriminator, DiscriminatorSet,
                                     MultiPeriodDiscriminator, MultiResolutionDiscriminator, PeriodDiscriminator,
                                     ResolutionDiscriminator, wavtokenizer_discriminators)


def _params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def wavtokenizer_set():
    torch.manual_seed(0)
    return wavtokenizer_discriminators().eval()


def test_parameter_counts_match_the_published_discriminators(wavtokenizer_set):
    # figures from instantiating the WavTokenizer code (shared/reference/audio.md, section 1.6)
    assert _params(wavtokenizer_set["mpd"]) == 41_126_250
    assert _params(wavtokenizer_set["mrd"]) == 600_966
    assert _params(wavtokenizer_set["dac"]) == 42_519_760
    # unconditional variants lose exactly the embedding tables
    assert _params(MultiPeriodDiscriminator()) == 41_126_250 - 5 * 4 * 1024
    assert _params(MultiResolutionDiscriminator()) == 600_966 - 3 * 4 * 64


def test_convolutions_are_weight_normed(wavtokenizer_set):
    convs = [m for m in wavtokenizer_set.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(hasattr(m, "parametrizations") and "weight" in m.parametrizations for m in convs)


def test_output_structure_and_shapes(wavtokenizer_set):
    x = torch.randn(2, 6000) * 0.1
    with torch.no_grad():
        out = wavtokenizer_set(x, torch.tensor([1]))
    assert list(out) == ["mpd", "mrd", "dac"]
    logits, fmaps = out["mpd"]
    assert len(logits) == len(fmaps) == 5
    for (p, l), f in zip(zip((2, 3, 5, 7, 11), logits), fmaps):
        frames = -(-6000 // p)
        h = frames
        for _ in range(4):
            h = (h - 1) // 3 + 1
        assert l.shape == (2, h * p)
        assert len(f) == 5 and f[-1].shape == (2, 1, h, p)  # convs 2-5 and the post conv
        assert [m.shape[1] for m in f[:-1]] == [128, 512, 1024, 1024]
    logits, fmaps = out["mrd"]
    assert len(logits) == 3 and all(len(f) == 6 and f[0].shape[1] == 64 for f in fmaps)
    for l, f, (n_fft, hop, _) in zip(logits, fmaps, ((1024, 256, 1024), (2048, 512, 2048), (512, 128, 512))):
        assert l.shape == (2, f[-1][0].numel())
        assert fmaps and f[0].shape[2:] == ((n_fft // 2 + 1 - 1) // 2 + 1, (6000 // hop + 1 - 1) // 2 + 1)
    logits, fmaps = out["dac"]
    assert len(logits) == 8
    assert [len(f) for f in fmaps] == [5] * 5 + [25] * 3  # logit maps are not feature maps here
    assert all(l.dim() == 2 and l.shape[0] == 2 for l in logits)


def test_items_are_scored_independently(wavtokenizer_set):
    x = torch.randn(3, 4000) * 0.2
    with torch.no_grad():
        batch = wavtokenizer_set(x)
        single = wavtokenizer_set(x[1:2])
    for name in batch:
        for a, b in zip(batch[name][0], single[name][0]):
            torch.testing.assert_close(a[1:2], b, atol=1e-5, rtol=1e-4)


def test_condition_projection_starts_at_zero_then_matters():
    torch.manual_seed(0)
    d = PeriodDiscriminator(3, num_embeddings=4)
    x = torch.randn(2, 3000)
    with torch.no_grad():
        plain, _ = d(x)
        cond0, f0 = d(x, torch.tensor([2]))
        torch.testing.assert_close(plain, cond0)
        d.projection.emb.weight.normal_()
        cond2, f2 = d(x, torch.tensor([2]))
        cond_b, _ = d(x, torch.tensor([2, 1]))  # one id per item
    assert not torch.allclose(cond2, plain)
    torch.testing.assert_close(f2[-1].flatten(1), cond2)  # the last feature map includes the projection
    torch.testing.assert_close(cond_b[0], cond2[0])
    assert not torch.allclose(cond_b[1], cond2[1])
    with pytest.raises(ValueError, match="num_embeddings"):
        PeriodDiscriminator(3)(x, torch.tensor([0]))


def test_resolution_discriminator_uses_a_rectangular_window():
    d = ResolutionDiscriminator((64, 16, 64))
    x = torch.randn(1, 640, dtype=torch.float64)
    spec = d.spectrogram(x.float())
    padded = torch.nn.functional.pad(x[:, None], (32, 32), mode="reflect")[:, 0]
    frame = padded[0, 5 * 16: 5 * 16 + 64]
    torch.testing.assert_close(spec[0, :, 5], torch.fft.rfft(frame).abs().float(), atol=1e-4, rtol=1e-4)


def test_dac_discriminator_ignores_gain_and_dc_offset():
    torch.manual_seed(0)
    d = DACDiscriminator(periods=(2, 3), fft_sizes=(256,))
    x = torch.randn(2, 2048) * 0.1
    with torch.no_grad():
        a, _ = d(x)
        b, _ = d(3.0 * x + 0.25)
    for la, lb in zip(a, b):
        torch.testing.assert_close(la, lb, atol=1e-4, rtol=1e-4)


def test_dac_band_split_and_period_padding():
    band = ComplexBandDiscriminator(512)
    assert band.bands == [(0, 25), (25, 64), (64, 128), (128, 192), (192, 257)]
    assert band.spectrogram(torch.randn(2, 1024)).shape == (2, 2, 1024 // 128 + 1, 257)
    d = DACDiscriminator(periods=(4,), fft_sizes=())
    _, fmaps = d(torch.randn(1, 16))
    assert fmaps[0][0].shape[2] == 2  # 16 samples + a whole extra period (DAC pads even when T % p == 0)


def test_set_runs_the_named_subset_and_checks_input():
    s = DiscriminatorSet({"mrd": MultiResolutionDiscriminator(((256, 64, 256),))})
    out = s(torch.randn(1, 1, 1024), names=["mrd"])  # (B, 1, T) is accepted
    assert list(out) == ["mrd"]
    with pytest.raises(KeyError, match="no discriminator named"):
        s(torch.randn(1, 1024), names=["dac"])
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        s(torch.randn(2, 2, 1024))
