"""Extractive question answering (JSQuAD): a span head on the encoder core, called and answering
exactly like transformers' ``pipeline("question-answering")`` with a fast tokenizer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine.io import QUESTION_ANSWERING
from ..errors import InputError
from ..tokenizer.encoding import Encoding
from ..tokenizer.tokenizer import overflow_windows
from .base import Predictor, check_item, check_positive

MAX_SEQ_LEN = 384  # the pipeline's default cap on a window


def default_doc_stride(max_seq_len: int) -> int:
    """Tokens consecutive windows share when ``doc_stride`` is not given, as the pipeline picks it."""
    return min(max_seq_len // 2, 128)
NULL_START_SCORE = 1000000.0  # the pipeline's initial "minimum null score"


@dataclass(frozen=True)
class Window:
    """One window of a (question, context) example: its encoding and which example it is."""

    example: int
    encoding: Encoding


def spans(start: np.ndarray, end: np.ndarray, allowed: np.ndarray, top_k: int, max_answer_len: int,
          null_score: float, handle_impossible_answer: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The pipeline's span decoding on one window's logits: a softmax over the allowed tokens
    (the context and ``[CLS]``), start x end probabilities of spans of at most
    ``max_answer_len`` tokens, the ``top_k`` best; and the null score (``[CLS]``'s) so far."""
    undesired = allowed == 0
    start = np.where(undesired, np.float32(-10000.0), start)[None]
    end = np.where(undesired, np.float32(-10000.0), end)[None]
    start = np.exp(start - start.max(axis=-1, keepdims=True))
    start = start / start.sum()
    end = np.exp(end - end.max(axis=-1, keepdims=True))
    end = end / end.sum()
    if handle_impossible_answer:
        null_score = min(null_score, (start[0, 0] * end[0, 0]).item())
    start[0, 0] = end[0, 0] = 0.0
    outer = np.matmul(np.expand_dims(start, -1), np.expand_dims(end, 1))
    candidates = np.tril(np.triu(outer), max_answer_len - 1)
    flat = candidates.flatten()
    if top_k == 1:
        order = np.array([np.argmax(flat)])
    elif len(flat) < top_k:
        order = np.argsort(-flat)
    else:
        idx = np.argpartition(-flat, top_k)[0:top_k]
        order = idx[np.argsort(-flat[idx])]
    starts, ends = np.unravel_index(order, candidates.shape)[1:]
    keep = np.isin(starts, allowed.nonzero()) & np.isin(ends, allowed.nonzero())
    starts, ends = starts[keep], ends[keep]
    return starts, ends, candidates[0, starts, ends], null_score


