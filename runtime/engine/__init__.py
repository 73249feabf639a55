"""The encoder core every task runs on: artifact, tokenizer, session, length-batched runs."""

from .encoder import Encoder
from .io import GRAPH_IO, TASKS

__all__ = ["Encoder", "GRAPH_IO", "TASKS"]
