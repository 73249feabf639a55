"""OpenAI's embeddings API (what the ``openai`` SDK and LangChain's ``OpenAIEmbeddings`` call):
``POST /v1/embeddings``, ``GET /v1/models`` and ``GET /v1/models/{model}``. Errors on ``/v1/*``
take OpenAI's shape (the app does that), so the SDK raises its own exception class with the
message."""

from __future__ import annotations

import base64
import functools
import time
from typing import Any

import numpy as np

from .cost import request_tokens
from .http import HTTPError
from .routes_tei import check_dimensions, embeddings_only
from .served import Served

MAX_INPUTS = 2048  # what OpenAI's embeddings endpoint takes in one request
FIELDS = ("input", "model", "encoding_format", "dimensions", "user")
_STARTED = int(time.time())


def _bad(message: str, param: str, code: str | None = None) -> HTTPError:
    return HTTPError(400, message, param=param, code=code)


def check_model(s: Served, model: Any) -> None:
    if not isinstance(model, str):
        raise _bad("you must provide a model parameter (a str)", "model")
    if model != s.model_name:
        raise HTTPError(404, f"The model '{model}' does not exist; this server serves '{s.model_name}' "
                             "(--model-name)", "not_found", param="model", code="model_not_found")


@functools.cache  # one function per server: the model thread merges the requests that share it
def _embed_counted(s: Served) -> Any:
    """The model thread's call for a list of texts: per text, its unit mean-pooled vector and
    the tokens it ran (mergeable: each text's entry is its own)."""
    def call(texts: list[str]) -> list[tuple[np.ndarray, int]]:
        vectors, lengths = s.predictor.embed_with_lengths(texts, pooling="mean", normalize=True)
        return list(zip(vectors, lengths))

    call.merges_lists = True  # type: ignore[attr-defined]
    return call


async def embeddings(s: Served, body: Any) -> Any:
    embeddings_only(s)
    if not isinstance(body, dict):
        raise _bad(f"the body must be a JSON object, not {type(body).__name__}", "body")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise _bad(f"Unrecognized request argument supplied: {unknown[0]}; valid: {list(FIELDS)}", unknown[0])
    if "input" not in body:
        raise _bad("you must provide an input parameter", "input")
    check_model(s, body.get("model"))
    fmt = body.get("encoding_format") or "float"
    if fmt not in ("float", "base64"):
        raise _bad(f"encoding_format {fmt!r} is not valid; valid: ['float', 'base64']", "encoding_format")
    try:
        check_dimensions(s, body.get("dimensions"))
    except HTTPError as exc:
        raise _bad(exc.message, "dimensions", exc.code) from None
    texts = body["input"]
    texts = [texts] if isinstance(texts, str) else texts
    if not isinstance(texts, list) or not texts:
        raise _bad("input must be a str or a non-empty list of str", "input")
    if all(isinstance(t, int) and not isinstance(t, bool) for t in texts) or \
            all(isinstance(t, list) for t in texts):
        raise _bad("input as token ids is not served: send the text", "input")
    for n, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise _bad(f"input[{n}] must be a non-empty str", "input")
    if len(texts) > MAX_INPUTS:
        raise _bad(f"{len(texts)} inputs in one request; the most is {MAX_INPUTS}", "input")
    answers = await s.run(texts, {}, request_tokens(s.task, texts, {}, s.max_length), fn=_embed_counted(s))
    data = []
    for n, (vector, _) in enumerate(answers):
        vector = np.asarray(vector, dtype="<f4")
        value: Any = base64.b64encode(vector.tobytes()).decode("ascii") if fmt == "base64" else vector.tolist()
        data.append({"object": "embedding", "index": n, "embedding": value})
    tokens = int(sum(length for _, length in answers))
    return {"object": "list", "data": data, "model": s.model_name,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def model_card(s: Served) -> dict[str, Any]:
    return {"id": s.model_name, "object": "model", "created": _STARTED, "owned_by": "albert-onnx"}


async def models(s: Served, body: None) -> Any:
    embeddings_only(s)
    return {"object": "list", "data": [model_card(s)]}


async def model(s: Served, name: str) -> Any:
    if name != s.model_name:
        raise HTTPError(404, f"The model '{name}' does not exist; this server serves '{s.model_name}'",
                        "not_found", param="model", code="model_not_found")
    return model_card(s)
