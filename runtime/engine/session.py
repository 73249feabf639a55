"""ONNX Runtime sessions: provider choice, thread count, and checks of what really attached."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort

from ..errors import ArtifactError, InputError, ProviderError
from .int8_form import Int8Choice, int8_graph

PROVIDER_NAMES = ("cpu", "cuda", "auto")
_EP = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
MAX_THREADS = 1024


def check_threads(threads: int | None) -> int | None:
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= MAX_THREADS:
        raise InputError(f"threads must be None (ONNX Runtime's default) or an integer in "
                         f"1..{MAX_THREADS}, not {threads!r}")
    return threads


def resolve_provider(provider: str) -> tuple[str, str | None]:
    """Map ``cpu``/``cuda``/``auto`` to the provider to use, and a note when auto fell back."""
    if provider not in PROVIDER_NAMES:
        raise InputError(f"unknown provider {provider!r}; valid: {list(PROVIDER_NAMES)}")
    available = ort.get_available_providers()
    if provider == "cpu":
        return "cpu", None
    if _EP["cuda"] in available:
        return "cuda", None
    if provider == "cuda":
        raise ProviderError(f"provider 'cuda' unavailable; available: {available} "
                            "(install onnxruntime-gpu and a CUDA runtime, or use provider='cpu')")
    return "cpu", f"provider 'auto': CUDA unavailable (available: {available}); using the CPU"


def create_session(path: Path, provider: str, threads: int | None, *,
                   shown_as: Path | None = None) -> ort.InferenceSession:
    """Open ``path`` on ``provider`` ('cpu' or 'cuda'), failing if that provider did not attach.
    Errors name ``shown_as`` (default ``path``)."""
    shown = shown_as or path
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.inter_op_num_threads = 1
    if threads is not None:
        opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    providers = [_EP[provider]] + ([_EP["cpu"]] if provider != "cpu" else [])
    # the export splits SkipLayerNormalization (slow on the CPU since ONNX Runtime 1.30): keep it split there
    keep_split = {"disabled_optimizers": ["SkipLayerNormFusion"]} if provider == "cpu" else {}
    try:
        session = ort.InferenceSession(str(path), sess_options=opts, providers=providers, **keep_split)
    except Exception as exc:  # ORT raises its own exception types (Fail, InvalidGraph, ...)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArtifactError(f"{shown}: ONNX Runtime cannot load this graph ({first[:300]})") from None
    attached = session.get_providers()
    if _EP[provider] not in attached:
        raise ProviderError(f"provider {provider!r} did not attach to {shown.name}; "
                            f"attached: {attached}")
    return session


def create_int8_session(path: Path, provider: str, threads: int | None, int8_weights: str = "auto",
                        stored: str | None = None) -> tuple[ort.InferenceSession, Int8Choice]:
    """Open the int8 graph ``path`` with its product weights in the form ``int8_weights``
    (``auto``: exact and fastest on this CPU), converted at load where the file holds the other.
    ``stored``: the form the manifest records, which spares the scan where it is the one wanted."""
    with int8_graph(path, int8_weights, stored) as (load_path, choice):
        return create_session(load_path, provider, threads, shown_as=path), choice
