"""Layers shared by the models."""
from vistok.nn.transformer import TransformerStack, ViTSize, VIT_SIZES

__all__ = ["TransformerStack", "ViTSize", "VIT_SIZES"]
