"""Predictions of a predictor on evaluation examples, a chunk at a time: what each kind of task
answers (a label, a number, a choice, an answer text) and a vector of its raw outputs (logits,
the regression value, the answer's score), for comparing precisions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from ..tasks.question_answering import default_doc_stride
from .data import CHOICE, LABEL, QA, SCORE, Example

CHUNK = 32
# question answering as JGLUE's fine-tuning evaluates it (transformers' run_qa.py): answers up to
# 30 tokens, cut from the context as predicted (not grown to space-separated words, which in
# unspaced Japanese would be whole phrases)
QA_OPTIONS: dict[str, Any] = {"max_answer_len": 30, "align_to_words": False}


@dataclass(frozen=True)
class Prediction:
    answer: Any  # label name, float, choice index or answer text
    raw: np.ndarray  # float64 vector: logits, [value] or [score]


def kind_of(predictor: Any) -> str:
    """The kind of evaluation an artifact's task takes."""
    info = predictor.manifest["task"]
    return kind_for(predictor.task, info.get("problem_type"), info.get("num_labels"))


def kind_for(task: str, problem_type: str | None = None, num_labels: int | None = None) -> str:
    """The kind of evaluation a task takes (a classifier with one output is a regression head)."""
    if task == "question-answering":
        return QA
    if task == "multiple-choice":
        return CHOICE
    if task == "text-classification":
        return SCORE if problem_type == "regression" or num_labels == 1 else LABEL
    raise InputError(f"evaluate takes question-answering, multiple-choice and text-classification models "
                     f"(JSQuAD, JCommonsenseQA, JNLI, JSTS, MARC-ja); this one is a {task!r} model")


def check_labels(predictor: Any, examples: Sequence[Example], where: Callable[[Example], str]) -> None:
    """Gold labels must be the model's label names or ids."""
    labels = list(predictor.labels)
    for ex in examples:
        gold = ex.gold
        if isinstance(gold, str) and gold not in labels:
            raise InputError(f"{where(ex)}: label {gold!r} is not one of the model's labels {labels}")
        if isinstance(gold, int) and not 0 <= gold < len(labels):
            raise InputError(f"{where(ex)}: label id {gold} is out of range; the model has {len(labels)} labels "
                             f"(0..{len(labels) - 1}: {labels})")


def gold_answer(predictor: Any, kind: str, ex: Example) -> Any:
    """The gold answer in the form predictions take (label ids become names)."""
    if kind == LABEL and isinstance(ex.gold, int):
        return predictor.labels[ex.gold]
    return ex.gold


def predict(predictor: Any, kind: str, examples: Sequence[Example]) -> list[Prediction]:
    """Predictions for ``examples`` (a chunk), in order."""
    if kind in (LABEL, SCORE):
        inputs = [text if pair is None else {"text": text, "text_pair": pair} for text, pair in
                  (ex.inputs for ex in examples)]
        logits = predictor.logits(inputs, truncation=True)
        if kind == SCORE:
            return [Prediction(float(row[0]), np.asarray(row, dtype=np.float64)) for row in logits]
        return [Prediction(predictor.labels[int(np.argmax(row))], np.asarray(row, dtype=np.float64))
                for row in logits]
    if kind == CHOICE:
        rows = predictor.logits([ex.inputs for ex in examples])
        return [Prediction(int(np.argmax(row)), np.asarray(row, dtype=np.float64)) for row in rows]
    return [_answer(predictor, ex) for ex in examples]


def _answer(predictor: Any, ex: Example) -> Prediction:
    question, context = ex.inputs
    max_seq_len = predictor.default_max_seq_len
    # a window holds [CLS] question [SEP] part [SEP]: the stride must leave the context room
    room = max_seq_len - len(predictor.tokenizer.encode(question, add_special_tokens=False)) - 3
    if room < 2:
        raise InputError(f"the question has too many tokens for the model's windows of {max_seq_len}: "
                         "no room is left for the context")
    stride = min(default_doc_stride(max_seq_len), max(1, room // 2))
    answer = predictor(question=question, context=context, top_k=1, doc_stride=stride, max_seq_len=max_seq_len,
                       **QA_OPTIONS)
    return Prediction(str(answer["answer"]), np.array([float(answer["score"])]))
