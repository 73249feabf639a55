"""The heavy side of albert-onnx: Hugging Face ALBERT MLM -> validated ONNX artifact.

Needs ``pip install 'albert-onnx[export]'`` (torch, transformers, optimum, onnx, sentencepiece).
"""

# Import the heavy dependencies here, so a missing [export] extra fails at this one import,
# which the CLI turns into an install hint, and never halfway through an export.
import onnx  # noqa: F401
import torch  # noqa: F401
import transformers  # noqa: F401

from .exporter import export_model
from .source import DEFAULT_SOURCE, ExportError

__all__ = ["DEFAULT_SOURCE", "ExportError", "export_model"]
