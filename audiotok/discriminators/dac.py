"""The DAC discriminator: DAC's period discriminators plus complex multi-band STFT discriminators,
on DC-free, peak-normalised input; no multi-scale (waveform) part (DAC's published configurations
leave it out too: ``Discriminator.rates: []``). By default its STFT is WavTokenizer's port
(rectangular window, centred frames); ``window="hann", match_stride=True`` is descript-audio-codec's
own (``dac/model/discriminator.py`` MRD over audiotools' ``AudioSignal.stft``)."""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from audiotok.discriminators.base import DiscriminatorOutput, as_batch, wn_conv2d

# Fractions of the one-sided spectrum each band covers (DAC's defaults).
DAC_BANDS = ((0.0, 0.1), (0.1, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0))
WINDOWS = ("rect", "hann")


def _conv_act(*args, **kwargs) -> nn.Sequential:
    return nn.Sequential(wn_conv2d(*args, **kwargs), nn.LeakyReLU(0.1))


class DACPeriodDiscriminator(nn.Module):
    """DAC's variant of the period discriminator: same widths as HiFi-GAN's, every conv's activation
    is a feature map, no conditioning. It always pads ``period - T % period`` samples (a whole extra
    period when ``T`` is already a multiple), as DAC does.

    Returns ``(logits (B, N), the five activations)``; the final map is the logit, not matched."""

    def __init__(self, period: int, channels: int = 32):
        super().__init__()
        self.period = int(period)
        widths = (1,) + tuple(channels * k for k in (1, 4, 16, 32, 32))
        self.convs = nn.ModuleList(
            _conv_act(widths[i], widths[i + 1], (5, 1), (3, 1) if i < 4 else 1, padding=(2, 0)) for i in range(5))
        self.conv_post = wn_conv2d(widths[-1], 1, (3, 1), padding=(1, 0))

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        x = F.pad(x[:, None], (0, self.period - x.shape[-1] % self.period), mode="reflect")
        h = x.view(x.shape[0], 1, -1, self.period)
        fmaps = []
        for conv in self.convs:
            h = conv(h)
            fmaps.append(h)
        return self.conv_post(h).flatten(1), fmaps


