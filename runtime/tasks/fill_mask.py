"""Fill ``[MASK]`` tokens: the masked-LM head on the encoder core."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict

import numpy as np

from ..engine.io import FILL_MASK
from ..errors import InputError
from .base import Predictor, as_list


class Candidate(TypedDict):
    """One prediction for one mask, as the transformers fill-mask pipeline gives it."""

    score: float
    token: int
    token_str: str
    sequence: str


def log_probs_of(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``log softmax(logits[i])[targets[i]]`` for each row, in float64."""
    x = logits.astype(np.float64)
    top = x.max(axis=1, keepdims=True)
    norm = np.log(np.exp(x - top).sum(axis=1)) + top[:, 0]
    return x[np.arange(len(x)), targets] - norm


class FillMask(Predictor):
    """Fill-mask predictor over an exported artifact, needing only NumPy and ONNX Runtime.

    Takes the options of :class:`~albert_onnx.tasks.base.Predictor` (precision, provider,
    threads, max_batch_size, verify, mask_fix, io_binding).
    """

    task = FILL_MASK
    merges_lists = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tok = self.tokenizer
        self.vocab_size = int(self.manifest["model"]["vocab_size"])
        self._special = {tok.cls_token_id, tok.sep_token_id, tok.pad_token_id}

    # ------------------------------------------------------------------ public calls
    def __call__(self, inputs: str | Sequence[str], top_k: int = 5, targets: str | Sequence[str] | None = None) -> Any:
        """Predict masks, nested like the transformers fill-mask pipeline.

        A text with one mask gives a list of ``top_k`` candidates; a text with several masks
        a list (one per mask, in order) of such lists. A list of texts gives a list with one
        such entry per text. ``targets`` (a word or a list) limits the candidates to those
        words, each as the pipeline takes it: the token itself if the vocabulary has it, else
        the first token of the word (``top_k`` is then at most the number of targets).
        """
        results = self.fill(as_list(inputs), top_k=top_k, targets=targets)
        shaped = [r[0] if len(r) == 1 else r for r in results]
        return shaped[0] if isinstance(inputs, str) else shaped

    def fill(self, texts: Sequence[str], top_k: int = 5,
             targets: str | Sequence[str] | None = None) -> list[list[list[Candidate]]]:
        """Regularly nested predictions: ``[text][mask][rank] -> Candidate``."""
        k = self._check_top_k(top_k)
        target_ids = None if targets is None else self.target_ids(targets)
        rows = self._encode(texts)
        found = self._top_k(rows, k) if target_ids is None else self._top_of(rows, target_ids, k)
        out: list[list[list[Candidate]]] = []
        for row, (probs, ids) in zip(rows, found):
            out.append([self._candidates(row, pos, probs[m], ids[m])
                        for m, pos in enumerate(self._mask_positions(row))])
        return out

    def predict_ids(self, texts: Sequence[str], top_k: int = 5) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per text, arrays ``(probs[masks, k], ids[masks, k])`` without building strings."""
        rows = self._encode(texts)
        return [(p, i) for p, i in self._top_k(rows, self._check_top_k(top_k))]

    def logits(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Full MLM logits, one ``[tokens, vocab]`` array per text (``[CLS]``/``[SEP]`` included).

        The graph computes the head only at the positions asked for; here that is all of them.
        """
        rows = self._encode_texts(texts)
        everywhere = [list(range(len(r))) for r in rows]
        return [out[0] for out in self.encoder.run(rows, ["logits"], positions=everywhere)]

    # ------------------------------------------------------------------ scoring
    def score(self, texts: str | Sequence[str], per_token: bool = False) -> Any:
        """Pseudo-log-likelihood (Salazar et al., 2020) of each text: the sum over its tokens
        (``[CLS]``/``[SEP]`` aside) of log P(token | the text with that token masked), natural
        log, on the reference tokenizer's tokens.

        Every token costs one masked copy of the text; the copies of all texts run through the
        length batching, in chunks, with the head computed only at each copy's mask.

        Args:
            texts: a str (gives a float) or a list of str (gives a list).
            per_token: give, per text, the list of ``(token, logprob)`` in order instead, where
                ``token`` is the piece as ``Tokenizer.tokenize`` writes it (``▁`` starts a word).
        """
        scored = self._token_logprobs(as_list(texts))
        if per_token:
            out: list[Any] = scored
        else:
            out = [float(sum(lp for _, lp in row)) for row in scored]
        return out[0] if isinstance(texts, str) else out

    def pseudo_perplexity(self, texts: str | Sequence[str]) -> Any:
        """``exp(-PLL / number of scored tokens)`` of each text (a str gives a float)."""
        scored = self._token_logprobs(as_list(texts))
        out = [float(np.exp(-sum(lp for _, lp in row) / len(row))) for row in scored]
        return out[0] if isinstance(texts, str) else out

    def _token_logprobs(self, texts: Sequence[str]) -> list[list[tuple[str, float]]]:
        """Per text, ``(piece, log-probability)`` of every token but ``[CLS]``/``[SEP]``."""
        tok = self.tokenizer

        def scorable(where: str, text: str, ids: list[int]) -> None:
            if tok.mask_token_id in ids:
                raise InputError(f"{where} contains {tok.mask_token}: scoring masks each token in turn "
                                 f"itself, so give the plain text: {text[:60]!r}")
            if len(ids) <= 2:
                raise InputError(f"{where} has no tokens to score: {text[:60]!r}")

        rows = self._encode_texts(texts, scorable)
        pieces = [tok.tokenize(text) for text in texts]
        copies = [(n, j) for n, ids in enumerate(rows) for j in range(1, len(ids) - 1)]
        out: list[list[tuple[str, float]]] = [[] for _ in rows]
        chunk = max(64, 4 * self.encoder.max_batch_size)  # copies in flight: memory stays bounded
        for start in range(0, len(copies), chunk):
            part = copies[start : start + chunk]
            masked = [rows[n][:j] + [tok.mask_token_id] + rows[n][j + 1 :] for n, j in part]
            logits = np.stack([o[0][0] for o in self.encoder.run(masked, ["logits"],
                                                                 positions=[[j] for _, j in part])])
            targets = np.array([rows[n][j] for n, j in part], dtype=np.int64)
            for (n, j), lp in zip(part, log_probs_of(logits, targets)):
                out[n].append((pieces[n][j - 1], float(lp)))
        return out

    def target_ids(self, targets: str | Sequence[str]) -> np.ndarray:
        """The token ids of ``targets``, as the fill-mask pipeline resolves them (each distinct)."""
        tok = self.tokenizer
        if isinstance(targets, str):
            targets = [targets]
        if not isinstance(targets, Sequence) or not targets or not all(isinstance(t, str) for t in targets):
            raise InputError(f"targets must be a str or a non-empty list of str, not {targets!r}")
        ids: list[int] = []
        for target in targets:
            found = tok.convert_tokens_to_ids(target)
            assert isinstance(found, int)
            if found == tok.unk_token_id and target != tok.convert_ids_to_tokens(tok.unk_token_id):
                pieces = tok.encode(target, add_special_tokens=False)
                if not pieces:
                    raise InputError(f"target {target!r} has no tokens; give a word of the vocabulary")
                found = pieces[0]
            if found not in ids:
                ids.append(int(found))
        return np.array(ids, dtype=np.int64)

    # ------------------------------------------------------------------ internals
    def _top_of(self, rows: list[list[int]], target_ids: np.ndarray, top_k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per row, the probabilities (softmax over the whole vocabulary) of the targets, best first."""
        k = min(top_k, len(target_ids))
        out = []
        for (logits,) in self.encoder.run(rows, ["logits"], positions=[self._mask_positions(r) for r in rows]):
            x = logits.astype(np.float64)
            top = x.max(axis=1, keepdims=True)
            probs = (np.exp(x[:, target_ids] - top) / np.exp(x - top).sum(axis=1, keepdims=True)).astype(np.float32)
            order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
            out.append((np.take_along_axis(probs, order, axis=1), target_ids[order]))
        return out

    def _check_top_k(self, top_k: int) -> int:
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) \
                or not 1 <= top_k <= self.vocab_size:
            raise InputError(f"top_k must be an integer in 1..{self.vocab_size}, not {top_k!r}")
        return int(top_k)

    def _encode(self, texts: Sequence[str]) -> list[list[int]]:
        tok = self.tokenizer

        def has_mask(where: str, text: str, ids: list[int]) -> None:
            if tok.mask_token_id not in ids:
                raise InputError(f"{where} has no {tok.mask_token} token: {text[:60]!r}")

        return self._encode_texts(texts, has_mask)

    def _mask_positions(self, row: list[int]) -> list[int]:
        mask_id = self.tokenizer.mask_token_id
        return [j for j, t in enumerate(row) if t == mask_id]

    def _top_k(self, rows: list[list[int]], top_k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        out = self.encoder.run(rows, ["top_probs", "top_ids"],
                               positions=[self._mask_positions(r) for r in rows], top_k=top_k)
        return [(o[0], o[1]) for o in out]

    def _candidates(self, row: list[int], pos: int, probs: np.ndarray, ids: np.ndarray) -> list[Candidate]:
        tok = self.tokenizer
        body = [t for t in row if t not in self._special]
        at = sum(1 for t in row[:pos] if t not in self._special)
        out: list[Candidate] = []
        for p, i in zip(probs.tolist(), ids.tolist()):
            # A model may have more rows than its tokenizer has ids (unused rows): such an id
            # has no text, and decodes to "" as in the reference tokenizer.
            known = i < len(tok)
            body[at] = i
            sequence = tok.decode(body) if known else tok.decode(body[:at] + body[at + 1 :])
            out.append({"score": float(p), "token": int(i),
                        "token_str": tok.decode([i]) if known else "", "sequence": sequence})
        return out
