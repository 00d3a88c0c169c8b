"""EnCodec: the codec, its converters from the official layouts and its family declaration."""
from audiotok.models.encodec.config import PRESETS, EnCodecConfig
from audiotok.models.encodec.model import PAD_ID, EnCodec, EnCodecCodes

__all__ = ["PAD_ID", "PRESETS", "EnCodec", "EnCodecCodes", "EnCodecConfig"]
