"""Zero-shot classification on an NLI text-classification artifact (JNLI's ``entailment``), as
transformers' ``pipeline("zero-shot-classification")`` computes it."""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

import numpy as np

from ..errors import ArtifactError, InputError
from .base import as_list, named_texts
from .text_classification import TextClassifier

# A Japanese model wants a Japanese hypothesis: "this example is {label}", as JNLI's hypotheses are
# written. transformers' pipeline defaults to the English one; pass it to compare with that.
DEFAULT_TEMPLATE = "この例は{}です。"
ENGLISH_TEMPLATE = "This example is {}."


class ZeroShotResult(TypedDict):
    sequence: str
    labels: list[str]
    scores: list[float]


class ZeroShotClassifier(TextClassifier):
    """Zero-shot classification from a ``text-classification`` artifact with an entailment label
    (one whose name starts with "entail").

    Takes the options of :class:`~albert_onnx.tasks.base.Predictor`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        found = [i for i, label in enumerate(self.labels) if label.lower().startswith("entail")]
        if not found:
            raise ArtifactError(f"{self.encoder.artifact.folder}: zero-shot classification needs an NLI model with "
                                f"an entailment label; this one's labels are {self.labels}")
        self.entailment_id = found[0]
        self.contradiction_id = len(self.labels) - 1 if self.entailment_id == 0 else 0

    def one_of_list(self, inputs: Any, parameters: Mapping[str, Any], entry: Any) -> Any:
        return entry  # a lone sequence gets its dict, as the pipeline's

    def __call__(self, sequences: str | Sequence[str], candidate_labels: str | Sequence[str] | None = None,  # type: ignore[override]
                 hypothesis_template: str = DEFAULT_TEMPLATE, multi_label: bool = False) -> Any:
        """Score candidate labels for texts: each label becomes the hypothesis
        ``hypothesis_template.format(label)`` of a premise / hypothesis pair.

        Args:
            sequences: a text or a list of texts.
            candidate_labels: a list of labels, or one str of comma-separated labels.
            hypothesis_template: the hypothesis, with ``{}`` where the label goes.
            multi_label: score each label on its own (entailment against contradiction)
                instead of a softmax of the entailment logits over the labels.

        Returns:
            ``{"sequence", "labels", "scores"}``, labels best first; a list of them for a list.
        """
        labels = self._check_labels(candidate_labels)
        template = self._check_template(hypothesis_template, labels[0])
        texts = as_list(sequences)
        named = named_texts(texts)
        limit = min(self.tokenizer.model_max_length or self.max_length, self.max_length)
        rows, types = [], []
        for where, text in named:
            try:  # the pipeline truncates the premise only, to the tokenizer's limit
                encodings = self.tokenizer.encode_pairs(text, [template.format(label) for label in labels], limit,
                                                        "only_first")
            except InputError as exc:
                raise InputError(f"{where}, {exc}") from None
            rows += [enc.ids for enc in encodings]
            types += [enc.type_ids for enc in encodings]
        logits = self.encoder.run(rows, ["logits"], type_ids=types)
        results = []
        for n, (_, text) in enumerate(named):
            block = np.stack([out[0] for out in logits[n * len(labels) : (n + 1) * len(labels)]])
            if multi_label or len(labels) == 1:
                pair = block[:, [self.contradiction_id, self.entailment_id]]
                scores = (np.exp(pair) / np.exp(pair).sum(-1, keepdims=True))[:, 1]
            else:
                entail = block[:, self.entailment_id]
                scores = np.exp(entail) / np.exp(entail).sum(-1, keepdims=True)
            order = list(reversed(scores.argsort()))
            results.append(ZeroShotResult(sequence=text, labels=[labels[i] for i in order],
                                          scores=scores[order].tolist()))
        return results[0] if isinstance(sequences, str) else results

    @staticmethod
    def _check_labels(labels: str | Sequence[str] | None) -> list[str]:
        if isinstance(labels, str):
            labels = [x.strip() for x in labels.split(",") if x.strip()]
        if labels is None or isinstance(labels, bytes) or not isinstance(labels, Sequence) or not labels:
            raise InputError("candidate_labels must be a non-empty list of labels or a comma-separated str, "
                             f"not {labels!r}")
        out = []
        for n, label in enumerate(labels):
            if not isinstance(label, str) or not label.strip():
                raise InputError(f"candidate label {n} must be a non-empty str, not {label!r}")
            if label in out:
                raise InputError(f"candidate label {label!r} is given twice; each label once")
            out.append(label)
        return out

    @staticmethod
    def _check_template(template: str, label: str) -> str:
        if not isinstance(template, str):
            raise InputError(f"hypothesis_template must be a str, not {type(template).__name__}")
        try:
            fields = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(template)
                      if name is not None]
        except ValueError as exc:
            raise InputError(f"hypothesis_template {template!r} cannot be filled with a label ({exc}); "
                             "put {} where the label goes") from None
        if any(name not in ("", "0") or spec or conversion for name, spec, conversion in fields):
            # a format spec such as {:>999999999} would build a string of any size
            raise InputError(f"hypothesis_template {template!r} may hold only {{}} where the label goes "
                             "(no names, indexes but 0, conversions or format specs)")
        if not fields:
            raise InputError(f"hypothesis_template {template!r} has no {{}} for the label; "
                             "put {} where the label goes, as in 'この例は{}です。'")
        return template
