"""The tokenizer's output for one text or pair, with offsets."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Encoding:
    """One encoded text (or pair), field for field as ``tokenizers``' ``Encoding``.

    ``offsets[i]`` is the ``(start, end)`` character span of token ``i`` in its own text (the
    pair's second text for ``type_ids[i] == 1``); special tokens have ``(0, 0)``. ``word_ids[i]``
    is the index of the word token ``i`` belongs to within its own text (a word: a run without
    spaces, or an added token), None for special tokens.
    """

    ids: list[int]
    type_ids: list[int]
    offsets: list[tuple[int, int]]
    attention_mask: list[int]
    tokens: list[str]
    special_tokens_mask: list[int]
    word_ids: list[int | None]

    def __len__(self) -> int:
        return len(self.ids)

    def sequence_ids(self) -> list[int | None]:
        """Which text each token comes from (0 or 1), None for special tokens."""
        return [None if special else t for t, special in zip(self.type_ids, self.special_tokens_mask)]
