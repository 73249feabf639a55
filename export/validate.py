"""Check exported graphs against PyTorch, and int8 (or fp16) against fp32, on real inputs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from albert_onnx.engine.io import (
    FEATURE_EXTRACTION,
    FILL_MASK,
    GRAPH_IO,
    MULTIPLE_CHOICE,
    QUESTION_ANSWERING,
    TEXT,
    TEXT_CLASSIFICATION,
    TOKEN_CLASSIFICATION,
    flat_positions,
)

from .heads import reference_outputs

# (id rows, type-id rows or None): one batch as the graph gets it
Batch = tuple[list[list[int]], list[list[int]] | None]

# The int8 gate's figure per task and its default bar (issue: measured against fp32 on the
# export's sample texts).
INT8_GATES = {FILL_MASK: ("top1_agreement", 0.90), TEXT_CLASSIFICATION: ("top_label_agreement", 0.97),
              TOKEN_CLASSIFICATION: ("top_label_agreement", 0.97), FEATURE_EXTRACTION: ("mean_cosine", 0.99),
              QUESTION_ANSWERING: ("best_span_agreement", 0.95), MULTIPLE_CHOICE: ("best_choice_agreement", 0.97)}
PAIR_TASKS = (TEXT_CLASSIFICATION, QUESTION_ANSWERING, MULTIPLE_CHOICE)


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
    if task in PAIR_TASKS:
        pairs = [tokenizer.encode_with_offsets(a, b) for a, b in zip(texts[:6], texts[6:12])]
        pairs = [p for p in pairs if len(p.ids) <= max_length]
        batches.append(([p.ids for p in pairs], [p.type_ids for p in pairs]))
    for n in sorted({min(64, max_length), max_length}):
        batches.append(([random_row(n)], None))
    return batches


def _feed(tokenizer: Any, batch: Batch) -> dict[str, np.ndarray]:
    rows, types = batch
    return tokenizer.pad(rows, type_ids=types)


def _run_all(task: str, session: Any, tokenizer: Any, batch: Batch) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each graph output on ``batch`` (``GRAPH_IO`` order), with the boolean mask of its entries
    that are real (not padding), flattened to ``[entries, ...]``."""
    feed = _feed(tokenizer, batch)
    real = feed["attention_mask"].reshape(-1) == 1
    if task == FILL_MASK:
        rows = batch[0]
        flat = flat_positions([range(len(r)) for r in rows], feed["input_ids"].shape[1])
        out = session.run(["logits"], {**feed, "mask_positions": flat,
                                       "top_k": np.array([1], dtype=np.int64)})[0]
        return [(out, np.ones(len(out), dtype=bool))]
    kinds = GRAPH_IO[task].outputs
    results = []
    for name, out in zip(kinds, session.run(list(kinds), feed)):
        if kinds[name] == TEXT:
            results.append((out, np.ones(len(out), dtype=bool)))
        elif out.ndim == 2:  # [batch, tokens]: one value per token
            results.append((out.reshape(-1), real))
        else:
            results.append((out.reshape(-1, out.shape[-1]), real))
    return results


