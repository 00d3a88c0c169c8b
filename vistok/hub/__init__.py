"""The zoo: catalogue of published tokenizers, download and cache, converters, save/load."""
from vistok.hub.catalogue import get_card, list_cards
from vistok.hub.loading import load_tokenizer
from vistok.models.pretrained import save_pretrained

__all__ = ["get_card", "list_cards", "load_tokenizer", "save_pretrained"]