class QuestionAnswerer(Predictor):
    """Extractive question answering from a ``question-answering`` artifact.

    Takes the options of :class:`~albert_onnx.tasks.base.Predictor`.
    """

    task = QUESTION_ANSWERING

    def __call__(self, *args: Any, question: str | Sequence[str] | None = None,
                 context: str | Sequence[str] | None = None, top_k: int = 1, doc_stride: int | None = None,
                 max_answer_len: int = 15, max_seq_len: int | None = None, max_question_len: int = 64,
                 handle_impossible_answer: bool = False, align_to_words: bool = True) -> Any:
        """Answer questions from contexts, as the transformers pipeline does.

        Call forms: ``qa(question=..., context=...)`` (str, or lists: a list of questions on one
        context, or two lists of equal length), ``qa(question, context)``, ``qa({"question":
        ..., "context": ...})`` or a list of such dicts.

        Args:
            top_k: answers per question, best first.
            doc_stride: tokens shared by consecutive windows of a long context (default
                ``min(max_seq_len // 2, 128)``).
            max_answer_len: the longest answer, in tokens.
            max_seq_len: tokens per window, question and special tokens included (default
                ``min(model_max_length, 384)``).
            max_question_len: accepted for the pipeline's signature; as there with a fast
                tokenizer, it limits nothing.
            handle_impossible_answer: also consider the empty answer (``[CLS]``).
            align_to_words: grow each answer to whole words. ALBERT's words are space-separated
                chunks: on unspaced Japanese a word is a whole phrase, so Japanese users want
                ``False`` (the answer is then exactly the predicted tokens).

        Returns:
            ``{"score", "start", "end", "answer"}`` (character offsets into the context) for one
            question with ``top_k=1``, a list of them for ``top_k > 1``; a list of those for
            several questions.
        """
        examples = self._examples(args, question, context)
        top_k = check_positive("top_k", top_k)
        max_answer_len = check_positive("max_answer_len", max_answer_len)
        check_positive("max_question_len", max_question_len)
        if max_seq_len is None:
            max_seq_len = self.default_max_seq_len
        max_seq_len = check_positive("max_seq_len", max_seq_len)
        if max_seq_len > self.max_length:
            raise InputError(f"max_seq_len={max_seq_len} is over the model's limit of {self.max_length} tokens")
        doc_stride = default_doc_stride(max_seq_len) if doc_stride is None else check_positive("doc_stride", doc_stride)
        if doc_stride >= max_seq_len:
            raise InputError(f"doc_stride={doc_stride} must be smaller than max_seq_len={max_seq_len}")
        windows = [w for n, ex in enumerate(examples) for w in self.windows(n, *ex, max_seq_len, doc_stride)]
        outputs = self._run_windows(windows)
        results = [self._answers(ex[1], [(w, o) for w, o in zip(windows, outputs) if w.example == n], top_k,
                                 max_answer_len, handle_impossible_answer, align_to_words)
                   for n, ex in enumerate(examples)]
        return results[0] if len(results) == 1 else results

    @property
    def default_max_seq_len(self) -> int:
        """Tokens per window when ``max_seq_len`` is not given, as the pipeline picks it."""
        return min(self.tokenizer.model_max_length or MAX_SEQ_LEN, MAX_SEQ_LEN, self.max_length)

    def windows(self, example: int, question: str, context: str, max_seq_len: int, doc_stride: int) -> list[Window]:
        """``[CLS] question [SEP] context part [SEP]`` windows of at most ``max_seq_len`` tokens,
        consecutive parts sharing ``doc_stride`` tokens (the tokenizer's ``only_second``
        truncation with overflow and stride)."""
        where = f"question {example}" if example else "question"
        q = self.tokenizer._encode_spans(question)
        c = self.tokenizer._encode_spans(context)
        if not q:
            raise InputError(f"{where}: the question has no tokens")
        if not c:
            raise InputError(f"{where}: the context has no tokens")
        room = max_seq_len - len(q) - 3
        if len(c) <= room:
            return [Window(example, self.tokenizer.assemble([q, c]))]
        if room <= 0:
            raise InputError(f"{where}: the question is {len(q)} tokens long, which leaves no room for the context "
                             f"in max_seq_len={max_seq_len}")
        if doc_stride >= room:
            raise InputError(f"{where}: doc_stride={doc_stride} must be smaller than the {room} context tokens a "
                             f"window holds (max_seq_len={max_seq_len} less the question and 3 special tokens)")
        return [Window(example, self.tokenizer.assemble([q, c[begin:stop]]))
                for begin, stop in overflow_windows(len(c), room, doc_stride)]

    # ------------------------------------------------------------------ internals
    def _run_windows(self, windows: list[Window]) -> list[list[np.ndarray]]:
        rows = [w.encoding.ids for w in windows]
        return self.encoder.run(rows, ["start_logits", "end_logits"], type_ids=[w.encoding.type_ids for w in windows])

    def _answers(self, context: str, outputs: list[tuple[Window, list[np.ndarray]]], top_k: int,
                 max_answer_len: int, handle_impossible_answer: bool, align_to_words: bool) -> Any:
        null_score = NULL_START_SCORE
        answers: list[dict[str, Any]] = []
        for window, (start, end) in outputs:
            enc = window.encoding
            allowed = np.array([int(s == 1) for s in enc.sequence_ids()])
            allowed[[i for i, t in enumerate(enc.ids) if t == self.tokenizer.cls_token_id]] = 1
            starts, ends, scores, null_score = spans(
                start, end, allowed, top_k * 2 + 10 if align_to_words else top_k, max_answer_len, null_score,
                handle_impossible_answer)
            for s, e, score in zip(starts, ends, scores):
                begin, stop = _char_span(enc, int(s), int(e), align_to_words)
                text = context[begin:stop]
                same = next((a for a in answers if a["answer"].lower() == text.lower()), None)
                if same is not None:
                    same["score"] += score.item()
                else:
                    answers.append({"score": score.item(), "start": begin, "end": stop, "answer": text})
        if handle_impossible_answer:
            answers.append({"score": null_score, "start": 0, "end": 0, "answer": ""})
        answers = sorted(answers, key=lambda a: a["score"], reverse=True)[:top_k]
        return answers[0] if len(answers) == 1 else answers

    @staticmethod
    def _examples(args: tuple[Any, ...], question: Any, context: Any) -> list[tuple[str, str]]:
        """``(question, context)`` pairs from the call forms of the pipeline."""
        if args and (question is not None or context is not None):
            raise InputError("give the inputs either positionally or as question=/context=, not both")
        if args:
            if len(args) == 2 and all(isinstance(a, str) for a in args):
                items: list[Any] = [{"question": args[0], "context": args[1]}]
            elif len(args) == 1:
                items = [args[0]] if isinstance(args[0], Mapping) else args[0]
            else:
                items = list(args)
            if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
                raise InputError("inputs must be question=/context= strings or lists, a {'question': ..., "
                                 f"'context': ...}} dict or a list of them, not {type(items).__name__}")
        elif question is None or context is None:
            raise InputError("give both question= and context= (or a {'question': ..., 'context': ...} dict)")
        elif isinstance(question, str) and isinstance(context, str):
            items = [{"question": question, "context": context}]
        elif isinstance(question, list) and isinstance(context, str):
            items = [{"question": q, "context": context} for q in question]
        elif isinstance(question, list) and isinstance(context, list):
            if len(question) != len(context):
                raise InputError(f"{len(question)} questions and {len(context)} contexts: give one context, "
                                 "or as many contexts as questions")
            items = [{"question": q, "context": c} for q, c in zip(question, context)]
        else:
            raise InputError("question= and context= take a str each, a list of questions and one context, or two "
                             f"lists; got {type(question).__name__} and {type(context).__name__}")
        if not items:
            raise InputError("no questions given")
        out = []
        for n, item in enumerate(items):
            where = f"input {n}" if len(items) > 1 else "input"
            check_item(where, item, ("question", "context"))
            for key in ("question", "context"):
                value = item[key]
                if not isinstance(value, str):
                    raise InputError(f"{where}: {key} must be a str, not {type(value).__name__}")
                if not value.strip():
                    raise InputError(f"{where}: {key} is empty")
            out.append((item["question"], item["context"]))
        return out


def _char_span(enc: Encoding, s: int, e: int, align_to_words: bool) -> tuple[int, int]:
    """Characters of tokens ``s..e`` in the context; with ``align_to_words`` grown to the words
    they are in (the pipeline's ``get_indices``: ``[CLS]`` has no word and keeps its offsets)."""
    if align_to_words and enc.word_ids[s] is not None and enc.word_ids[e] is not None:
        context = [i for i, sid in enumerate(enc.sequence_ids()) if sid == 1]
        first = [i for i in context if enc.word_ids[i] == enc.word_ids[s]]
        last = [i for i in context if enc.word_ids[i] == enc.word_ids[e]]
        return enc.offsets[first[0]][0], enc.offsets[last[-1]][1]
    return enc.offsets[s][0], enc.offsets[e][1]
