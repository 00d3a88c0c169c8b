"""SNAC: the multi-scale codec, its quantizer, its converter from the official layout and its family declaration."""
from audiotok.models.snac.config import PRESETS, SNACConfig
from audiotok.models.snac.model import PAD_ID, SNAC
from audiotok.models.snac.quantizer import MultiScaleQuantizer

__all__ = ["MultiScaleQuantizer", "PAD_ID", "PRESETS", "SNAC", "SNACConfig"]
