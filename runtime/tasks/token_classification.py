"""Token classification (named entities, tags): a per-token head on the encoder core, with
the aggregation strategies of transformers' ``pipeline("token-classification")``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..engine.io import TOKEN_CLASSIFICATION
from ..errors import InputError
from ..tokenizer.encoding import Encoding
from ..tokenizer.tokenizer import overflow_windows
from .base import Predictor, as_list, check_positive, named_texts
from .text_classification import softmax

STRATEGIES = ("none", "simple", "first", "average", "max")


class TokenClassifier(Predictor):
    """Token classification from a ``token-classification`` artifact.

    Takes the options of :class:`~albert_onnx.tasks.base.Predictor`.
    """

    task = TOKEN_CLASSIFICATION
    merges_lists = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.labels: list[str] = list(self.manifest["task"]["id2label"])

    def __call__(self, inputs: str | Sequence[str], aggregation_strategy: str = "none",
                 ignore_labels: Sequence[str] | None = None, stride: int | None = None) -> Any:
        """Tag texts, with the results and nesting of the transformers pipeline.

        Args:
            inputs: a str or a list of str.
            aggregation_strategy: ``"none"`` (one entry per token, with ``entity`` and
                ``index``), ``"simple"`` (adjacent tokens of one entity grouped), ``"first"``,
                ``"average"`` or ``"max"`` (words first, then grouped; ALBERT's pieces have no
                word marks, so a token continues a word when no space precedes it).
            ignore_labels: labels left out of the results (default ``["O"]``).
            stride: tag texts longer than the model takes in overlapping windows of the
                tokenizer's ``model_max_length`` tokens, consecutive windows sharing ``stride``
                tokens; entities found in two windows are merged as the pipeline merges them
                (the longer, then the higher-scored wins). Needs an aggregation strategy.

        Returns:
            Per text a list of dicts with ``entity`` (``entity_group`` when aggregated),
            ``score``, ``word``, ``start``, ``end`` (character offsets into the text) and, for
            ``"none"``, ``index``; a str gives one such list.
        """
        strategy = self._check_strategy(aggregation_strategy)
        ignore = self._check_ignore(ignore_labels)
        texts = as_list(inputs)
        windows: list[tuple[int, Encoding]] = []  # (text number, window)
        for n, (where, text) in enumerate(named_texts(texts)):
            if stride is None:
                enc = self.tokenizer.encode_with_offsets(text)
                self.encoder.check_length(where, len(enc.ids))
                windows.append((n, enc))
            else:
                windows += [(n, w) for w in self._windows(text, self._check_stride(stride, strategy))]
        logits = self.encoder.run([w.ids for _, w in windows], ["logits"])
        results: list[list[dict[str, Any]]] = [[] for _ in texts]
        for (n, enc), out in zip(windows, logits):
            entities = self._aggregate(self._pre_entities(texts[n], enc, softmax(out[0]), strategy), strategy)
            results[n] += [e for e in entities if e.get("entity") not in ignore and e.get("entity_group") not in ignore]
        if stride is not None:
            counts = [sum(1 for m, _ in windows if m == n) for n in range(len(texts))]
            results = [_merge_overlapping(r) if c > 1 else r for r, c in zip(results, counts)]
        return results[0] if isinstance(inputs, str) else results

    def _check_stride(self, stride: int, strategy: str) -> int:
        stride = check_positive("stride", stride)
        if strategy == "none":
            raise InputError("stride needs an aggregation_strategy other than 'none' (as the pipeline's): "
                             f"valid: {list(STRATEGIES[1:])}")
        return stride

    def _windows(self, text: str, stride: int) -> list[Encoding]:
        """The text's tokens in windows of the tokenizer's ``model_max_length`` (special tokens
        included), consecutive windows sharing ``stride`` tokens, as the tokenizer's overflow."""
        spans = self.tokenizer._encode_spans(text)
        room = self.truncation_length - 2
        if len(spans) <= room:
            return [self.tokenizer.assemble([spans])]
        if stride >= room:
            raise InputError(f"stride={stride} must be smaller than the {room} tokens a window holds "
                             f"(model_max_length {self.truncation_length} less [CLS] and [SEP])")
        return [self.tokenizer.assemble([spans[begin:stop]])
                for begin, stop in overflow_windows(len(spans), room, stride)]

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _check_strategy(strategy: str) -> str:
        if not isinstance(strategy, str) or strategy.lower() not in STRATEGIES:
            raise InputError(f"unknown aggregation_strategy {strategy!r}; valid: {list(STRATEGIES)}")
        return strategy.lower()

    @staticmethod
    def _check_ignore(ignore: Sequence[str] | None) -> set[str]:
        if ignore is None:
            return {"O"}
        if isinstance(ignore, str) or not all(isinstance(x, str) for x in ignore):
            raise InputError(f"ignore_labels must be a list of label strings, not {ignore!r}")
        return set(ignore)

    def _pre_entities(self, text: str, enc: Any, scores: np.ndarray, strategy: str) -> list[dict[str, Any]]:
        tok = self.tokenizer
        out = []
        for idx, (token_id, (start, end), special) in enumerate(zip(enc.ids, enc.offsets,
                                                                     enc.special_tokens_mask)):
            if special:
                continue
            word = tok.convert_ids_to_tokens(token_id)
            # The pipeline's fallback for tokenizers without word marks: a token continues a
            # word unless it starts the text or a space is just before or at its start.
            is_subword = start > 0 and " " not in text[start - 1 : start + 1]
            if token_id == tok.unk_token_id:
                word = text[start:end]
                is_subword = False
            out.append({"word": word, "scores": scores[idx], "start": start, "end": end,
                        "index": idx, "is_subword": is_subword})
        return out

    def _aggregate(self, pre: list[dict[str, Any]], strategy: str) -> list[dict[str, Any]]:
        if strategy in ("none", "simple"):
            entities = []
            for p in pre:
                best = int(p["scores"].argmax())
                entities.append({"entity": self.labels[best], "score": float(p["scores"][best]),
                                 "index": p["index"], "word": p["word"], "start": p["start"],
                                 "end": p["end"]})
            if strategy == "none":
                return entities
        else:
            entities = self._words(pre, strategy)
        return self._group(entities)

    def _words(self, pre: list[dict[str, Any]], strategy: str) -> list[dict[str, Any]]:
        groups: list[list[dict[str, Any]]] = []
        for p in pre:
            if groups and p["is_subword"]:
                groups[-1].append(p)
            else:
                groups.append([p])
        words = []
        for g in groups:
            if strategy == "first":
                scores = g[0]["scores"]
            elif strategy == "max":
                scores = max(g, key=lambda p: p["scores"].max())["scores"]
            else:
                scores = np.nanmean(np.stack([p["scores"] for p in g]), axis=0)
            best = int(scores.argmax())
            words.append({"entity": self.labels[best], "score": float(scores[best]),
                          "word": self.tokenizer.convert_tokens_to_string([p["word"] for p in g]),
                          "start": g[0]["start"], "end": g[-1]["end"]})
        return words

    @staticmethod
    def _tag(label: str) -> tuple[str, str]:
        if label.startswith("B-"):
            return "B", label[2:]
        if label.startswith("I-"):
            return "I", label[2:]
        return "I", label

    def _group(self, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
        groups: list[list[dict[str, Any]]] = []
        for e in entities:
            if groups:
                bi, tag = self._tag(e["entity"])
                if tag == self._tag(groups[-1][-1]["entity"])[1] and bi != "B":
                    groups[-1].append(e)
                    continue
            groups.append([e])
        return [{"entity_group": g[0]["entity"].split("-", 1)[-1],
                 "score": float(np.mean(np.nanmean(np.asarray([e["score"] for e in g], dtype=np.float32)))),
                 "word": self.tokenizer.convert_tokens_to_string([e["word"] for e in g]),
                 "start": g[0]["start"], "end": g[-1]["end"]} for g in groups]


def _merge_overlapping(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entities of overlapping windows, by start; of those that overlap, the longer wins, then
    the higher-scored (the pipeline's ``aggregate_overlapping_entities``)."""
    if not entities:
        return entities
    entities = sorted(entities, key=lambda x: x["start"])
    merged = []
    previous = entities[0]
    for entity in entities:
        if previous["start"] <= entity["start"] < previous["end"]:
            length, previous_length = entity["end"] - entity["start"], previous["end"] - previous["start"]
            if length > previous_length or length == previous_length and entity["score"] > previous["score"]:
                previous = entity
        else:
            merged.append(previous)
            previous = entity
    merged.append(previous)
    return merged
