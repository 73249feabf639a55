"""The tokenizer's output for one text or pair, with offsets."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Encoding:
    """One encoded text (or pair), field for field as ``tokenizers``' ``Encoding``.

    ``offsets[i]`` is the ``(start, end)`` character span of token ``i`` in its own text (the
    pair's second text for ``type_ids[i] == 1``); special tokens have ``(0, 0)``.
    """

    ids: list[int]
    type_ids: list[int]
    offsets: list[tuple[int, int]]
    attention_mask: list[int]
    tokens: list[str]
    special_tokens_mask: list[int]

    def __len__(self) -> int:
        return len(self.ids)
