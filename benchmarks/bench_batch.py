"""Bulk-job throughput: rows/s of each engine of ``albert-onnx batch`` on 10,000 texts, against
a plain loop over ``FillMask`` and the model card's PyTorch recipe, on this machine.

Model: the small trained model in ../shared/models (fill-mask, int8), else the ALBERT-base
shape with random weights. Every job writes real Parquet output; times include starting the
engine (worker processes, a local Ray, a local Spark).

  python benchmarks/bench_batch.py [--rows 10000]

Results: benchmarks/results/CLASS/batch.{json,md}.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, SHARED_MODEL, base_shape_model, cached_artifact, machine, masked_texts, md_table, write_report  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10000)
    ap.add_argument("--pytorch-rows", type=int, default=2000, help="rows for the PyTorch recipe (rate extrapolated)")
    ap.add_argument("--precision", default="int8")
    ap.add_argument("--cache", type=Path, default=CACHE)
    args = ap.parse_args(argv)
    import torch
    import transformers

    from albert_onnx import FillMask
    from albert_onnx.batch import run_local
    from albert_onnx.batch.engines import run_ray, run_spark

    warnings.simplefilter("ignore")
    transformers.logging.set_verbosity_error()
    source = SHARED_MODEL if SHARED_MODEL.is_dir() else base_shape_model(args.cache)
    art = cached_artifact(source, args.cache / f"artifact-batch-{source.name}", quantize="int8",
                          int8_min_agreement=0.0)
    texts = masked_texts(args.rows)
    work = Path(tempfile.mkdtemp(prefix="albert-onnx-batch-"))
    src = work / "input.txt"
    src.write_text("\n".join(texts) + "\n", encoding="utf-8")
    cores = 2
    results: list[dict[str, Any]] = []

    def record(name: str, rows: int, seconds: float, note: str = "") -> None:
        results.append({"contender": name, "rows": rows, "seconds": round(seconds, 2),
                        "rows_per_s": round(rows / seconds, 1), "note": note})
        print(f"{name:<44} {rows:>6} rows {seconds:8.1f} s {rows / seconds:8.1f} rows/s", flush=True)

    fm = FillMask(art, precision=args.precision, threads=cores)
    t = time.perf_counter()
    for text in texts:
        fm.fill([text])
    record(f"plain loop over FillMask ({args.precision}, {cores} threads)", len(texts), time.perf_counter() - t)

    tok = transformers.AlbertTokenizerFast.from_pretrained(str(source))
    model = transformers.AlbertForMaskedLM.from_pretrained(str(source)).eval()
    torch.set_num_threads(cores)
    t = time.perf_counter()
    for text in texts[: args.pytorch_rows]:
        ids = tok(text)["input_ids"]  # the recipe: drop the lone ▁ the fast tokenizer puts after [MASK]
        i = ids.index(tok.mask_token_id)
        if tok.convert_ids_to_tokens(ids[i + 1]) == "\u2581":
            del ids[i + 1]
        with torch.inference_mode():
            model(torch.tensor([ids])).logits[0, ids.index(tok.mask_token_id)].topk(5)
    record("PyTorch recipe loop (fp32, 2 threads)", args.pytorch_rows, time.perf_counter() - t,
           f"first {args.pytorch_rows} rows")

    for name, run in (
        ("albert-onnx batch --engine local (2 workers x 1 thread)",
         lambda out: run_local(art, src, out, workers=2, threads=1, precision=args.precision, progress=False)),
        ("albert-onnx batch --engine ray (2 actors x 1 thread)",
         lambda out: run_ray(art, src, out, workers=2, threads=1, precision=args.precision)),
        ("albert-onnx batch --engine spark (local[2], 1 thread)",
         lambda out: run_spark(art, src, out, workers=2, threads=1, precision=args.precision)),
    ):
        out = work / name.split()[3]
        t = time.perf_counter()
        run(out)
        record(name, len(texts), time.perf_counter() - t, "engine start-up included")
    shutil.rmtree(work, ignore_errors=True)
    info = machine(cores)
    md = (f"# Bulk jobs: rows/s on this machine\n\n{info['cpu']} ({', '.join(info['isa'])}), {cores} cores, "
          f"{info['date']}; model `{source.name}` fill-mask, {args.precision}, one mask per text "
          f"(texts of up to 106 characters). Each engine writes Parquet; its time includes starting it.\n\n"
          + md_table(["contender", "rows", "seconds", "rows/s", "note"],
                     [[r["contender"], r["rows"], r["seconds"], r["rows_per_s"], r["note"]] for r in results]))
    j, m = write_report("batch", {"machine": info, "model": source.name, "results": results}, md)
    print(f"wrote {j} and {m}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
