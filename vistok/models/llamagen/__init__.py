"""LlamaGen VQ (VQ-16, VQ-8): the model, its converter from the released ``.pt`` files and its family
declaration (``family.py``)."""
from vistok.models.llamagen.config import PRESETS, LlamaGenVQConfig, preset
from vistok.models.llamagen.model import LlamaGenVQ

__all__ = ["LlamaGenVQ", "LlamaGenVQConfig", "PRESETS", "preset"]
