"""Quantizers shared by every tokzoo model (image and audio).

All of them take channels-last input ``(..., dim)`` and return :class:`QuantOut`; distance
search and code lookup run in fp32 with autocast off.
"""
from vistok.quant.base import QuantOut, Quantizer, Stats, channels_first, channels_last
from vistok.quant.binary import BSQ, LFQ
from vistok.quant.dimwise import DimwiseQuantizer, gaussian_bin_centers
from vistok.quant.fsq import FSQ
from vistok.quant.perturb import LatentPerturbation, make_schedule, robustok_schedule
from vistok.quant.rvq import ResidualVQ
from vistok.quant.stats import CodebookUsage
from vistok.quant.vq import VectorQuantizer

__all__ = [
    "QuantOut", "Quantizer", "Stats", "channels_first", "channels_last",
    "VectorQuantizer", "ResidualVQ", "LFQ", "BSQ", "FSQ", "DimwiseQuantizer", "gaussian_bin_centers",
    "LatentPerturbation", "make_schedule", "robustok_schedule", "CodebookUsage",
]
