"""Check exported graphs against PyTorch, and int8 (or fp16) against fp32, on real inputs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from albert_onnx.engine.io import (
    FEATURE_EXTRACTION,
    FILL_MASK,
    GRAPH_IO,
    TEXT,
    TEXT_CLASSIFICATION,
    TOKEN_CLASSIFICATION,
    flat_positions,
)

from .heads import reference_output

# (id rows, type-id rows or None): one batch as the graph gets it
Batch = tuple[list[list[int]], list[list[int]] | None]

# The int8 gate's figure per task and its default bar (issue: measured against fp32 on the
# export's sample texts).
INT8_GATES = {FILL_MASK: ("top1_agreement", 0.90), TEXT_CLASSIFICATION: ("top_label_agreement", 0.97),
              TOKEN_CLASSIFICATION: ("top_label_agreement", 0.97), FEATURE_EXTRACTION: ("mean_cosine", 0.99)}


def validation_batches(task: str, tokenizer: Any, texts: list[str], vocab_size: int, max_length: int,
                       seed: int = 0) -> list[Batch]:
    """The sample texts padded together, one alone, sentence pairs (text classification), and
    long random rows up to the model's limit."""
    rows = [tokenizer.encode(t) for t in texts]
    rng = np.random.default_rng(seed)
    special = {tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id}
    low = max(special | {tokenizer.mask_token_id, tokenizer.unk_token_id}) + 1
    low = low if low < vocab_size else 0

    def random_row(n: int) -> list[int]:
        body = rng.integers(low, vocab_size, n - 2).tolist()
        body[len(body) // 2] = tokenizer.mask_token_id
        return [tokenizer.cls_token_id, *body, tokenizer.sep_token_id]

    batches: list[Batch] = [(rows[:6], None), (rows[6:7], None)]
    if task == TEXT_CLASSIFICATION:
        pairs = [tokenizer.encode_with_offsets(a, b) for a, b in zip(texts[:6], texts[6:12])]
        pairs = [p for p in pairs if len(p.ids) <= max_length]
        batches.append(([p.ids for p in pairs], [p.type_ids for p in pairs]))
    for n in sorted({min(64, max_length), max_length}):
        batches.append(([random_row(n)], None))
    return batches


def _feed(tokenizer: Any, batch: Batch) -> dict[str, np.ndarray]:
    rows, types = batch
    return tokenizer.pad(rows, type_ids=types)


def _run(task: str, session: Any, tokenizer: Any, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
    """The graph's main output on ``batch``, and the boolean mask of the entries that are real
    (not padding), both flattened to ``[entries, ...]``."""
    feed = _feed(tokenizer, batch)
    real = feed["attention_mask"].reshape(-1) == 1
    if task == FILL_MASK:
        rows = batch[0]
        flat = flat_positions([range(len(r)) for r in rows], feed["input_ids"].shape[1])
        out = session.run(["logits"], {**feed, "mask_positions": flat,
                                       "top_k": np.array([1], dtype=np.int64)})[0]
        return out, np.ones(len(out), dtype=bool)
    name = next(iter(GRAPH_IO[task].outputs))
    out = session.run([name], feed)[0]
    if GRAPH_IO[task].outputs[name] == TEXT:
        return out, np.ones(len(out), dtype=bool)
    return out.reshape(-1, out.shape[-1]), real


def compare_with_torch(task: str, model: Any, session: Any, tokenizer: Any,
                       batches: list[Batch]) -> dict[str, Any]:
    """Max |Δ| between PyTorch and the graph over every real entry of every batch."""
    import torch

    worst = 0.0
    same = total = 0
    for batch in batches:
        feed = _feed(tokenizer, batch)
        with torch.no_grad():
            ref = reference_output(task, model, {k: torch.from_numpy(v) for k, v in feed.items()}).numpy()
        out, keep = _run(task, session, tokenizer, batch)
        if GRAPH_IO[task].outputs[next(iter(GRAPH_IO[task].outputs))] != TEXT:
            ref = ref.reshape(-1, ref.shape[-1])[feed["attention_mask"].reshape(-1) == 1]
            out = out[keep] if task != FILL_MASK else out
        worst = max(worst, float(np.abs(out - ref).max()))
        same += int((out.argmax(-1) == ref.argmax(-1)).sum())
        total += len(out)
    result: dict[str, Any] = {"max_abs_diff": worst, "entries": total,
                              "sequence_lengths": sorted({len(r) for b in batches for r in b[0]})}
    if task != FEATURE_EXTRACTION:
        result["top1_agreement"] = same / total
    return result


# ---------------------------------------------------------------------- quantized vs fp32
def masked_rows(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    """Every text with one piece masked at a time (the way the quality figures are taken)."""
    out = []
    special = {tokenizer.cls_token_id, tokenizer.sep_token_id}
    for t in texts:
        ids = tokenizer.encode(t)
        for j, tok in enumerate(ids):
            if tok not in special and tokenizer.convert_ids_to_tokens(tok) != "\u2581":
                out.append(ids[:j] + [tokenizer.mask_token_id] + ids[j + 1 :])
    return out


def top_k_of(session: Any, tokenizer: Any, rows: list[list[int]], k: int = 5) -> np.ndarray:
    """Top-k ids at the one mask of each row, one row at a time."""
    outs = []
    for row in rows:
        feed = tokenizer.pad([row])
        flat = np.array([row.index(tokenizer.mask_token_id)], dtype=np.int64)
        outs.append(session.run(["top_ids"], {**feed, "mask_positions": flat,
                                               "top_k": np.array([k], dtype=np.int64)})[0])
    return np.concatenate(outs)


def agreement(reference: np.ndarray, candidate: np.ndarray) -> dict[str, float]:
    """Top-1 agreement and mean top-5 overlap of two ``[masks, k]`` id arrays."""
    top1 = float((reference[:, 0] == candidate[:, 0]).mean())
    k = reference.shape[1]
    overlap = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(reference.tolist(),
                                                                       candidate.tolist())]))
    return {"top1_agreement": top1, f"top{k}_overlap": overlap, "masks": int(len(reference))}


