"""The graphs' interface, one place for every task: input and output names, what each
output's first axes mean, and the flat mask-position feed of the fill-mask graph."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ENCODER_INPUTS = ("input_ids", "attention_mask", "token_type_ids")

# How an output's leading axes map to the rows that were run:
#   "text"      [batch, ...]            one slice per text
#   "token"     [batch, seq, ...]       one slice per text, cut to its own length
#   "position"  [positions, ...]        one slice per asked position, in order (fill-mask)
TEXT, TOKEN, POSITION = "text", "token", "position"


@dataclass(frozen=True)
class GraphIO:
    inputs: tuple[str, ...]
    outputs: dict[str, str]  # name -> axis kind


FILL_MASK, TEXT_CLASSIFICATION, TOKEN_CLASSIFICATION, FEATURE_EXTRACTION = (
    "fill-mask", "text-classification", "token-classification", "feature-extraction")
QUESTION_ANSWERING, MULTIPLE_CHOICE = "question-answering", "multiple-choice"
TASKS = (FILL_MASK, TEXT_CLASSIFICATION, TOKEN_CLASSIFICATION, FEATURE_EXTRACTION, QUESTION_ANSWERING,
         MULTIPLE_CHOICE)

GRAPH_IO: dict[str, GraphIO] = {
    FILL_MASK: GraphIO((*ENCODER_INPUTS, "mask_positions", "top_k"),
                       {"top_probs": POSITION, "top_ids": POSITION, "logits": POSITION}),
    TEXT_CLASSIFICATION: GraphIO(ENCODER_INPUTS, {"logits": TEXT}),
    TOKEN_CLASSIFICATION: GraphIO(ENCODER_INPUTS, {"logits": TOKEN}),
    FEATURE_EXTRACTION: GraphIO(ENCODER_INPUTS, {"last_hidden_state": TOKEN}),
    QUESTION_ANSWERING: GraphIO(ENCODER_INPUTS, {"start_logits": TOKEN, "end_logits": TOKEN}),
    # one row per (question, choice) pair, one score per row: the choices of one question are
    # one batch, as AlbertForMultipleChoice's [1, choices, tokens] input flattens to
    MULTIPLE_CHOICE: GraphIO(ENCODER_INPUTS, {"logits": TEXT}),
}


def flat_positions(positions: Sequence[Sequence[int]], width: int) -> np.ndarray:
    """The ``mask_positions`` feed: row ``b``'s position ``s`` becomes ``b * width + s``."""
    return np.asarray([b * width + s for b, row in enumerate(positions) for s in row], dtype=np.int64)