def _run(task: str, session: Any, tokenizer: Any, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
    """The graph's first output on ``batch`` (see :func:`_run_all`)."""
    return _run_all(task, session, tokenizer, batch)[0]


def compare_with_torch(task: str, model: Any, session: Any, tokenizer: Any,
                       batches: list[Batch]) -> dict[str, Any]:
    """Max |Δ| between PyTorch and the graph over every real entry of every batch."""
    import torch

    worst = 0.0
    same = total = 0
    per_token = task not in (FEATURE_EXTRACTION, QUESTION_ANSWERING, MULTIPLE_CHOICE)
    for batch in batches:
        feed = _feed(tokenizer, batch)
        with torch.no_grad():
            refs = reference_outputs(task, model, {k: torch.from_numpy(v) for k, v in feed.items()})
        real = feed["attention_mask"].reshape(-1) == 1
        for name, (out, keep), ref_t in zip(GRAPH_IO[task].outputs, _run_all(task, session, tokenizer, batch), refs):
            ref = ref_t.numpy()
            if GRAPH_IO[task].outputs[name] != TEXT:  # per token: the real entries (fill-mask: every one asked)
                ref = (ref.reshape(-1) if ref.ndim == 2 else ref.reshape(-1, ref.shape[-1]))[real]
                out = out if task == FILL_MASK else out[keep]
            worst = max(worst, float(np.abs(out - ref).max()))
            if per_token:
                same += int((out.argmax(-1) == ref.argmax(-1)).sum())
                total += len(out)
        if not per_token:
            total += len(batch[0])
    result: dict[str, Any] = {"max_abs_diff": worst, "entries": total,
                              "sequence_lengths": sorted({len(r) for b in batches for r in b[0]})}
    if per_token:
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
    if task == QUESTION_ANSWERING:
        return _span_agreement(reference, candidate, tokenizer, texts, max_length)
    if task == MULTIPLE_CHOICE:
        return _choice_agreement(reference, candidate, tokenizer, texts, max_length)
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


QUESTIONS = ["誰が?", "何を?", "いつ?", "どこで?", "なぜ?", "どうした?", "猫は?", "名前は?"]


def qa_pairs(tokenizer: Any, texts: list[str], max_length: int) -> list[tuple[str, str]]:
    """(question, context) pairs for the QA gate: short questions on contexts of two or three
    sample texts, those that fit one window."""
    pairs = []
    for n in range(len(texts)):
        context = "".join(texts[n : n + 2 + n % 2])
        for q in QUESTIONS[n % 4 :: 4]:
            if len(tokenizer.encode_with_offsets(q, context).ids) <= max_length:
                pairs.append((q, context))
    return pairs


def _span_agreement(reference: Any, candidate: Any, tokenizer: Any, texts: list[str],
                    max_length: int) -> dict[str, Any]:
    """How often int8's best answer span (the runtime's span decoding, max 15 tokens) is fp32's."""
    from albert_onnx.tasks.question_answering import spans

    same = 0
    pairs = qa_pairs(tokenizer, texts, max_length)
    for q, context in pairs:
        enc = tokenizer.encode_with_offsets(q, context)
        allowed = np.array([int(s == 1) for s in enc.sequence_ids()])
        allowed[0] = 1
        best = []
        for session in (reference, candidate):
            start, end = session.run(["start_logits", "end_logits"], _feed(tokenizer, ([enc.ids], [enc.type_ids])))
            s, e, _, _ = spans(start[0], end[0], allowed, 1, 15, 0.0, False)
            best.append((int(s[0]), int(e[0])))
        same += best[0] == best[1]
    return {"questions": len(pairs), "best_span_agreement": same / max(len(pairs), 1)}


def mc_questions(texts: list[str]) -> list[tuple[str, list[str]]]:
    """Multiple-choice questions for the gate, JCommonsenseQA's shape: a sample text cut at a
    third, a half or two thirds; its own rest and the rests of the next four texts as choices."""
    out = []
    for num, den in ((1, 3), (1, 2), (2, 3)):
        cuts = [(t[: len(t) * num // den], t[len(t) * num // den :]) for t in texts]
        out += [(first, [cuts[(n + k) % len(cuts)][1] for k in range(5)]) for n, (first, _) in enumerate(cuts)]
    return out


def _choice_agreement(reference: Any, candidate: Any, tokenizer: Any, texts: list[str],
                      max_length: int) -> dict[str, Any]:
    """How often int8's best choice is fp32's, each question's choices in one run."""
    same = total = 0
    worst = 0.0
    for q, choices in mc_questions(texts):
        encs = [tokenizer.encode_with_offsets(q, c) for c in choices]
        if max(len(e.ids) for e in encs) > max_length:
            continue
        batch: Batch = ([e.ids for e in encs], [e.type_ids for e in encs])
        r, c = (_run(MULTIPLE_CHOICE, s, tokenizer, batch)[0] for s in (reference, candidate))
        same += int(r.argmax() == c.argmax())
        worst = max(worst, float(np.abs(r - c).max()))
        total += 1
    return {"questions": total, "best_choice_agreement": same / max(total, 1), "max_abs_logit_diff": worst}


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12))


def _embedding_agreement(refs: Sequence[np.ndarray], cands: Sequence[np.ndarray]) -> dict[str, Any]:
    cls = [_cos(r[0], c[0]) for r, c in zip(refs, cands)]
    mean = [_cos(r.mean(0), c.mean(0)) for r, c in zip(refs, cands)]
    tokens = [_cos(x, y) for r, c in zip(refs, cands) for x, y in zip(r, c)]
    return {"texts": len(refs), "cls_cosine": float(np.mean(cls)), "mean_pool_cosine": float(np.mean(mean)),
            "token_cosine": float(np.mean(tokens)), "mean_cosine": float(min(np.mean(cls), np.mean(mean))),
            "measure": "the lower of the mean cosines of the cls and mean-pooled vectors"}
