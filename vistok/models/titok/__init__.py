"""TiTok (and One-D-Piece): 1D image tokenizers; the model, its converter from the authors' checkpoints,
its stage-1 objective and its family declaration (``family.py``)."""
from vistok.models.titok.model import TiTok, TiTokConfig, TiTokDecoder, TiTokEncoder

__all__ = ["TiTok", "TiTokConfig", "TiTokDecoder", "TiTokEncoder"]