def quality_inputs(task: str, tokenizer: Any, texts: list[str], max_length: int) -> list[Batch]:
    """One-text batches for comparing precisions: each sample text, its two halves, and (text
    classification) pairs of texts; those that fit the model."""
    items: list[Batch] = []
    for t in texts:
        for part in (t, t[: len(t) // 2], t[len(t) // 2 :]):
            items.append(([tokenizer.encode(part)], None))
    if task == TEXT_CLASSIFICATION:
        for a, b in zip(texts, texts[1:] + texts[:1]):
            enc = tokenizer.encode_with_offsets(a, b)
            items.append(([enc.ids], [enc.type_ids]))
    return [item for item in items if len(item[0][0]) <= max_length]


def compare_precisions(task: str, reference: Any, candidate: Any, tokenizer: Any,
                       texts: list[str], max_length: int) -> dict[str, Any]:
    """How far a quantized (or fp16) graph's answers are from fp32's, on the sample texts,
    with the figure the int8 gate reads (``INT8_GATES``)."""
    if task == FILL_MASK:
        rows = [r for r in masked_rows(tokenizer, texts) if len(r) <= max_length]
        return agreement(top_k_of(reference, tokenizer, rows), top_k_of(candidate, tokenizer, rows))
    refs, cands = [], []
    for batch in quality_inputs(task, tokenizer, texts, max_length):
        r, keep = _run(task, reference, tokenizer, batch)
        c, _ = _run(task, candidate, tokenizer, batch)
        if task != TEXT_CLASSIFICATION:  # per token: the real ones ([CLS]/[SEP] not tagged)
            r, c = r[keep], c[keep]
            if task == TOKEN_CLASSIFICATION:
                r, c = r[1:-1], c[1:-1]
        refs.append(r)
        cands.append(c)
    if task == FEATURE_EXTRACTION:
        return _embedding_agreement(refs, cands)
    ref, cand = np.concatenate(refs), np.concatenate(cands)
    out: dict[str, Any] = {"entries": int(len(ref)), "max_abs_logit_diff": float(np.abs(ref - cand).max())}
    if ref.shape[-1] == 1:  # regression: does int8 order the inputs as fp32 does?
        a, b = ref[:, 0], cand[:, 0]
        da, db = np.sign(a[:, None] - a[None, :]), np.sign(b[:, None] - b[None, :])
        out["top_label_agreement"] = float((da == db).mean())
        out["measure"] = "pairwise order agreement of the single output"
    else:
        out["top_label_agreement"] = float((ref.argmax(-1) == cand.argmax(-1)).mean())
    return out


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12))


def _embedding_agreement(refs: Sequence[np.ndarray], cands: Sequence[np.ndarray]) -> dict[str, Any]:
    cls = [_cos(r[0], c[0]) for r, c in zip(refs, cands)]
    mean = [_cos(r.mean(0), c.mean(0)) for r, c in zip(refs, cands)]
    tokens = [_cos(x, y) for r, c in zip(refs, cands) for x, y in zip(r, c)]
    return {"texts": len(refs), "cls_cosine": float(np.mean(cls)), "mean_pool_cosine": float(np.mean(mean)),
            "token_cosine": float(np.mean(tokens)), "mean_cosine": float(min(np.mean(cls), np.mean(mean))),
            "measure": "the lower of the mean cosines of the cls and mean-pooled vectors"}
