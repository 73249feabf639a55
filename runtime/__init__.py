"""albert_onnx: fill masks with ALBERT from an ONNX artifact, with only NumPy and ONNX Runtime."""

from .errors import AlbertOnnxError, ArtifactError, InputError, ProviderError
from .fill_mask import Candidate, FillMask
from .tokenizer import Tokenizer

__version__ = "0.1.0"
__all__ = ["AlbertOnnxError", "ArtifactError", "Candidate", "FillMask", "InputError",
           "ProviderError", "Tokenizer", "__version__"]
