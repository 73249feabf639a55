"""Unigram segmentation exactly as ``tokenizers``' Unigram model runs it."""

from __future__ import annotations

_UNK_PENALTY = 10.0
_PREFIX_BITS = 21  # a 256 KB bitmap: under 1 % false positives for 32,000 pieces' prefixes


class Unigram:
    """Viterbi segmentation over a SentencePiece unigram vocabulary.

    Matches ``tokenizers``: every piece (control and unknown included) is in the lattice,
    path scores are summed in float64 and a later candidate wins only when strictly better,
    each character with no single-character piece gets an unknown node scored
    ``min(scores) - 10``, and consecutive unknown nodes are fused into one token.
    """

    def __init__(self, pieces: list[str], scores: list[float], unk_id: int) -> None:
        self.unk_id = unk_id
        # piece -> id (the first id of a repeated piece), and each id's score
        self._pieces: dict[str, int] = {}
        self._scores = scores
        for i, piece in enumerate(pieces):
            if piece and piece not in self._pieces:
                self._pieces[piece] = i
        # The search from a position stops at the first substring that no piece starts with. The
        # proper prefixes of the pieces are kept as bits of their hashes, not as strings (32,000
        # pieces: 256 KB instead of several MB): a false positive only tries one substring more.
        self._mask = (1 << _PREFIX_BITS) - 1
        self._prefix_bits = bytearray(1 << (_PREFIX_BITS - 3))
        for piece in self._pieces:
            for k in range(1, len(piece)):
                h = hash(piece[:k]) & self._mask
                self._prefix_bits[h >> 3] |= 1 << (h & 7)
        self.unk_score = min(scores) - _UNK_PENALTY

    def piece_id(self, piece: str) -> int | None:
        """The id of ``piece``, None when it is not in the vocabulary."""
        return self._pieces.get(piece)

    def encode(self, word: str) -> list[tuple[str, int]]:
        """Segment one pre-tokenized word into (token string, id) pairs."""
        n = len(word)
        if n == 0:
            return []
        pieces_get = self._pieces.get
        scores = self._scores
        bits, mask = self._prefix_bits, self._mask
        unk_id, unk_score = self.unk_id, self.unk_score
        best = [0.0] * (n + 1)
        start = [-1] * (n + 1)
        ids = [0] * (n + 1)
        for i in range(n):
            base = best[i]
            single = False
            for k in range(i + 1, n + 1):
                sub = word[i:k]
                pid = pieces_get(sub)
                if pid is not None:
                    score = base + scores[pid]
                    if start[k] < 0 or score > best[k]:
                        best[k] = score
                        start[k] = i
                        ids[k] = pid
                    if k == i + 1:
                        single = True
                h = hash(sub) & mask
                if not bits[h >> 3] >> (h & 7) & 1:
                    break
            if not single:
                k = i + 1
                score = base + unk_score
                if start[k] < 0 or score > best[k]:
                    best[k] = score
                    start[k] = i
                    ids[k] = unk_id
        out: list[tuple[str, int]] = []
        k = n
        unk_end = -1
        while k > 0:
            s = start[k]
            if ids[k] == unk_id:
                if unk_end < 0:
                    unk_end = k
            else:
                if unk_end >= 0:
                    out.append(self._fused(word[k:unk_end]))
                    unk_end = -1
                out.append((word[s:k], ids[k]))
            k = s
        if unk_end >= 0:
            out.append(self._fused(word[:unk_end]))
        out.reverse()
        return out

    def _fused(self, text: str) -> tuple[str, int]:
        pid = self._pieces.get(text)
        return text, (self.unk_id if pid is None else pid)
