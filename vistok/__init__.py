"""vistok: image tokenizers and the core shared by every tokzoo family (quantizers, engine, zoo)."""
from vistok._version import __version__


def load_tokenizer(name_or_path, **kwargs):
    """Load a tokenizer by zoo name, local directory or Hugging Face repo (see :mod:`vistok.hub.loading`)."""
    from vistok.hub.loading import load_tokenizer as _load

    return _load(name_or_path, **kwargs)


__all__ = ["__version__", "load_tokenizer"]
