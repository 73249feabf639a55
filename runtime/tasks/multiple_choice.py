"""Multiple choice (JCommonsenseQA): a choice-scoring head on the encoder core, encoded as JGLUE's
fine-tuning scripts do and scored as ``AlbertForMultipleChoice`` scores."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

import numpy as np

from ..engine.io import MULTIPLE_CHOICE
from ..errors import InputError
from .base import Predictor, check_item
from .text_classification import softmax


class ChoiceScore(TypedDict):
    choice: str
    index: int
    score: float


class MultipleChoice(Predictor):
    """Multiple choice from a ``multiple-choice`` artifact.

    Takes the options of :class:`~albert_onnx.tasks.base.Predictor`.
    """

    task = MULTIPLE_CHOICE

    def __call__(self, question: str | Mapping[str, Any] | Sequence[Mapping[str, Any]],
                 choices: Sequence[str] | None = None) -> Any:
        """Rank the choices of a question.

        Each choice is encoded with the question as a pair (``tokenizer(question, choice)``),
        and a question's choices run together in one session call, as the model's
        ``[1, choices, tokens]`` input.

        Args:
            question: a question (with ``choices``), a ``{"question": ..., "choices": [...]}``
                dict, or a list of such dicts.
            choices: two or more choices, for a question given as a str.

        Returns:
            ``[{"choice", "index", "score"}, ...]`` best first (``index``: the choice's place in
            ``choices``; ``score``: the softmax of the model's logits over the choices); a list
            of them for a list of questions.
        """
        single = not isinstance(question, Sequence) or isinstance(question, str)
        items = self._items(question, choices)
        logits = self.logits(items)
        results = []
        for (_, options), row in zip(items, logits):
            scores = softmax(row)
            order = sorted(range(len(options)), key=lambda i: -scores[i])
            results.append([ChoiceScore(choice=options[i], index=i, score=float(scores[i])) for i in order])
        return results[0] if single else results

    def logits(self, items: Sequence[tuple[str, Sequence[str]]]) -> list[np.ndarray]:
        """Per ``(question, choices)``, the ``[choices]`` float32 logits."""
        rows: list[list[int]] = []
        types: list[list[int]] = []
        groups: list[list[int]] = []
        for n, (q, options) in enumerate(items):
            group = []
            for k, enc in enumerate(self.tokenizer.encode_pairs(q, options)):
                where = f"question {n}, choice {k}" if len(items) > 1 else f"choice {k}"
                self.encoder.check_length(where + " with its question", len(enc.ids))
                group.append(len(rows))
                rows.append(enc.ids)
                types.append(enc.type_ids)
            groups.append(group)
        out = self.encoder.run(rows, ["logits"], type_ids=types, groups=groups)
        return [np.array([out[i][0] for i in group], dtype=np.float32) for group in groups]

    @staticmethod
    def _items(question: Any, choices: Any) -> list[tuple[str, list[str]]]:
        if isinstance(question, str):
            raw: list[Any] = [{"question": question, "choices": choices}]
        elif isinstance(question, Mapping):
            if choices is not None:
                raise InputError("give the choices inside the dict or as choices=, not both")
            raw = [question]
        elif isinstance(question, Sequence) and not isinstance(question, bytes):
            if choices is not None:
                raise InputError("a list of questions carries its choices in each dict; choices= is for one question")
            raw = list(question)
        else:
            raise InputError("question must be a str (with choices=), a {'question': ..., 'choices': [...]} dict "
                             f"or a list of them, not {type(question).__name__}")
        if not raw:
            raise InputError("no questions given")
        out = []
        for n, item in enumerate(raw):
            where = f"question {n}" if len(raw) > 1 else "question"
            check_item(where, item, ("question", "choices"))
            q, options = item["question"], item["choices"]
            if not isinstance(q, str) or not q.strip():
                raise InputError(f"{where}: the question must be a non-empty str, not {q!r}")
            if isinstance(options, (str, bytes)) or not isinstance(options, Sequence):
                raise InputError(f"{where}: choices must be a list of str, not {type(options).__name__}")
            if len(options) < 2:
                raise InputError(f"{where}: {len(options)} choice(s); give at least 2")
            for k, choice in enumerate(options):
                if not isinstance(choice, str) or not choice.strip():
                    raise InputError(f"{where}: choice {k} must be a non-empty str, not {choice!r}")
            out.append((q, list(options)))
        return out
