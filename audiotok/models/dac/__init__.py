"""DAC: the codec, its quantizer, its converters from the official layouts and its family declaration."""
from audiotok.models.dac.config import PRESETS, DACConfig
from audiotok.models.dac.model import DAC, PAD_ID
from audiotok.models.dac.quantizer import DROPPED, DACQuantizer, FactorizedLevel

__all__ = ["DAC", "DACConfig", "DACQuantizer", "DROPPED", "FactorizedLevel", "PAD_ID", "PRESETS"]
