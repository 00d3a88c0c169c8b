"""vistok: image tokenizers and the core shared by every tokzoo family (quantizers, engine, zoo)."""
from vistok._version import __version__

__all__ = ["__version__"]
