"""X-Codec 2 (HKUST): the native codec (w2v-BERT semantic encoder included), its converters from the
official and transformers' layouts and its family declaration. Inference only."""
from audiotok.models.xcodec2.config import XCodec2Config
from audiotok.models.xcodec2.model import PAD_ID, XCodec2

__all__ = ["PAD_ID", "XCodec2", "XCodec2Config"]
