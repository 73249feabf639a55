"""Check exported graphs against PyTorch, and int8 against fp32, on real inputs."""

from __future__ import annotations

from typing import Any

import numpy as np


def validation_rows(tokenizer: Any, texts: list[str], vocab_size: int, max_length: int,
                    seed: int = 0) -> list[list[list[int]]]:
    """Batches of id rows: the sample texts padded together, one alone, and long random rows."""
    rows = [tokenizer.encode(t) for t in texts]
    rng = np.random.default_rng(seed)
    special = {tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id}
    low = max(special | {tokenizer.mask_token_id, tokenizer.unk_token_id}) + 1
    low = low if low < vocab_size else 0

    def random_row(n: int) -> list[int]:
        body = rng.integers(low, vocab_size, n - 2).tolist()
        body[len(body) // 2] = tokenizer.mask_token_id
        return [tokenizer.cls_token_id, *body, tokenizer.sep_token_id]

    batches = [rows[:6], rows[6:7]]
    for n in sorted({min(64, max_length), max_length}):
        batches.append([random_row(n)])
    return batches


def positions_of(tokenizer: Any, rows: list[list[int]]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    feed = tokenizer.pad(rows)
    width = feed["input_ids"].shape[1]
    flat = np.array([b * width + j for b, r in enumerate(rows) for j in range(len(r))], dtype=np.int64)
    return feed, flat


def compare_with_torch(model: Any, session: Any, tokenizer: Any,
                       batches: list[list[list[int]]]) -> dict[str, Any]:
    """Max |Δ logits| between PyTorch and the graph at every real position of every batch."""
    import torch

    worst = 0.0
    top1_same = total = 0
    for rows in batches:
        feed, flat = positions_of(tokenizer, rows)
        with torch.no_grad():
            ref = model(**{k: torch.from_numpy(v) for k, v in feed.items()}).logits.numpy()
        ref = ref.reshape(-1, ref.shape[-1])[flat]
        out = session.run(["logits", "top_ids"], {**feed, "mask_positions": flat,
                                                  "top_k": np.array([1], dtype=np.int64)})
        worst = max(worst, float(np.abs(out[0] - ref).max()))
        top1_same += int((out[1][:, 0] == ref.argmax(-1)).sum())
        total += len(flat)
    return {"max_abs_diff": worst, "positions": total, "top1_agreement": top1_same / total,
            "sequence_lengths": sorted({len(r) for b in batches for r in b})}


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


def top_k_of(session: Any, tokenizer: Any, rows: list[list[int]], k: int = 5,
             batch: int = 32) -> np.ndarray:
    """Top-k ids at the one mask of each row."""
    outs = []
    for i in range(0, len(rows), batch):
        part = rows[i : i + batch]
        feed = tokenizer.pad(part)
        width = feed["input_ids"].shape[1]
        flat = np.array([b * width + r.index(tokenizer.mask_token_id) for b, r in enumerate(part)],
                        dtype=np.int64)
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
