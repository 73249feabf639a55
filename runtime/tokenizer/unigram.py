"""Unigram segmentation exactly as ``tokenizers``' Unigram model runs it."""

from __future__ import annotations

_UNK_PENALTY = 10.0


class Unigram:
    """Viterbi segmentation over a SentencePiece unigram vocabulary.

    Matches ``tokenizers``: every piece (control and unknown included) is in the lattice,
    path scores are summed in float64 and a later candidate wins only when strictly better,
    each character with no single-character piece gets an unknown node scored
    ``min(scores) - 10``, and consecutive unknown nodes are fused into one token.
    """

    def __init__(self, vocab: list[tuple[str, float]], unk_id: int) -> None:
        self.unk_id = unk_id
        # piece -> id, and each id's score: no tuple per piece (32k pieces: 1.8 MB less)
        self._pieces: dict[str, int] = {}
        self._scores = [score for _, score in vocab]
        for i, (piece, _) in enumerate(vocab):
            if piece and piece not in self._pieces:
                self._pieces[piece] = i
        # every proper prefix of a piece: the search from a position stops at the first
        # substring that no piece starts with
        self._prefixes = frozenset(p[:k] for p in self._pieces for k in range(1, len(p)))
        self.unk_score = min(score for _, score in vocab) - _UNK_PENALTY

    def encode(self, word: str) -> list[tuple[str, int]]:
        """Segment one pre-tokenized word into (token string, id) pairs."""
        n = len(word)
        if n == 0:
            return []
        pieces_get = self._pieces.get
        scores = self._scores
        prefixes = self._prefixes
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
                if sub not in prefixes:
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
