"""TEI's routes (text-embeddings-inference, what ``tei-client`` calls): ``/embed``,
``/embed_all``, ``/tokenize``, ``/decode``, ``/rerank`` and TEI's fields of ``/info``."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import __version__
from ..errors import InputError
from .cost import request_tokens, texts_of
from .http import HTTPError, need_bool, no_prompt, options, truncation_side
from .routes_hf import EMBED_FIELDS, embed
from .served import Served, plain

TOKENIZATION_WORKERS = 1  # tokenizing happens on the model thread


def embeddings_only(s: Served) -> None:
    if s.task != "feature-extraction":
        raise HTTPError(404, f"this server's model does {s.task}; embedding routes serve feature-extraction "
                             "artifacts (use /predict)", "not_found")


async def embed_route(s: Served, body: Any) -> Any:
    embeddings_only(s)
    fields = options(body, {**EMBED_FIELDS, "pooling": "mean", "dimensions": None}, "inputs")
    if fields["pooling"] not in ("mean", "cls"):
        raise HTTPError(422, f"unknown pooling {fields['pooling']!r}; valid: ['mean', 'cls']", param="pooling")
    check_dimensions(s, fields.pop("dimensions"))
    return await embed(s, fields, fields.pop("pooling"))


def check_dimensions(s: Served, dimensions: Any) -> None:
    """``dimensions``: only the model's own size is served (its vectors are not Matryoshka ones,
    so a cut vector would be a wrong answer)."""
    size = int(s.predictor.hidden_size)
    if dimensions is not None and (isinstance(dimensions, bool) or dimensions != size):
        raise HTTPError(422, f"dimensions={dimensions!r} is not served: this model's embeddings "
                             f"have {size} dimensions (leave dimensions out, or pass {size})",
                        param="dimensions", code="invalid_dimensions")


async def embed_all(s: Served, body: Any) -> Any:
    """Every token's vector (``[CLS]`` and ``[SEP]`` included), per input, as the model gives it.
    ``normalize`` is taken and left unused, as TEI does (tei-client sends it with every call)."""
    embeddings_only(s)
    fields = options(body, {"inputs": None, "normalize": True, "truncate": False, "truncation_direction": None,
                            "prompt_name": None}, "inputs")
    need_bool(fields, "normalize", "truncate")
    no_prompt(fields["prompt_name"])
    texts = texts_of(fields["inputs"])
    parameters = {"pooling": "none", "normalize": False, "truncation": fields["truncate"],
                  "truncation_side": truncation_side(fields["truncation_direction"])}
    return plain(await s.run(texts, parameters, request_tokens(s.task, texts, {}, s.max_length)))


async def tokenize(s: Served, body: Any) -> Any:
    """Per input, its tokens as TEI lists them: id, text, special, and the byte span of the
    input each non-special token covers."""
    fields = options(body, {"inputs": None, "add_special_tokens": True, "prompt_name": None}, "inputs")
    need_bool(fields, "add_special_tokens")
    no_prompt(fields["prompt_name"])
    texts = texts_of(fields["inputs"])
    if not texts or not all(isinstance(t, str) for t in texts):
        raise HTTPError(422, "inputs must be a str or a non-empty list of str", param="inputs")
    special = bool(fields["add_special_tokens"])
    cost = request_tokens("", texts, {}, s.max_length)
    return await s.run(texts, {}, cost, fn=lambda items: [_tokens(s, t, special) for t in items])


def _tokens(s: Served, text: str, add_special_tokens: bool) -> list[dict[str, Any]]:
    tok = s.predictor.tokenizer
    enc = tok.encode_with_offsets(text)
    bytes_before = np.concatenate([[0], np.cumsum([len(c.encode("utf-8")) for c in text])]).tolist()
    out = []
    for i, (token_id, (start, stop), kind) in enumerate(zip(enc.ids, enc.offsets, enc.special_tokens_mask)):
        if kind:
            if add_special_tokens:
                out.append({"id": int(token_id), "text": tok.convert_ids_to_tokens(int(token_id)), "special": True,
                            "start": None, "stop": None})
            continue
        a, b = bytes_before[start], bytes_before[stop]
        out.append({"id": int(token_id), "text": text[start:stop], "special": False, "start": a, "stop": b})
    return out


async def decode(s: Served, body: Any) -> Any:
    """The text of each list of ids (a flat list is one)."""
    fields = options(body, {"ids": None, "skip_special_tokens": True}, "ids")
    need_bool(fields, "skip_special_tokens")
    ids = fields["ids"]
    batch = ids if isinstance(ids, list) and ids and all(isinstance(x, list) for x in ids) else [ids]
    for row in batch:
        if not isinstance(row, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in row):
            raise HTTPError(422, "ids must be a list of token ids or a list of such lists", param="ids")
    tok = s.predictor.tokenizer
    try:
        return [tok.decode(row, skip_special_tokens=fields["skip_special_tokens"]) for row in batch]
    except InputError as exc:
        raise HTTPError(422, str(exc), param="ids") from None


def rerank_score(predictor: Any) -> Any:
    """How /rerank scores a (query, text) pair on a text classifier: a one-output model (a
    cross-encoder) by the sigmoid of its logit (``raw``: the logit), an NLI model by the
    probability of entailment; None for other classifiers."""
    labels = [label.lower() for label in predictor.labels]
    entail = next((i for i, label in enumerate(labels) if label.startswith("entail")), None)
    if len(labels) != 1 and entail is None:
        return None

    def score(pairs: list[dict[str, str]], raw: bool, truncation: bool, truncation_side: str) -> list[float]:
        logits = predictor.logits(pairs, truncation=truncation, truncation_side=truncation_side)
        if len(labels) == 1:
            return [float(x[0]) if raw else float(1 / (1 + np.exp(-x[0]))) for x in logits]
        if raw:
            return [float(x[entail]) for x in logits]
        return [float(np.exp(x[entail] - x.max()) / np.exp(x - x.max()).sum()) for x in logits]

    return score


async def rerank(s: Served, body: Any, score: Any) -> Any:
    if score is None:
        raise HTTPError(404, f"this server's model does {s.task}; /rerank serves a text-classification "
                             "artifact that scores pairs", "not_found")
    fields = options(body, {"query": None, "texts": None, "return_text": False, "raw_scores": False,
                            "truncate": False, "truncation_direction": None}, "query")
    query, texts = fields["query"], fields["texts"]
    if not isinstance(query, str) or not query.strip():
        raise HTTPError(422, "query must be a non-empty str", param="query")
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise HTTPError(422, "texts must be a non-empty list of str", param="texts")
    need_bool(fields, "return_text", "raw_scores", "truncate")
    pairs = [{"text": query, "text_pair": t} for t in texts]
    scores = await s.run(pairs, {"raw": fields["raw_scores"], "truncation": fields["truncate"],
                                 "truncation_side": truncation_side(fields["truncation_direction"])},
                         request_tokens(s.task, pairs, {}, s.max_length), score)
    order = sorted(range(len(texts)), key=lambda i: -scores[i])
    return [{"index": i, "score": float(scores[i]), **({"text": texts[i]} if fields["return_text"] else {})}
            for i in order]


def tei_info(s: Served, reranks: bool, dtype: str) -> dict[str, Any]:
    """TEI's ``/info`` fields for this server."""
    model_type: dict[str, Any]
    if s.task == "feature-extraction":
        model_type = {"embedding": {"pooling": "mean"}}
    else:
        labels = list(getattr(s.predictor, "labels", []) or [])
        meta = {"id2label": {str(i): label for i, label in enumerate(labels)},
                "label2id": {label: i for i, label in enumerate(labels)}}
        model_type = {"reranker" if reranks and len(labels) == 1 else "classifier": meta}
    limits = s.limits
    return {"model_id": s.model_name, "model_sha": None, "model_dtype": dtype, "model_type": model_type,
            "prompts": None, "default_prompt_name": None,
            "max_concurrent_requests": limits.max_queue, "max_input_length": s.max_length,
            "max_batch_tokens": limits.max_request_tokens, "max_batch_requests": None,
            "max_client_batch_size": limits.max_inputs, "auto_truncate": False,
            "tokenization_workers": TOKENIZATION_WORKERS, "version": __version__, "sha": None, "docker_label": None}