class ComplexBandDiscriminator(nn.Module):
    """Convs over the complex STFT (real and imaginary parts as two channels, time x frequency),
    one conv stack per frequency band, the band outputs joined along frequency before a last conv.

    STFT: ``n_fft = window_length``, hop ``n_fft // 4``, centred with reflect padding. As
    WavTokenizer computes it (default): a rectangular window. As DAC computes it (``window="hann"``,
    ``match_stride=True``): a periodic Hann window, and the input first reflect-padded by
    ``(n_fft - hop) // 2`` on the left and that plus enough to reach a multiple of the hop on the
    right, the two first and two last frames then dropped, so ``ceil(T / hop)`` frames remain (the
    frames line up with a stride-``hop`` convolution). Band edges are ``int(fraction * (n_fft // 2 + 1))``. Each band: convs (3, 9) 2 -> 32, three (3, 9) 32 -> 32 with
    frequency stride 2, one (3, 3), LeakyReLU(0.1) after each.

    Returns ``(logits (B, N), the 5 x bands activations, band by band)``."""

    def __init__(self, window_length: int, bands: Sequence[Tuple[float, float]] = DAC_BANDS, channels: int = 32,
                 window: str = "rect", match_stride: bool = False):
        super().__init__()
        if window not in WINDOWS:
            raise ValueError(f"ComplexBandDiscriminator: window must be one of {WINDOWS}, got {window!r}")
        self.n_fft = int(window_length)
        self.match_stride = bool(match_stride)
        bins = self.n_fft // 2 + 1
        self.bands = [(int(lo * bins), int(hi * bins)) for lo, hi in bands]
        c = channels

        def stack() -> nn.ModuleList:
            return nn.ModuleList([
                _conv_act(2, c, (3, 9), (1, 1), padding=(1, 4)),
                _conv_act(c, c, (3, 9), (1, 2), padding=(1, 4)),
                _conv_act(c, c, (3, 9), (1, 2), padding=(1, 4)),
                _conv_act(c, c, (3, 9), (1, 2), padding=(1, 4)),
                _conv_act(c, c, (3, 3), (1, 1), padding=(1, 1)),
            ])

        self.band_convs = nn.ModuleList(stack() for _ in self.bands)
        self.conv_post = wn_conv2d(c, 1, (3, 3), (1, 1), padding=(1, 1))
        taper = torch.hann_window(self.n_fft, periodic=True) if window == "hann" else torch.ones(self.n_fft)
        self.register_buffer("window", taper, persistent=False)

    def spectrogram(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` -> ``(B, 2, frames, n_fft // 2 + 1)`` (real, imaginary), computed in fp32."""
        hop = self.n_fft // 4
        x = x.float()
        if self.match_stride:
            pad = (self.n_fft - hop) // 2
            right = -(-x.shape[-1] // hop) * hop - x.shape[-1]
            x = F.pad(x[:, None], (pad, pad + right), mode="reflect")[:, 0]
        spec = torch.stft(x, self.n_fft, hop, window=self.window.float(), center=True,
                          pad_mode="reflect", return_complex=True)
        if self.match_stride:
            spec = spec[..., 2:-2]
        return torch.view_as_real(spec).permute(0, 3, 2, 1).to(x.dtype)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        spec = self.spectrogram(x)
        fmaps, outs = [], []
        for (lo, hi), convs in zip(self.bands, self.band_convs):
            h = spec[..., lo:hi]
            for conv in convs:
                h = conv(h)
                fmaps.append(h)
            outs.append(h)
        return self.conv_post(torch.cat(outs, dim=-1)).flatten(1), fmaps


class DACDiscriminator(nn.Module):
    """Period discriminators (2, 3, 5, 7, 11) and complex band discriminators (STFT sizes 2048, 1024,
    512): 42,519,760 parameters, unconditional. ``channels`` (32 published) scales every
    sub-discriminator's widths (a CPU demo trains a narrower one). ``window`` and ``match_stride`` choose the band
    discriminators' STFT (:class:`ComplexBandDiscriminator`: WavTokenizer's by default, DAC's own with
    ``"hann"`` and ``True``). The input is centred and peak-normalised to 0.8 per
    item first. ``forward(x, cond=None)`` takes ``(B, T)`` waveforms (``cond`` is accepted for a
    uniform interface and ignored) and returns ``(logits, feature maps)`` per sub-discriminator,
    periods first."""

    def __init__(self, periods: Sequence[int] = (2, 3, 5, 7, 11), fft_sizes: Sequence[int] = (2048, 1024, 512),
                 bands: Sequence[Tuple[float, float]] = DAC_BANDS, window: str = "rect", match_stride: bool = False,
                 channels: int = 32):
        super().__init__()
        if isinstance(channels, bool) or int(channels) != channels or channels < 1:
            raise ValueError(f"DACDiscriminator: channels must be a positive integer (32 published), got {channels!r}")
        channels = int(channels)
        self.config = {"periods": tuple(periods), "fft_sizes": tuple(fft_sizes), "bands": tuple(bands),
                       "window": window, "match_stride": bool(match_stride), "channels": channels}
        discs: List[nn.Module] = [DACPeriodDiscriminator(p, channels) for p in periods]
        discs += [ComplexBandDiscriminator(n, bands, channels, window=window, match_stride=match_stride)
                  for n in fft_sizes]
        self.discriminators = nn.ModuleList(discs)

    @staticmethod
    def preprocess(x: torch.Tensor) -> torch.Tensor:
        x = x - x.mean(dim=-1, keepdim=True)
        return 0.8 * x / (x.abs().amax(dim=-1, keepdim=True) + 1e-9)

    def forward(self, x: torch.Tensor, cond: Optional[torch.Tensor] = None) -> DiscriminatorOutput:
        x = self.preprocess(as_batch(x, "DACDiscriminator"))
        outs = [d(x) for d in self.discriminators]
        return [o[0] for o in outs], [o[1] for o in outs]
