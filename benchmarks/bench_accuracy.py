"""Accuracy on JGLUE, fp32 against int8, and what accuracy-aware int8 keeps in float.

For JCommonsenseQA (multiple choice, accuracy) and JSTS (regression, Pearson / Spearman): the
shared mini ALBERT fine-tuned by finetune_jglue.py (cached), exported with plain int8 and with
accuracy-aware int8 (`--eval-data` its held-out development set, `--max-drop 0.5` and 0); all
evaluated on JGLUE's test set with `albert_onnx.evaluate`. Then the cost of the products kept in
float at the ALBERT-base shape (random weights, the same products by name): latency at 16 and
128 tokens of the int8 graph without and with them in float, beside fp32.

  python benchmarks/bench_accuracy.py          # ~30 minutes the first time (two fine-tunes)

Needs ../shared (the mini model and JGLUE) and the export extra. Results:
benchmarks/results/CLASS/accuracy.{json,md}.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, base_shape_model, cached_artifact, machine, md_table, prefix_of_length, timed, write_report  # noqa: E402
from finetune_jglue import JGLUE, TASKS, cached_finetune  # noqa: E402

MAX_DROPS = (0.5, 0.0)  # the issue's limit, and the strictest: what holding fp32's own score costs
TEST = {"jcqa": "jcommonsenseqa-v1.3/test-v1.3.json", "jsts": "jsts-v1.3/test-v1.3.json"}
LENGTHS = (16, 128)
CALLS = 60
ROUNDS = 6
THREADS = 2


def accuracy(task: str) -> dict[str, Any]:
    from albert_onnx import evaluate

    model = cached_finetune(task)
    plain = cached_artifact(model, CACHE / f"acc-{task}-int8", quantize="int8", int8_min_agreement=0.0)
    test = JGLUE / TEST[task]
    out: dict[str, Any] = {"task": task, "training": json.loads((model / "training.json").read_text(encoding="utf-8")),
                           "test_plain": evaluate(plain, test, threads=THREADS), "aware": {}}
    for max_drop in MAX_DROPS:
        aware = cached_artifact(model, CACHE / f"acc-{task}-aware-{max_drop:g}", quantize="int8",
                                eval_data=str(model / "dev.json"), max_drop=max_drop)
        record = json.loads((aware / "manifest.json").read_text(encoding="utf-8"))["graphs"]["int8"]["accuracy"]
        out["aware"][f"{max_drop:g}"] = {"dev": record, "test": evaluate(aware, test, threads=THREADS)}
    return out


def base_cost(float_nodes_by_run: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Latency at the base shape: int8, int8 with each task's float products, fp32."""
    from albert_onnx import pipeline
    from albert_onnx.export.accuracy import product_name
    from albert_onnx.export.exporter import DEFAULT_INT8, _finish, write_int8

    folder = base_shape_model(CACHE)
    art = cached_artifact(folder, CACHE / "acc-base-fe", quantize="int8", task="feature-extraction",
                          int8_min_agreement=0.0)
    manifest = json.loads((art / "manifest.json").read_text(encoding="utf-8"))
    base_float = manifest["graphs"]["int8"]["settings"]["float_nodes"]
    import onnx

    nodes = [n.name for n in onnx.load(str(art / "model.onnx"), load_external_data=False).graph.node]
    variants: dict[str, Path] = {"int8": art}
    done: set[tuple[str, ...]] = set()
    for run, kept in float_nodes_by_run.items():
        if not kept or tuple(sorted(kept)) in done:
            continue
        done.add(tuple(sorted(kept)))
        wanted = {product_name(n) for n in kept}
        mapped = [n for n in nodes if product_name(n) in wanted]
        copy = CACHE / f"acc-base-fe-{len(done)}"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(art, copy)
        with tempfile.TemporaryDirectory() as work:
            entry = write_int8(copy, Path(work), {**DEFAULT_INT8, "weight_type": "int8"}, base_float + mapped)
        m = json.loads((copy / "manifest.json").read_text(encoding="utf-8"))
        m["graphs"]["int8"].update(entry)
        _finish(copy, m)
        variants[f"int8, in float: {', '.join(sorted(wanted))} ({run})"] = copy
    pool = (Path(__file__).resolve().parents[1] / "tests" / "data" / "corpus_ja.txt").read_text(encoding="utf-8")
    pool = pool.replace("\n", "")
    graphs = [("fp32", art), *variants.items()]
    runners = {name: pipeline(path, precision="fp32" if name == "fp32" else "int8", threads=THREADS)
               for name, path in graphs}
    texts = {n: prefix_of_length(runners["fp32"].tokenizer, pool, n) for n in LENGTHS}
    samples: dict[tuple[str, int], list[float]] = {(name, n): [] for name, _ in graphs for n in LENGTHS}
    for name, runner in runners.items():  # warm-up
        for n in LENGTHS:
            timed(runner, 5, texts[n])
    # the graphs take turns, a few calls each, so that the machine's slow spells fall on all alike
    for _ in range(ROUNDS):
        for name, runner in runners.items():
            for n in LENGTHS:
                samples[(name, n)] += timed(runner, CALLS // ROUNDS, texts[n])
    rows = []
    for name, _ in graphs:
        row: dict[str, Any] = {"graph": name}
        for n in LENGTHS:
            ordered = sorted(samples[(name, n)])
            row[f"{n} tokens median ms"] = round(1e3 * statistics.median(ordered), 2)
            row[f"{n} tokens p90 ms"] = round(1e3 * ordered[int(0.9 * (len(ordered) - 1))], 2)
        rows.append(row)
    return rows


def _table(rows: list[dict[str, Any]]) -> str:
    header = list(rows[0]) if rows else []
    return md_table(header, [[f"{r[h]:.2f}" if isinstance(r[h], float) else r[h] for h in header] for r in rows])


def main() -> None:
    if not JGLUE.is_dir():
        sys.exit(f"needs {JGLUE} (../shared)")
    results = {task: accuracy(task) for task in TASKS}
    kept = {f"{task}, --max-drop {d}": a["dev"]["float_nodes"] for task, r in results.items()
            for d, a in r["aware"].items()}
    cost = base_cost(kept)
    info = machine(THREADS)
    data = {"machine": info, "max_drops": MAX_DROPS, "tasks": results, "base_shape_cost": cost}
    lines = [f"# Accuracy on JGLUE: fp32, int8 and accuracy-aware int8 ({info['date']})", "",
             f"{info['cpu']}, CPU class **{info['cpu_class']}**, {THREADS} threads. The shared "
             "mini ALBERT (4 layers, hidden 256) fine-tuned on each training set less its last 1,000 examples "
             "(the development set given to `--eval-data`); JGLUE v1.3's test sets (CC BY-SA 4.0). Points: "
             "the metric x 100.", ""]
    table = []
    for task, r in results.items():
        graphs = [("plain int8", r["test_plain"])]
        graphs += [(f"accuracy-aware int8, --max-drop {d}", a["test"]) for d, a in r["aware"].items()]
        for label, report in graphs:
            for m in report["metrics"]:
                table.append({"task": task, "int8 graph": label, "metric": m,
                              "fp32": round(report["results"]["fp32"][m], 2),
                              "int8": round(report["results"]["int8"][m], 2),
                              "drop": round(report["drop"]["int8"][m], 2),
                              "answered differently": f"{report['disagreements']['count']} / "
                                                      f"{report['disagreements']['of']}",
                              "int8 ms / example": report["results"]["int8"]["ms_per_example"]})
    lines += ["## On the test sets", "", _table(table), "", "## What accuracy-aware int8 did (development set)", ""]
    for task, r in results.items():
        for d, a in r["aware"].items():
            dev = a["dev"]
            lines.append(f"- **{task}, --max-drop {d}**: {dev['data']['examples']} development examples, "
                         f"{dev['metric']} fp32 {dev['fp32']:.2f}, plain int8 drop {dev['steps'][0]['drop']:.2f}; "
                         f"kept in float: {', '.join(dev['float_products']) or 'nothing (already within the limit)'}"
                         f", drop then {dev['drop']:.2f} ({dev['seconds']} s of search)")
    lines += ["", "## The float products' cost at the ALBERT-base shape", "",
              "Feature extraction (the encoder), one text a call, median and p90 of "
              f"{CALLS} calls after 5 warm-ups, the graphs taking turns in {ROUNDS} rounds; the same products "
              "(by layer and role) kept in float, each with its own float copy of the shared weight.", "",
              _table(cost)]
    write_report("accuracy", data, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
