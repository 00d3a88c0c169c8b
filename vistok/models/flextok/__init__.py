"""FlexTok: flexible-length 1D image tokenizer with a rectified-flow decoder (Bachmann et al., 2025)."""
from vistok.models.flextok.config import FlexTokConfig
from vistok.models.flextok.model import FlexTok
from vistok.models.flextok.vae import FlexTokVAE, FlexTokVAEConfig

__all__ = ["FlexTok", "FlexTokConfig", "FlexTokVAE", "FlexTokVAEConfig"]
