"""Fill ``[MASK]`` tokens from an albert-onnx artifact."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from .artifact import PRECISIONS, SPIECE_NAME, Artifact, load_artifact
from .errors import ArtifactError, InputError
from .onnx_check import check_external_data
from .session import check_threads, create_session, resolve_provider
from .tokenizer import Tokenizer

log = logging.getLogger("albert_onnx")

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids", "mask_positions", "top_k")
OUTPUT_NAMES = ("top_probs", "top_ids")


class Candidate(TypedDict):
    """One prediction for one mask, as the transformers fill-mask pipeline gives it."""

    score: float
    token: int
    token_str: str
    sequence: str


class FillMask:
    """Fill-mask predictor over an exported artifact, needing only NumPy and ONNX Runtime.

    Args:
        artifact_dir: folder written by ``albert-onnx export``.
        precision: ``"fp32"``, ``"int8"`` (export with ``--quantize int8``) or ``"fp16"``.
        provider: ``"cpu"``, ``"cuda"`` (error if unavailable) or ``"auto"`` (CUDA if
            available, else the CPU, logged and kept in ``fallback_note``).
        threads: ONNX Runtime intra-op threads, ``None`` for its default.
        max_batch_size: the most texts run together; lists are split by length into batches.
        verify: check the SHA-256 of the files this precision uses before loading.
        mask_fix: tokenize without the stray ``▁`` after ``[MASK]`` (recommended).
        io_binding: run through ONNX Runtime I/O binding, fetching only the top-k to the
            host (default: on for CUDA, off for the CPU, where it gains nothing).
    """

    def __init__(self, artifact_dir: str | Path, precision: str = "fp32", provider: str = "cpu",
                 threads: int | None = None, *, max_batch_size: int = 32, verify: bool = True,
                 mask_fix: bool = True, io_binding: bool | None = None) -> None:
        if precision not in PRECISIONS:
            raise InputError(f"unknown precision {precision!r}; valid: {list(PRECISIONS)}")
        if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int) or max_batch_size < 1:
            raise InputError(f"max_batch_size must be a positive integer, not {max_batch_size!r}")
        threads = check_threads(threads)
        resolved, self.fallback_note = resolve_provider(provider)
        if self.fallback_note:
            log.warning(self.fallback_note)
        self.artifact: Artifact = load_artifact(artifact_dir, verify=False)
        graph = self.artifact.graph_path(precision)
        if verify:  # only what this precision reads: cold start stays short
            self.artifact.verify([graph.name, SPIECE_NAME])
        if precision == "fp16" and resolved != "cuda":
            log.info("fp16 graph on the CPU: ONNX Runtime runs it, but slower than fp32")
        self.precision = precision
        self.provider = resolved
        self.io_binding = resolved == "cuda" if io_binding is None else bool(io_binding)
        self.max_batch_size = max_batch_size
        self.max_length = self.artifact.max_length
        manifest = self.artifact.manifest
        self.tokenizer = Tokenizer.from_artifact(self.artifact, mask_fix=mask_fix)
        self.vocab_size = int(manifest["model"]["vocab_size"])
        check_external_data(graph, self.artifact.folder)
        self.session = create_session(graph, resolved, threads)
        names = [i.name for i in self.session.get_inputs()]
        if names != list(INPUT_NAMES):
            raise ArtifactError(f"{graph}: graph inputs {names}, expected {list(INPUT_NAMES)}")
        self._special = {self.tokenizer.cls_token_id, self.tokenizer.sep_token_id,
                         self.tokenizer.pad_token_id}

    @property
    def providers(self) -> list[str]:
        """The execution providers attached to the session."""
        return self.session.get_providers()

    # ------------------------------------------------------------------ public calls
    def __call__(self, inputs: str | Sequence[str], top_k: int = 5) -> Any:
        """Predict masks, nested like the transformers fill-mask pipeline.

        A text with one mask gives a list of ``top_k`` candidates; a text with several masks
        a list (one per mask, in order) of such lists. A list of texts gives a list with one
        such entry per text.
        """
        texts: Sequence[str] = [inputs] if isinstance(inputs, str) else inputs
        results = self.fill(texts, top_k=top_k)
        shaped = [r[0] if len(r) == 1 else r for r in results]
        return shaped[0] if isinstance(inputs, str) else shaped

    def fill(self, texts: Sequence[str], top_k: int = 5) -> list[list[list[Candidate]]]:
        """Regularly nested predictions: ``[text][mask][rank] -> Candidate``."""
        rows = self._encode(texts)
        probs, ids = self._predict(rows, self._check_top_k(top_k))
        out: list[list[list[Candidate]]] = []
        for row, p, i in zip(rows, probs, ids):
            out.append([self._candidates(row, pos, p[m], i[m])
                        for m, pos in enumerate(self._mask_positions(row))])
        return out

    def predict_ids(self, texts: Sequence[str], top_k: int = 5) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per text, arrays ``(probs[masks, k], ids[masks, k])`` without building strings."""
        rows = self._encode(texts)
        return list(zip(*self._predict(rows, self._check_top_k(top_k))))

    def logits(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Full MLM logits, one ``[tokens, vocab]`` array per text (``[CLS]``/``[SEP]`` included).

        The graph computes the head only at the positions asked for; here that is all of them.
        """
        rows = [self.tokenizer.encode(text, max_length=self.max_length)
                for _, text in self._texts(texts)]
        everywhere = [list(range(len(r))) for r in rows]
        return [out[0] for out in self._gather(rows, everywhere, ["logits"], top_k=1)]

    # ------------------------------------------------------------------ internals
    def _check_top_k(self, top_k: int) -> int:
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) \
                or not 1 <= top_k <= self.vocab_size:
            raise InputError(f"top_k must be an integer in 1..{self.vocab_size}, not {top_k!r}")
        return int(top_k)

    @staticmethod
    def _texts(texts: Sequence[str]) -> list[tuple[str, str]]:
        """``(name for errors, text)`` pairs, after checking that ``texts`` is a list of str."""
        if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
            raise InputError("texts must be a str or a list of str, not "
                             f"{type(texts).__name__}")
        if not texts:
            raise InputError("no texts given")
        out = []
        for n, text in enumerate(texts):
            where = f"text {n}" if len(texts) > 1 else "text"
            if not isinstance(text, str):
                raise InputError(f"{where} must be a str, not {type(text).__name__}")
            out.append((where, text))
        return out

    def _encode(self, texts: Sequence[str]) -> list[list[int]]:
        rows = []
        mask_id = self.tokenizer.mask_token_id
        for where, text in self._texts(texts):
            if not text.strip():
                raise InputError(f"{where} is empty")
            ids = self.tokenizer.encode(text)
            if mask_id not in ids:
                raise InputError(f"{where} has no {self.tokenizer.mask_token} token: {text[:60]!r}")
            if len(ids) > self.max_length:
                raise InputError(f"{where} is {len(ids)} tokens long ([CLS] and [SEP] included); "
                                 f"the model takes at most {self.max_length}")
            rows.append(ids)
        return rows

    def _mask_positions(self, row: list[int]) -> list[int]:
        mask_id = self.tokenizer.mask_token_id
        return [j for j, t in enumerate(row) if t == mask_id]

    def _predict(self, rows: list[list[int]], top_k: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        out = self._gather(rows, [self._mask_positions(r) for r in rows], list(OUTPUT_NAMES), top_k)
        return [o[0] for o in out], [o[1] for o in out]

    def _gather(self, rows: list[list[int]], positions: list[list[int]], outputs: list[str],
                top_k: int) -> list[list[np.ndarray]]:
        """Run ``rows`` in length batches, asking for ``outputs`` at ``positions`` of each row;
        per row, the outputs' slices that belong to it."""
        result: list[list[np.ndarray]] = [[] for _ in rows]
        k = np.array([top_k], dtype=np.int64)
        for batch in self._batches(rows):
            feed = self.tokenizer.pad([rows[n] for n in batch])
            width = feed["input_ids"].shape[1]
            flat = [b * width + j for b, n in enumerate(batch) for j in positions[n]]
            feed["mask_positions"] = np.asarray(flat, dtype=np.int64)
            feed["top_k"] = k
            arrays = self._run(feed, outputs)
            offset = 0
            for n in batch:
                count = len(positions[n])
                result[n] = [a[offset : offset + count] for a in arrays]
                offset += count
        return result

    def _batches(self, rows: list[list[int]]) -> list[list[int]]:
        """Indices of ``rows`` grouped by length: at most ``max_batch_size`` each, and a new
        batch whenever a row is over 1.25 times the batch's shortest, so padding stays small."""
        order = sorted(range(len(rows)), key=lambda n: len(rows[n]))
        batches: list[list[int]] = []
        for n in order:
            if batches and len(batches[-1]) < self.max_batch_size \
                    and len(rows[n]) <= 1.25 * len(rows[batches[-1][0]]) + 2:
                batches[-1].append(n)
            else:
                batches.append([n])
        return batches

    def _run(self, feed: dict[str, np.ndarray], outputs: list[str]) -> list[np.ndarray]:
        if not self.io_binding:
            return self.session.run(outputs, feed)
        binding = self.session.io_binding()
        for name, value in feed.items():
            binding.bind_cpu_input(name, value)
        for name in outputs:  # outputs not asked for (the logits, for fill) stay on the device
            binding.bind_output(name, "cpu")
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()

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
