"""Output heads that turn decoder features into a waveform."""
from __future__ import annotations

import torch
from torch import nn

from audiotok.dsp import istft
from vistok.quant.base import fp32_region


class ISTFTHead(nn.Module):
    """Features ``(B, L, dim)`` -> waveform ``(B, L * hop_length)`` through a predicted spectrum.

    A linear layer gives ``n_fft // 2 + 1`` log-magnitudes and as many phases per frame; the
    magnitude is ``exp`` capped at 100, and the complex spectrum goes through the "same"-padded
    inverse STFT (periodic Hann window of ``n_fft``). The spectral part runs in fp32 (fp64 inputs
    stay fp64), whatever autocast says.
    """

    def __init__(self, dim: int, n_fft: int, hop_length: int, padding: str = "same"):
        super().__init__()
        self.n_fft, self.hop_length, self.padding = n_fft, hop_length, padding
        self.proj = nn.Linear(dim, n_fft + 2)
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True), persistent=False)

    def spectrum(self, x: torch.Tensor) -> torch.Tensor:
        """The complex spectrum ``(B, n_fft // 2 + 1, L)`` the head predicts."""
        with fp32_region(x.device):
            x = x if x.dtype == torch.float64 else x.float()
            log_mag, phase = self.proj(x).transpose(1, 2).chunk(2, dim=1)
            mag = torch.exp(log_mag).clamp(max=1e2)
            return torch.complex(mag * torch.cos(phase), mag * torch.sin(phase))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spec = self.spectrum(x)
        with fp32_region(x.device):
            return istft(spec, self.n_fft, self.hop_length, window=self.window, padding=self.padding)
