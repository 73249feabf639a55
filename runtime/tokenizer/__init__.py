"""The pure-Python ALBERT tokenizer: token for token with ``AlbertTokenizerFast``."""

from .encoding import Encoding
from .tokenizer import Tokenizer

__all__ = ["Encoding", "Tokenizer"]
