"""``POST /predict``: the Hugging Face Inference API's request and response shapes (what
``huggingface_hub.InferenceClient`` sends and reads), and TEI's ``/predict`` for classifiers.

Which shape a body speaks:

- ``{"inputs": ..., "parameters": {...}}``: the Inference API; ``parameters`` are the
  predictor's options. Text classification answers one list of labels per input (a lone input
  too: ``[[{"label", "score"}]]``), as the API does; every other task the predictor's answer.
- feature extraction without ``parameters`` (``{"inputs", "normalize", "truncate",
  "truncation_direction", "prompt_name"}``, the API's own form for this task): TEI's
  embeddings (mean pooling, unit length unless ``normalize`` is false), one vector per input.
- ``{"inputs": {"source_sentence", "sentences"}}`` on feature extraction: sentence
  similarity, the cosine of each sentence's embedding with the source's.
- a text classifier's body with TEI's fields (``raw_scores``, ``truncate``,
  ``truncation_direction``) or with a batch of ``[text]`` / ``[text, pair]`` lists, and no
  ``parameters``: TEI's ``/predict``, every label best first, per input.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .cost import request_tokens, sequence, texts_of
from .http import HTTPError, need_bool, no_prompt, options, truncation_side
from .served import Served, plain

TEI_PREDICT_FIELDS = {"raw_scores", "truncate", "truncation_direction"}
EMBED_FIELDS = {"inputs": None, "normalize": True, "truncate": False, "truncation_direction": None,
                "prompt_name": None}


async def predict(s: Served, body: Any) -> Any:
    if not isinstance(body, dict):
        raise HTTPError(422, f"the body must be a JSON object, not {type(body).__name__}")
    inputs = body.get("inputs")
    if s.task == "feature-extraction":
        if isinstance(inputs, dict) and "source_sentence" in inputs:
            return await sentence_similarity(s, body)
        if "parameters" not in body:
            return await embed(s, options(body, EMBED_FIELDS, "inputs"), pooling="mean")
    if s.task == "text-classification" and "parameters" not in body and (
            TEI_PREDICT_FIELDS & set(body)
            or isinstance(inputs, list) and inputs and all(isinstance(x, list) for x in inputs)):
        return await tei_predict(s, body)
    unknown = sorted(set(body) - {"inputs", "parameters"})
    if unknown or "inputs" not in body:
        raise HTTPError(422, f"the body is {{'inputs': ..., 'parameters': {{...}}}}; got keys {sorted(body)}")
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise HTTPError(422, f"parameters must be an object, not {type(parameters).__name__}")
    bad = sorted(set(parameters) - s.parameters)
    if bad:
        raise HTTPError(422, f"unknown parameter {bad[0]!r} for {s.task}; valid: {sorted(s.parameters)}")
    cost = request_tokens(s.task, inputs, parameters, s.max_length)
    if s.task == "text-classification":  # one list of labels per input, as the Inference API answers
        answers = await s.run(texts_of(inputs), parameters, cost)
        return [plain(a if isinstance(a, list) else [a]) for a in answers]
    return plain(await s.run(inputs, parameters, cost))


async def embed(s: Served, fields: dict[str, Any], pooling: str) -> Any:
    """TEI's embeddings of ``inputs`` (a str or a list): one vector per input."""
    need_bool(fields, "normalize", "truncate")
    no_prompt(fields["prompt_name"])
    texts = texts_of(fields["inputs"])
    parameters = {"pooling": pooling, "normalize": fields["normalize"], "truncation": fields["truncate"],
                  "truncation_side": truncation_side(fields["truncation_direction"])}
    vectors = await s.run(texts, parameters, request_tokens(s.task, texts, {}, s.max_length))
    return plain(vectors)


async def sentence_similarity(s: Served, body: dict[str, Any]) -> Any:
    """The Inference API's sentence similarity: the cosine of each of ``sentences`` with
    ``source_sentence``, on mean-pooled embeddings."""
    unknown = sorted(set(body) - {"inputs", "parameters"})
    if unknown or body.get("parameters"):
        raise HTTPError(422, "sentence similarity takes {'inputs': {'source_sentence': str, 'sentences': [str]}} "
                             "and no parameters")
    inputs = body["inputs"]
    bad = sorted(set(inputs) - {"source_sentence", "sentences"})
    if bad:
        raise HTTPError(422, f"unknown field {bad[0]!r} in inputs; valid: ['sentences', 'source_sentence']")
    source, sentences = inputs.get("source_sentence"), inputs.get("sentences")
    if not isinstance(source, str):
        raise HTTPError(422, "inputs.source_sentence must be a str")
    if not isinstance(sentences, list) or not sentences or not all(isinstance(x, str) for x in sentences):
        raise HTTPError(422, "inputs.sentences must be a non-empty list of str")
    texts = [source, *sentences]
    vectors = await s.run(texts, {"pooling": "mean", "normalize": True},
                          sum(sequence(t) for t in texts), count=len(sentences))
    vectors = np.asarray(vectors, dtype=np.float64)
    return [float(x) for x in vectors[1:] @ vectors[0]]


def tei_sequences(inputs: Any) -> tuple[list[Any], bool]:
    """TEI's predict inputs as the classifier's: ``(items, single)``; an item is a text or a
    ``{"text", "text_pair"}`` pair."""
    def item(x: Any) -> Any:
        if isinstance(x, str):
            return x
        if isinstance(x, list) and len(x) in (1, 2) and all(isinstance(t, str) for t in x):
            return x[0] if len(x) == 1 else {"text": x[0], "text_pair": x[1]}
        raise HTTPError(422, "inputs must be a string, a pair of strings [string, string] or a batch of "
                             f"[string] and [string, string] lists, not {str(x)[:60]}")

    if isinstance(inputs, str):
        return [inputs], True
    if isinstance(inputs, list) and inputs and all(isinstance(x, str) for x in inputs):
        return [item(inputs)], True
    if isinstance(inputs, list) and inputs:
        return [item(x) for x in inputs], False
    raise HTTPError(422, "inputs must be a string, a pair of strings or a non-empty batch of them")


async def tei_predict(s: Served, body: dict[str, Any]) -> Any:
    """TEI's ``/predict``: every label with its score, best first, per input."""
    fields = options(body, {"inputs": None, "raw_scores": False, "truncate": False, "truncation_direction": None},
                     "inputs")
    need_bool(fields, "raw_scores", "truncate")
    items, single = tei_sequences(fields["inputs"])
    parameters = {"top_k": None, "function_to_apply": "none" if fields["raw_scores"] else None,
                  "truncation": fields["truncate"], "truncation_side": truncation_side(fields["truncation_direction"])}
    answers = plain(await s.run(items, parameters, request_tokens(s.task, items, {}, s.max_length)))
    ranked = [[{"score": a["score"], "label": a["label"]} for a in answer] for answer in answers]
    return ranked[0] if single else ranked
