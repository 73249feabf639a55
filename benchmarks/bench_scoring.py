"""Masked-LM scoring (pseudo-log-likelihood) against a PyTorch reference, and its accuracy.

Speed, at the ALBERT-base shape (random weights, 2 threads, blocks of consecutive calls over
rounds): one ~30-piece sentence, and 32 sentences of mixed length (sentences/s). The PyTorch
reference runs all masked copies of a sentence in one batch through AlbertForMaskedLM and
takes log-softmax at each copy's mask. Accuracy, where ../shared exists: fp32 PLL against
that reference on the shared model's 300 held-out sentences, and int8's ranking of them
against fp32's (Spearman).

  python benchmarks/bench_scoring.py [--quick]

Results: benchmarks/results/CLASS/scoring.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    CACHE,
    ROOT,
    SHARED_MODEL,
    base_shape_model,
    cached_artifact,
    machine,
    md_table,
    prefix_of_length,
    summarize,
    timed,
    write_report,
)


def reference_pll(model: Any, tok: Any, texts: list[str]) -> list[float]:
    import torch

    out = []
    for text in texts:
        ids = tok(text)["input_ids"]
        copies = torch.tensor([ids[:j] + [tok.mask_token_id] + ids[j + 1 :] for j in range(1, len(ids) - 1)])
        with torch.inference_mode():
            logits = model(input_ids=copies).logits
        rows = torch.arange(len(copies))
        logp = torch.log_softmax(logits[rows, rows + 1].double(), dim=-1)
        out.append(float(logp[rows, torch.tensor(ids[1:-1])].sum()))
    return out


def spearman(a: list[float], b: list[float]) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def sentence_of(tok: Any, corpus: list[str], n: int, start: int = 0) -> str:
    """A corpus stretch of about ``n`` pieces."""
    return prefix_of_length(tok, "".join(corpus[start:]), n + 2)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--cache", type=Path, default=CACHE)
    args = ap.parse_args(argv)
    rounds = 1 if args.quick else args.rounds
    import torch
    import transformers

    from albert_onnx import FillMask

    torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    warnings.simplefilter("ignore")
    report: dict[str, Any] = {"machine": machine(args.threads)}
    md = ["# Masked-LM scoring (pseudo-log-likelihood)\n"]

    if SHARED_MODEL.is_dir():  # accuracy on a trained model
        art = cached_artifact(SHARED_MODEL, args.cache / "artifact-shared-mini", quantize="int8")
        sentences = [s for s in (SHARED_MODEL / "heldout_sentences.txt").read_text(encoding="utf-8").split("\n")
                     if s.strip()]
        model = transformers.AlbertForMaskedLM.from_pretrained(str(SHARED_MODEL)).eval()
        tok = transformers.AlbertTokenizerFast.from_pretrained(str(SHARED_MODEL))
        ref = reference_pll(model, tok, sentences)
        fp32 = FillMask(art, threads=args.threads).score(sentences)
        int8 = FillMask(art, precision="int8", threads=args.threads).score(sentences)
        acc = {"sentences": len(sentences),
               "fp32_max_abs_diff_vs_pytorch": float(np.max(np.abs(np.subtract(fp32, ref)))),
               "int8_spearman_vs_fp32": spearman(fp32, int8),
               "int8_max_abs_diff_vs_fp32": float(np.max(np.abs(np.subtract(int8, fp32))))}
        report["accuracy"] = acc
        md.append(f"Accuracy on the shared model's {len(sentences)} held-out sentences: fp32 PLL against the "
                  f"PyTorch reference max |Δ| = {acc['fp32_max_abs_diff_vs_pytorch']:.1e}; int8 against fp32: "
                  f"Spearman {acc['int8_spearman_vs_fp32']:.4f}, max |Δ| {acc['int8_max_abs_diff_vs_fp32']:.2f}.\n")

    folder = base_shape_model(args.cache)
    art = cached_artifact(folder, args.cache / "artifact-fill-mask", quantize="int8", int8_min_agreement=0.0)
    model = transformers.AlbertForMaskedLM.from_pretrained(str(folder)).eval()
    tok = transformers.AlbertTokenizerFast.from_pretrained(str(folder))
    ours = {p: FillMask(art, precision=p, threads=args.threads) for p in ("fp32", "int8")}
    corpus = [x for x in (ROOT / "tests" / "data" / "corpus_ja.txt").read_text(encoding="utf-8").split("\n")
              if x.strip() and "[" not in x and "<" not in x]
    one = sentence_of(ours["fp32"].tokenizer, corpus, 30)
    mixed = [sentence_of(ours["fp32"].tokenizer, corpus, n, start=i * 3)
             for i, n in enumerate([6, 10, 14, 18, 22, 26, 30, 40] * 4)]
    contenders = {"pytorch, all copies in one batch": lambda texts: reference_pll(model, tok, texts),
                  "albert-onnx fp32": lambda texts: ours["fp32"].score(texts),
                  "albert-onnx int8": lambda texts: ours["int8"].score(texts)}
    rows: list[dict[str, Any]] = []
    for label, texts, calls in (("one sentence", [one], 5), ("32 mixed sentences", mixed, 1)):
        samples: dict[str, list[float]] = {k: [] for k in contenders}
        for fn in contenders.values():
            fn(texts[:1])
        for _ in range(rounds):
            for name, fn in contenders.items():
                samples[name] += timed(lambda fn=fn: fn(texts), calls if not args.quick else 2)
        base = summarize(samples["pytorch, all copies in one batch"])["median_ms"]
        for name, s in samples.items():
            st = summarize(s)
            rows.append({"workload": label, "contender": name, **st, "speedup_vs_pytorch": base / st["median_ms"],
                         "sentences_per_s": len(texts) / (st["median_ms"] / 1e3),
                         "pieces": sum(len(ours["fp32"].tokenizer.encode(t)) - 2 for t in texts)})
            print(f"{label:<20} {name:<34} {st['median_ms']:9.1f} ms  {base / st['median_ms']:.2f}x", flush=True)
    # how much of a call is the log-softmax on the host (the part an in-graph gather would save)
    logits = np.random.default_rng(0).standard_normal((30, int(ours["fp32"].vocab_size))).astype(np.float32)
    from albert_onnx.tasks.fill_mask import log_probs_of

    host = summarize(timed(lambda: log_probs_of(logits, np.arange(30)), 50))["median_ms"]
    report["host_log_softmax_ms_per_30_copies"] = host
    report["results"] = rows
    info = report["machine"]
    md.append(f"\nSpeed at the ALBERT-base shape (random weights), {info['cpu']} "
              f"({', '.join(info['isa'])}), {args.threads} threads, {info['date']}, "
              f"blocks over {rounds} round(s). The one sentence has {rows[0]['pieces']} pieces; the 32 "
              f"mixed sentences {rows[3]['pieces']} pieces in all.\n\n")
    md.append(md_table(["workload", "contender", "median ms", "p90 ms", "sentences/s", "vs PyTorch"],
                       [[r["workload"], r["contender"], round(r["median_ms"], 1), round(r["p90_ms"], 1),
                         round(r["sentences_per_s"], 2), f"{r['speedup_vs_pytorch']:.2f}x"] for r in rows]))
    md.append(f"\nLog-softmax of the fetched logits on the host: {host:.2f} ms for 30 copies "
              f"(vocabulary {ours['fp32'].vocab_size}).\n")
    j, m = write_report("scoring_quick" if args.quick else "scoring", report, "".join(md))
    print(f"wrote {j} and {m}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
