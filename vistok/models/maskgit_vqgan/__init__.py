"""MaskGIT-VQGAN (f16): the model, its converter from the released weights and its family declaration."""
from vistok.models.maskgit_vqgan.model import (MaskGITVQGAN, MaskGITVQGANConfig, VQGANDecoder, VQGANDecoderConfig,
                                               VQGANEncoder)

__all__ = ["MaskGITVQGAN", "MaskGITVQGANConfig", "VQGANDecoder", "VQGANDecoderConfig", "VQGANEncoder"]
