"""albert_onnx: run ALBERT (fill-mask, classification, tagging, embeddings, question answering,
multiple choice, zero-shot) from an ONNX artifact, with only NumPy and ONNX Runtime."""

from .errors import AlbertOnnxError, ArtifactError, InputError, ProviderError
from .evaluation import evaluate
from .tasks import (
    Candidate,
    FeatureExtractor,
    FillMask,
    MultipleChoice,
    Predictor,
    QuestionAnswerer,
    TextClassifier,
    TokenClassifier,
    ZeroShotClassifier,
    pipeline,
)
from .tokenizer import Encoding, Tokenizer

__version__ = "0.3.0"
__all__ = ["AlbertOnnxError", "ArtifactError", "Candidate", "Encoding", "FeatureExtractor", "FillMask",
           "InputError", "MultipleChoice", "Predictor", "ProviderError", "QuestionAnswerer", "TextClassifier",
           "TokenClassifier", "Tokenizer", "ZeroShotClassifier", "__version__", "evaluate", "pipeline"]
