"""albert_onnx: run ALBERT (fill-mask, classification, tagging, embeddings) from an ONNX
artifact, with only NumPy and ONNX Runtime."""

from .errors import AlbertOnnxError, ArtifactError, InputError, ProviderError
from .tasks import (
    Candidate,
    FeatureExtractor,
    FillMask,
    Predictor,
    TextClassifier,
    TokenClassifier,
    pipeline,
)
from .tokenizer import Encoding, Tokenizer

__version__ = "0.2.0"
__all__ = ["AlbertOnnxError", "ArtifactError", "Candidate", "Encoding", "FeatureExtractor", "FillMask",
           "InputError", "Predictor", "ProviderError", "TextClassifier", "TokenClassifier", "Tokenizer",
           "__version__", "pipeline"]
