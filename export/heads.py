"""One torch wrapper per task: what the traced graph computes on top of the ALBERT encoder.

The graph's input and output names come from the runtime's table (``albert_onnx.engine.io``),
so the two sides cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from albert_onnx.engine.io import (
    FEATURE_EXTRACTION,
    FILL_MASK,
    GRAPH_IO,
    MULTIPLE_CHOICE,
    QUESTION_ANSWERING,
    TEXT_CLASSIFICATION,
    TOKEN_CLASSIFICATION,
)

from .source import ExportError

# config.architectures[0] -> the task `--task auto` exports
ARCHITECTURE_TASKS = {
    "AlbertForMaskedLM": FILL_MASK,
    "AlbertForPreTraining": FILL_MASK,
    "AlbertForSequenceClassification": TEXT_CLASSIFICATION,
    "AlbertForTokenClassification": TOKEN_CLASSIFICATION,
    "AlbertForQuestionAnswering": QUESTION_ANSWERING,
    "AlbertForMultipleChoice": MULTIPLE_CHOICE,
    "AlbertModel": FEATURE_EXTRACTION,
}
TASK_CHOICES = ("auto", *GRAPH_IO)


def resolve_task(task: str, architectures: list[str] | None, source: str) -> str:
    """The task to export: ``task`` itself, or for ``auto`` the one the checkpoint's
    architecture names."""
    if task not in TASK_CHOICES:
        raise ExportError(f"unknown task {task!r}; valid: {list(TASK_CHOICES)}")
    if task != "auto":
        return task
    arch = architectures[0] if architectures else None
    if arch not in ARCHITECTURE_TASKS:
        raise ExportError(f"{source!r} has architecture {arch!r}, which --task auto cannot map "
                          f"(it knows {sorted(ARCHITECTURE_TASKS)}); pass --task, one of "
                          f"{list(TASK_CHOICES[1:])}")
    return ARCHITECTURE_TASKS[arch]


@dataclass
class Head:
    """A task's torch module to trace: it takes the graph's inputs and returns ``outputs``."""

    task: str
    module: Any  # torch.nn.Module taking the graph's inputs
    outputs: tuple[str, ...]  # the traced outputs, each compared with PyTorch at export time
    example_extra: tuple[Any, ...] = ()


def model_class(task: str) -> Any:
    import transformers

    return {FILL_MASK: transformers.AlbertForMaskedLM,
            TEXT_CLASSIFICATION: transformers.AlbertForSequenceClassification,
            TOKEN_CLASSIFICATION: transformers.AlbertForTokenClassification,
            QUESTION_ANSWERING: transformers.AlbertForQuestionAnswering,
            MULTIPLE_CHOICE: transformers.AlbertForMultipleChoice,
            FEATURE_EXTRACTION: transformers.AlbertModel}[task]


def reference_outputs(task: str, model: Any, feed: dict[str, Any]) -> tuple[Any, ...]:
    """What PyTorch gives for the graph's outputs (``GRAPH_IO[task]``, in order), on a feed of
    torch tensors ``[rows, tokens]``. A multiple-choice feed is one question's choices."""
    if task == MULTIPLE_CHOICE:  # [1, choices, tokens] in, [1, choices] scores out
        return (model(**{k: v[None] for k, v in feed.items()}).logits[0],)
    out = model(**feed)
    if task == QUESTION_ANSWERING:
        return out.start_logits, out.end_logits
    return (out.last_hidden_state if task == FEATURE_EXTRACTION else out.logits,)


def make_head(task: str, model: Any) -> Head:
    import torch

    if task == FILL_MASK:
        class MaskedHead(torch.nn.Module):
            """The MLM head only at ``mask_positions`` (flat ``b * seq + s``)."""

            def __init__(self, mlm: Any) -> None:
                super().__init__()
                self.mlm = mlm

            def forward(self, input_ids, attention_mask, token_type_ids, mask_positions):  # type: ignore[no-untyped-def]
                hidden = self.mlm.albert(input_ids=input_ids, attention_mask=attention_mask,
                                         token_type_ids=token_type_ids).last_hidden_state
                hidden = hidden.reshape(-1, hidden.shape[-1]).index_select(0, mask_positions)
                return self.mlm.predictions(hidden)

        return Head(task, MaskedHead(model), ("logits",), (torch.tensor([3, 15]),))

    class Plain(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            return reference_outputs(task, self.inner, {"input_ids": input_ids, "attention_mask": attention_mask,
                                                        "token_type_ids": token_type_ids})

    return Head(task, Plain(model), tuple(GRAPH_IO[task].outputs))
