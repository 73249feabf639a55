"""``/openapi.json``: the server's API as an OpenAPI 3.1 document, built for the routes and the
task this server serves (a test validates it with ``openapi-spec-validator`` and runs
``schemathesis`` against it)."""

from __future__ import annotations

from typing import Any

from .. import __version__
from .served import Served

STR = {"type": "string"}
NUM = {"type": "number"}
INT = {"type": "integer"}
BOOL = {"type": "boolean"}
TEXT = {"type": "string", "minLength": 1, "pattern": "\\S"}
TEXTS = {"anyOf": [TEXT, {"type": "array", "items": TEXT, "minItems": 1}]}
NULLABLE_STR = {"type": ["string", "null"]}
DIRECTION = {"anyOf": [{"enum": ["Right", "Left", "right", "left"]}, {"type": "null"}],
             "description": "which end truncate cuts (TEI's truncation_direction)"}
PROMPT = {"type": ["string", "null"], "description": "TEI's prompt_name: this model has no prompts, so only null"}


def obj(properties: dict[str, Any], required: list[str] | None = None, closed: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    if closed:
        out["additionalProperties"] = False
    return out


def arr(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


LABEL_SCORE = obj({"label": STR, "score": NUM}, ["label", "score"])
CANDIDATE = obj({"score": NUM, "token": INT, "token_str": STR, "sequence": STR},
                ["score", "token", "token_str", "sequence"])
ENTITY = obj({"entity": STR, "entity_group": STR, "score": NUM, "index": INT, "word": STR,
              "start": {"type": ["integer", "null"]}, "end": {"type": ["integer", "null"]}}, ["score", "word"])
ANSWER = obj({"score": NUM, "start": INT, "end": INT, "answer": STR}, ["score", "start", "end", "answer"])
CHOICE = obj({"choice": STR, "index": INT, "score": NUM}, ["choice", "index", "score"])
ZERO_SHOT = obj({"sequence": STR, "labels": arr(STR), "scores": arr(NUM)}, ["sequence", "labels", "scores"])
VECTOR = arr(NUM)
ERROR = obj({"error": STR, "error_type": STR}, ["error", "error_type"])
OPENAI_ERROR = obj({"error": obj({"message": STR, "type": STR, "param": NULLABLE_STR, "code": NULLABLE_STR},
                                 ["message", "type", "param", "code"])}, ["error"])
TOKEN = obj({"id": INT, "text": STR, "special": BOOL, "start": {"type": ["integer", "null"]},
             "stop": {"type": ["integer", "null"]}}, ["id", "text", "special", "start", "stop"])

ANSWERS: dict[str, dict[str, Any]] = {  # what /predict answers, per task
    "fill-mask": arr({"anyOf": [CANDIDATE, arr({"anyOf": [CANDIDATE, arr({"anyOf": [CANDIDATE, arr(CANDIDATE)]})]})]}),
    "text-classification": arr({"anyOf": [LABEL_SCORE, arr(LABEL_SCORE)]}),
    "token-classification": arr({"anyOf": [ENTITY, arr(ENTITY)]}),
    "question-answering": {"anyOf": [ANSWER, arr({"anyOf": [ANSWER, arr(ANSWER)]})]},
    "multiple-choice": arr({"anyOf": [CHOICE, arr(CHOICE)]}),
    "zero-shot-classification": {"anyOf": [ZERO_SHOT, arr(ZERO_SHOT)]},
    "feature-extraction": {"anyOf": [arr(NUM), arr(VECTOR), arr(arr(VECTOR))]},
}
PREDICT_INPUTS: dict[str, dict[str, Any]] = {
    "question-answering": {"anyOf": [obj({"question": STR, "context": STR}, ["question", "context"]),
                                     arr(obj({"question": STR, "context": STR}, ["question", "context"]))]},
    "multiple-choice": {"anyOf": [obj({"question": STR, "choices": arr(STR)}, ["question", "choices"]),
                                  arr(obj({"question": STR, "choices": arr(STR)}, ["question", "choices"]))]},
    "text-classification": {"anyOf": [STR, obj({"text": STR, "text_pair": STR}, ["text"]),
                                      arr({"anyOf": [STR, obj({"text": STR, "text_pair": STR}, ["text"]),
                                                     arr(STR)]})]},
    "feature-extraction": {"anyOf": [TEXTS, obj({"source_sentence": STR, "sentences": arr(STR)},
                                                ["source_sentence", "sentences"])]},
}


def _predict(s: Served) -> dict[str, Any]:
    properties: dict[str, Any] = {"inputs": PREDICT_INPUTS.get(s.task, TEXTS),
                                  "parameters": {"type": ["object", "null"],
                                                 "description": f"the predictor's options: {sorted(s.parameters)}"}}
    if s.task == "feature-extraction":
        properties |= {"normalize": BOOL, "truncate": BOOL, "truncation_direction": DIRECTION, "prompt_name": PROMPT}
    if s.task == "text-classification":
        properties |= {"raw_scores": BOOL, "truncate": BOOL, "truncation_direction": DIRECTION}
    return _post("The Hugging Face Inference API's request for this task (and TEI's for a classifier or an "
                 "embedding model)", obj(properties, ["inputs"]), ANSWERS[s.task] if s.task in ANSWERS else {},
                 tag="Hugging Face Inference API")


def _post(summary: str, request: dict[str, Any], answer: dict[str, Any], tag: str,
          error: dict[str, Any] = ERROR) -> dict[str, Any]:
    return {"post": {"summary": summary, "tags": [tag],
                     "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
                     "responses": _responses(answer, error, "application/json")}}


def _get(summary: str, answer: dict[str, Any], tag: str, media: str = "application/json",
         error: dict[str, Any] = ERROR) -> dict[str, Any]:
    return {"get": {"summary": summary, "tags": [tag], "responses": _responses(answer, error, media)}}


def _responses(answer: dict[str, Any], error: dict[str, Any], media: str) -> dict[str, Any]:
    failure = {"content": {"application/json": {"schema": error}}}
    out: dict[str, Any] = {"200": {"description": "the answer", "content": {media: {"schema": answer}}}}
    for status, what in (("400", "the body is not JSON"), ("401", "the API key is missing or wrong"),
                         ("404", "no such route or model"), ("405", "wrong method"),
                         ("413", "over a limit: body, inputs or tokens"), ("422", "invalid input"),
                         ("503", "busy, or shutting down"), ("500", "internal error")):
        out[status] = {"description": what, **failure}
    return out


def openapi_document(s: Served, routes: list[str]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of a server of ``s.task`` with ``routes``."""
    embed_fields = {"inputs": TEXTS, "normalize": BOOL, "truncate": BOOL, "truncation_direction": DIRECTION,
                    "prompt_name": PROMPT}
    paths: dict[str, Any] = {
        "/predict": _predict(s),
        "/health": _get("Liveness: 200 while the process serves (503 while draining)", obj({"status": STR}),
                        "Operations"),
        "/ready": _get("Readiness: 503 while draining or when the model thread is stuck", obj({"status": STR}),
                       "Operations"),
        "/info": _get("The model, its task and precision, the limits; TEI's fields", {"type": "object"},
                      "Operations"),
        "/metrics": _get("Prometheus metrics", STR, "Operations", "text/plain"),
        "/openapi.json": _get("This document", {"type": "object"}, "Operations"),
        "/docs": _get("The API page", STR, "Operations", "text/html"),
        "/": _get("A page to try the model", STR, "Operations", "text/html"),
        "/tokenize": _post("TEI: the tokens of each input", obj({"inputs": TEXTS, "add_special_tokens": BOOL,
                                                                  "prompt_name": PROMPT}, ["inputs"]),
                           arr(arr(TOKEN)), "TEI"),
        "/decode": _post("TEI: the text of token ids", obj({"ids": {"anyOf": [arr(INT), arr(arr(INT))]},
                                                             "skip_special_tokens": BOOL}, ["ids"]), arr(STR), "TEI"),
        "/embed": _post("TEI: one pooled vector per input",
                        obj({**embed_fields, "pooling": {"enum": ["mean", "cls"]},
                             "dimensions": {"type": ["integer", "null"]}}, ["inputs"]), arr(VECTOR), "TEI"),
        "/embed_all": _post("TEI: every token's vector, per input", obj(embed_fields, ["inputs"]),
                            arr(arr(VECTOR)), "TEI"),
        "/rerank": _post("TEI: texts ranked against the query, best first",
                         obj({"query": STR, "texts": arr(STR), "return_text": BOOL, "raw_scores": BOOL,
                              "truncate": BOOL, "truncation_direction": DIRECTION}, ["query", "texts"]),
                         arr(obj({"index": INT, "score": NUM, "text": STR}, ["index", "score"])), "TEI"),
        "/v1/embeddings": _post(
            "OpenAI: embeddings (mean-pooled unit vectors; base64 is little-endian float32)",
            obj({"input": TEXTS, "model": {"const": s.model_name}, "encoding_format": {"enum": ["float", "base64"]},
                 "dimensions": {"type": ["integer", "null"]}, "user": NULLABLE_STR}, ["input", "model"]),
            obj({"object": {"const": "list"}, "model": STR,
                 "data": arr(obj({"object": {"const": "embedding"}, "index": INT,
                                  "embedding": {"anyOf": [VECTOR, STR]}}, ["object", "index", "embedding"])),
                 "usage": obj({"prompt_tokens": INT, "total_tokens": INT}, ["prompt_tokens", "total_tokens"])},
                ["object", "model", "data", "usage"]), "OpenAI", OPENAI_ERROR),
        "/v1/models": _get("OpenAI: the served model", obj({"object": STR, "data": arr(ref("Model"))},
                                                           ["object", "data"]), "OpenAI", error=OPENAI_ERROR),
    }
    out_paths = {p: v for p, v in paths.items() if p in routes}
    if "/v1/models" in routes:
        model = _get("OpenAI: one model", ref("Model"), "OpenAI", error=OPENAI_ERROR)
        model["get"]["parameters"] = [{"name": "model", "in": "path", "required": True, "schema": STR}]
        out_paths["/v1/models/{model}"] = model
    return {"openapi": "3.1.0",
            "info": {"title": f"albert-onnx serve: {s.model_name} ({s.task})", "version": __version__,
                     "description": "Routes in the shapes of the Hugging Face Inference API, TEI and OpenAI; "
                                    "see docs/serve.md. Errors: {error, error_type}, on /v1/* OpenAI's."},
            "paths": out_paths,
            "components": {"schemas": {"Model": obj({"id": STR, "object": STR, "created": INT, "owned_by": STR},
                                                    ["id", "object", "created", "owned_by"])},
                           "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}}}
