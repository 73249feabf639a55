"""Tokenizer speed: albert-onnx's pure-Python tokenizer against AlbertTokenizerFast and
sentencepiece, on the project's corpus (and the novel in ../shared/corpus when present).

Reports tokens per second over whole corpora, one text per call, and the latency of a
20-character sentence (median and p90 of many calls). Writes
benchmarks/results/CLASS/tokenizer.{json,md}.

Run: python benchmarks/bench_tokenizer.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, SHARED, SHARED_MODEL, machine, md_table, summarize, write_report  # noqa: E402

SENTENCE = "吾輩は猫である。名前はまだ無い。どこで生"  # 20 characters


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=SHARED_MODEL,
                    help="HF folder with spiece.model (default: the shared pretrained model)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    if not (args.model / "spiece.model").exists():
        print(f"{args.model} has no spiece.model; pass --model", file=sys.stderr)
        return 1
    import sentencepiece as spm
    from transformers import AlbertTokenizerFast

    from albert_onnx import Tokenizer

    assert len(SENTENCE) == 20
    ours = Tokenizer.from_pretrained(args.model)
    fast = AlbertTokenizerFast.from_pretrained(str(args.model))
    sp = spm.SentencePieceProcessor(model_file=str(args.model / "spiece.model"))
    tools = {"albert-onnx Tokenizer (pure Python)": lambda t: ours.encode(t),
             "AlbertTokenizerFast (Rust)": lambda t: fast(t)["input_ids"],
             "sentencepiece (C++)": lambda t: sp.encode(t)}
    corpora = {"project corpus": ROOT / "tests" / "data" / "corpus_ja.txt",
               "wagahaiwa_nekodearu.txt": SHARED / "corpus" / "wagahaiwa_nekodearu.txt"}
    data: dict = {"machine": machine(1), "sentence": SENTENCE, "corpora": {}, "sentence_latency": {}}
    for cname, path in corpora.items():
        if not path.exists():
            continue
        lines = [x for x in path.read_text(encoding="utf-8").split("\n") if x]
        n_tokens = sum(len(ours.encode(x)) for x in lines)
        data["corpora"][cname] = {"lines": len(lines), "chars": sum(map(len, lines)), "tokens": n_tokens}
        for tname, fn in tools.items():
            best = float("inf")
            for _ in range(args.repeat):
                t = time.perf_counter()
                for x in lines:
                    fn(x)
                best = min(best, time.perf_counter() - t)
            data["corpora"][cname][tname] = {"seconds": best, "tokens_per_s": n_tokens / best}
    for tname, fn in tools.items():
        for _ in range(200):
            fn(SENTENCE)
        samples = []
        for _ in range(5000):
            t = time.perf_counter()
            fn(SENTENCE)
            samples.append(time.perf_counter() - t)
        st = summarize(samples)
        data["sentence_latency"][tname] = {"median_us": st["median_ms"] * 1e3, "p90_us": st["p90_ms"] * 1e3}
    md = [f"# Tokenizer speed, {data['machine']['date']}", "",
          f"CPU {data['machine']['cpu']}, one thread, Python {data['machine']['python']}; "
          f"tokenizer of `{args.model.name}`. Whole corpora one text per call (best of {args.repeat}), "
          f"and the 20-character sentence `{SENTENCE}` (5,000 calls).", ""]
    rows = []
    for tname in tools:
        row = [tname]
        for cname in data["corpora"]:
            row.append(f"{data['corpora'][cname][tname]['tokens_per_s'] / 1e3:.0f}k")
        lat = data["sentence_latency"][tname]
        row.append(f"{lat['median_us']:.1f} / {lat['p90_us']:.1f}")
        rows.append(row)
    md.append(md_table(["tokenizer", *[f"tokens/s, {c}" for c in data["corpora"]],
                        "20-char sentence µs (median / p90)"], rows))
    j, m = write_report("tokenizer", data, "\n".join(md))
    print("\n".join(md))
    print(f"wrote {j} and {m}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
