"""audiotok: audio tokenizers (WavTokenizer-style codecs) built on the shared vistok core."""
from vistok._version import __version__

__all__ = ["__version__"]
