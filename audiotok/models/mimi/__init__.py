"""Mimi (kyutai): the codec, its split residual VQ, its converters from moshi's and transformers'
layouts and its family declaration. Inference only."""
from audiotok.models.mimi.config import MimiConfig
from audiotok.models.mimi.model import PAD_ID, Mimi
from audiotok.models.mimi.quantizer import SplitRVQ

__all__ = ["Mimi", "MimiConfig", "PAD_ID", "SplitRVQ"]
