"""What a request will cost the model thread, counted before it runs, in tokens.

Every sequence the request makes the server encode counts: each text, each text pair, each
zero-shot (text, label) pair, each multiple-choice (question, choice) pair and each window of
a long context or a strided text. A sequence counts one token per character of its text(s),
plus ``[CLS]`` and ``[SEP]``: a SentencePiece piece covers at least one character, so this is
what tokenizing it costs and at least what running it costs. Truncation does not lower the
count (the whole text is still tokenized). Values that are not text count nothing here: the
predictor refuses them with its own message.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..tasks.question_answering import MAX_SEQ_LEN, default_doc_stride
from ..tasks.zero_shot import DEFAULT_TEMPLATE

DEFAULT_MAX_REQUEST_TOKENS = 2048 * 64  # 2048 ordinary sentences (a JGLUE sentence is 20-60 characters)


def chars(value: Any) -> int:
    return len(value) if isinstance(value, str) else 0


def texts_of(inputs: Any) -> list[Any]:
    return inputs if isinstance(inputs, list) else [inputs]


def sequence(first: Any, second: Any = None) -> int:
    """One encoded sequence: its characters and its special tokens."""
    return chars(first) + (chars(second) + 3 if second is not None else 2)


def windows(length: int, room: int, overlap: int) -> int:
    """How many windows of ``room`` tokens, consecutive ones sharing ``overlap``, cover ``length``."""
    if length <= room:
        return 1
    return 1 + math.ceil((length - room) / max(1, room - overlap))


def request_tokens(task: str, inputs: Any, parameters: Mapping[str, Any], max_length: int) -> int:
    """The tokens a ``/predict`` request of ``task`` costs (see the module's rule)."""
    items = texts_of(inputs)
    if task == "zero-shot-classification":
        labels = parameters.get("candidate_labels")
        labels = [labels] if isinstance(labels, str) else labels if isinstance(labels, list) else []
        template = parameters.get("hypothesis_template")
        template = template if isinstance(template, str) else DEFAULT_TEMPLATE
        holes = template.count("{}") + template.count("{0}")
        fixed = len(template) - 2 * template.count("{}") - 3 * template.count("{0}")
        return sum(sequence(text, "x" * (fixed + holes * chars(label))) for text in items for label in labels) or 1
    if task == "multiple-choice":
        total = 0
        for item in items:
            if isinstance(item, Mapping):
                choices = item.get("choices")
                for choice in choices if isinstance(choices, list) else []:
                    total += sequence(item.get("question"), choice)
        return total or 1
    if task == "question-answering":
        total = 0
        seq_len = parameters.get("max_seq_len")
        seq_len = seq_len if isinstance(seq_len, int) and 0 < seq_len <= max_length else min(MAX_SEQ_LEN, max_length)
        stride = parameters.get("doc_stride")
        stride = stride if isinstance(stride, int) and 0 < stride < seq_len else default_doc_stride(seq_len)
        for item in items:
            if isinstance(item, Mapping):
                question, context = chars(item.get("question")), chars(item.get("context"))
                room = max(1, seq_len - question - 3)
                total += windows(context, room, stride) * (question + 3 + min(room, context))
        return total or 1
    if task == "token-classification" and isinstance(parameters.get("stride"), int):
        stride = parameters["stride"]
        return sum(windows(sequence(t), max_length, stride + 2) * max_length for t in items) or 1
    total = 0
    for item in items:
        if isinstance(item, Mapping):  # a text pair
            total += sequence(item.get("text"), item.get("text_pair"))
        elif isinstance(item, list) and len(item) == 2:  # TEI's [text, pair]
            total += sequence(item[0], item[1])
        elif isinstance(item, list) and len(item) == 1:
            total += sequence(item[0])
        else:
            total += sequence(item)
    return total or 1
