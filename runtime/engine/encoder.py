"""The encoder core: an artifact's tokenizer and session, and length-batched runs over them.

Every task is a thin head on an :class:`Encoder`: it encodes its inputs to id rows, asks the
encoder for some graph outputs, and turns the per-row slices it gets back into results.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..artifact import PRECISIONS, SPIECE_NAME, Artifact, load_artifact
from ..errors import ArtifactError, InputError
from ..onnx_external_data import check_external_data
from ..tokenizer import Tokenizer
from .int8_form import Int8Choice, check_int8_weights
from .io import GRAPH_IO, POSITION, TEXT, TOKEN, flat_positions
from .session import check_threads, create_int8_session, create_session, resolve_provider

log = logging.getLogger("albert_onnx")

# A new batch starts once a row is this much longer than the batch's shortest (plus 2 tokens),
# so padding stays small.
LENGTH_RATIO = 1.25


def check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{name} must be a positive integer, not {value!r}")
    return int(value)


class Encoder:
    """An artifact loaded for one precision and provider (see :class:`FillMask` for the options).

    ``task`` names the head the caller expects; an artifact of another task is an error.
    """

    def __init__(self, artifact_dir: str | Path, precision: str = "fp32", provider: str = "cpu",
                 threads: int | None = None, *, max_batch_size: int = 32, verify: bool = True,
                 mask_fix: bool = True, io_binding: bool | None = None, int8_weights: str = "auto",
                 task: str | None = None) -> None:
        if precision not in PRECISIONS:
            raise InputError(f"unknown precision {precision!r}; valid: {list(PRECISIONS)}")
        int8_weights = check_int8_weights(int8_weights)
        max_batch_size = check_positive_int("max_batch_size", max_batch_size)
        threads = check_threads(threads)
        resolved, self.fallback_note = resolve_provider(provider)
        if self.fallback_note:
            log.warning(self.fallback_note)
        self.artifact: Artifact = load_artifact(artifact_dir, verify=False)
        self.task = self.artifact.task["name"]
        if task is not None and task != self.task:
            raise ArtifactError(f"{self.artifact.folder}: this artifact holds a {self.task!r} model, "
                                f"not {task!r}; use albert_onnx.pipeline() to get the right predictor")
        graph = self.artifact.graph_path(precision)
        if verify:  # only what this precision reads: cold start stays short
            self.artifact.verify([graph.name, SPIECE_NAME])
        if precision == "fp16" and resolved != "cuda":
            log.info("fp16 graph on the CPU: ONNX Runtime runs it, but slower than fp32")
        self.precision = precision
        self.provider = resolved
        self.io_binding = resolved == "cuda" if io_binding is None else bool(io_binding)
        # Dynamic int8 takes one activation scale per tensor, computed over the whole batch:
        # texts run together would change each other's answers. Such graphs run one text at a time.
        entry = self.artifact.manifest["graphs"][precision]
        self.batch_independent_scales = entry.get("activation_scales", "dynamic-per-tensor"
                                                  if precision == "int8" else "none") != "dynamic-per-tensor"
        self.max_batch_size = max_batch_size if self.batch_independent_scales else 1
        self.max_length = self.artifact.max_length
        self.tokenizer = Tokenizer.from_artifact(self.artifact, mask_fix=mask_fix)
        self.io = GRAPH_IO[self.task]
        check_external_data(graph, self.artifact.folder)
        self.tokens_run = 0  # positions of every row run so far ([CLS] and [SEP] included, padding not)
        # called before every session run of a call but its first: a server runs other requests
        # there, so a large call's batches interleave with small calls instead of holding them
        self.between_batches: Callable[[], None] | None = None
        self.int8: Int8Choice | None = None
        if precision == "int8":
            stored = entry.get("settings", {}).get("weight_type")  # as the export recorded it (None: read the file)
            self.session, self.int8 = create_int8_session(graph, resolved, threads, int8_weights, stored)
        else:
            self.session = create_session(graph, resolved, threads)
        self.int8_note = _int8_note(self.int8)
        if self.int8_note:
            log.warning(self.int8_note)
        names = tuple(i.name for i in self.session.get_inputs())
        if names != self.io.inputs:
            raise ArtifactError(f"{graph}: graph inputs {list(names)}, expected {list(self.io.inputs)} "
                                f"for a {self.task!r} graph")
        outputs = {o.name for o in self.session.get_outputs()}
        if not set(self.io.outputs) <= outputs:
            raise ArtifactError(f"{graph}: graph outputs {sorted(outputs)}, expected {sorted(self.io.outputs)}")

    @property
    def providers(self) -> list[str]:
        """The execution providers attached to the session."""
        return self.session.get_providers()

    def check_length(self, where: str, n_tokens: int, truncatable: bool = False) -> None:
        if n_tokens > self.max_length:
            raise InputError(f"{where} is {n_tokens} tokens long ([CLS] and [SEP] included); "
                             f"the model takes at most {self.max_length}"
                             + ("; pass truncation=True to cut it" if truncatable else ""))

    def run(self, rows: Sequence[Sequence[int]], outputs: Sequence[str], *,
            type_ids: Sequence[Sequence[int]] | None = None,
            positions: Sequence[Sequence[int]] | None = None, top_k: int = 1,
            groups: Sequence[Sequence[int]] | None = None) -> list[list[np.ndarray]]:
        """Run ``rows`` in length batches; per row, its slice of each output in ``outputs``.

        ``positions`` (fill-mask graphs) are the positions of each row to compute the head at.
        ``groups`` replaces the length batching: each group of row indices is one session run
        (the choices of one question, whatever the precision).
        """
        result: list[list[np.ndarray]] = [[] for _ in rows]
        for count, batch in enumerate(self.batches(rows) if groups is None else [list(g) for g in groups]):
            if count and self.between_batches is not None:
                self.between_batches()
            feed = self.tokenizer.pad([rows[n] for n in batch],
                                      type_ids=None if type_ids is None else [type_ids[n] for n in batch])
            if positions is not None:
                feed["mask_positions"] = flat_positions([positions[n] for n in batch],
                                                        feed["input_ids"].shape[1])
                feed["top_k"] = np.array([top_k], dtype=np.int64)
            arrays = self._run(feed, list(outputs))
            self.tokens_run += sum(len(rows[n]) for n in batch)
            offset = 0
            for b, n in enumerate(batch):
                count = len(positions[n]) if positions is not None else 0
                for name, array in zip(outputs, arrays):
                    kind = self.io.outputs[name]
                    if kind == POSITION:
                        result[n].append(array[offset : offset + count])
                    elif kind == TEXT:
                        result[n].append(array[b])
                    elif kind == TOKEN:
                        result[n].append(array[b, : len(rows[n])])
                offset += count
        return result

    def batches(self, rows: Sequence[Sequence[int]]) -> list[list[int]]:
        """Indices of ``rows`` grouped by length: at most ``max_batch_size`` each, and a new
        batch whenever a row is over 1.25 times the batch's shortest, so padding stays small."""
        order = sorted(range(len(rows)), key=lambda n: len(rows[n]))
        batches: list[list[int]] = []
        for n in order:
            if batches and len(batches[-1]) < self.max_batch_size \
                    and len(rows[n]) <= LENGTH_RATIO * len(rows[batches[-1][0]]) + 2:
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
        for name in outputs:  # outputs not asked for stay on the device
            binding.bind_output(name, "cpu")
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()


def _int8_note(choice: Int8Choice | None) -> str | None:
    """A warning where the int8 products run on a path that saturates (asked for, or the only
    form a graph that cannot be converted holds)."""
    if choice is None or "saturating" not in choice.kernel:
        return None
    return (f"int8 products run as {choice.kernel} (int8_weights={choice.requested!r}, the file stores "
            f"{choice.stored}): uint8 x int8 sums saturate on this CPU (x86 without VNNI), so answers drift "
            "from fp32 further than the export measured; use int8_weights='auto' for the exact kernel")
