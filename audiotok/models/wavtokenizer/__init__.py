"""WavTokenizer: the codec, its converter from the authors' checkpoints and its family declaration."""
from audiotok.models.wavtokenizer.model import PAD_ID, TOKEN_RATE_STRIDES, WavTokenizer, WavTokenizerConfig

__all__ = ["PAD_ID", "TOKEN_RATE_STRIDES", "WavTokenizer", "WavTokenizerConfig"]
