"""Accuracy-aware int8 (``export --quantize int8 --eval-data FILE --max-drop D``).

The task's metric (``albert_onnx.evaluate``'s) is measured on the data for fp32 and for int8.
When int8 loses more than ``max_drop`` points, every quantized product (an attention block's
QKV, its output projection, an FFN's two products, ...) is ranked by how much keeping it alone
in float recovers, as NNCF's quantization with accuracy control ranks its groups: on a ranking
subset (the examples int8 answers differently, then those whose outputs moved most), by the
metric there and, to break ties, by how close the outputs come back to fp32's. Products are then
kept in float one by one in that order, measuring the whole data after each, until the drop is
within the limit; or the export fails, naming the best drop it reached.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from albert_onnx.evaluation.data import EvalData, read_eval_data
from albert_onnx.evaluation.predict import Prediction, gold_answer, kind_for
from albert_onnx.evaluation.run import PRIMARY, run_precision, score

from .source import ExportError

RANK_SUBSET = 300  # examples the ranking runs on (NNCF's default subset for ranking)
PRODUCT_OPS = ("Attention", "MatMul", "Gather")


def read_data(path: str | Path, task: str, config: Any) -> EvalData:
    """The evaluation data, read and checked before anything is exported."""
    from albert_onnx.errors import InputError

    try:
        kind = kind_for(task, getattr(config, "problem_type", None), int(getattr(config, "num_labels", 0)) or None)
        return read_eval_data(path, kind)
    except InputError as exc:
        raise ExportError(f"--eval-data: {exc}") from None


def products(graph_path: Path, op_types: list[str], already: list[str]) -> list[str]:
    """The nodes quantization turns into int8 products (a weight initializer as an input), in
    graph order, but those ``already`` kept in float."""
    import onnx

    g = onnx.load(str(graph_path), load_external_data=False).graph
    inits = {i.name for i in g.initializer}
    out = []
    for n in g.node:
        if n.op_type not in op_types or not n.name or n.name in already:
            continue
        weight = n.input[1] if n.op_type in ("MatMul", "Attention") else n.input[0]
        if weight in inits:
            out.append(n.name)
    return out


_LAYER = re.compile(r"/(attention/dense|ffn_output|ffn)(?:_(\d+))?/MatMul$")


def product_name(node: str) -> str:
    """What a node computes, in words: ``layer 3 FFN out``, ``layer 0 attention QKV``."""
    if m := re.fullmatch(r"Attention_(\d+)", node):
        return f"layer {m.group(1)} attention QKV"
    if m := _LAYER.search(node):
        role = {"attention/dense": "attention output", "ffn": "FFN in", "ffn_output": "FFN out"}[m.group(1)]
        return f"layer {m.group(2) or 0} {role}"
    if "embedding_hidden_mapping_in" in node:
        return "embedding projection"
    if "predictions/dense" in node:
        return "MLM transform"
    if "predictions/decoder" in node or node.endswith("/Gather") and "predictions" in node:
        return "MLM decoder"
    if "pooler" in node:
        return "pooler"
    if "classifier" in node or "qa_outputs" in node:
        return "task head"
    return node


class Control:
    """One accuracy-aware int8 search over an export's staged folder.

    ``rebuild(kept_float)`` writes the int8 graph with those nodes in float and the staged
    manifest; ``open(precision)`` returns a predictor on the staged folder.
    """

    def __init__(self, data: EvalData, rebuild: Callable[[list[str]], None], open_predictor: Callable[[str], Any],
                 log: Callable[[str], None]) -> None:
        self.data, self.rebuild, self.open, self.log = data, rebuild, open_predictor, log
        self.metric = PRIMARY[data.kind]
        fp32 = self.open("fp32")
        self.golds = [gold_answer(fp32, data.kind, ex) for ex in data.examples]
        self.fp32, self.fp32_seconds = run_precision(fp32, data)
        self.fp32_scores = score(data.kind, [p.answer for p in self.fp32], self.golds)

    def measure(self, kept_float: list[str], subset: list[int] | None = None) -> tuple[dict[str, float],
                                                                                          list[Prediction]]:
        """The int8 graph with ``kept_float`` in float: its metrics on the data (or the subset)."""
        self.rebuild(kept_float)
        data = self.data if subset is None else replace(self.data, examples=[self.data.examples[i] for i in subset])
        preds, _ = run_precision(self.open("int8"), data)
        golds = self.golds if subset is None else [self.golds[i] for i in subset]
        return score(self.data.kind, [p.answer for p in preds], golds), preds

    def drop(self, scores: dict[str, float]) -> float:
        return self.fp32_scores[self.metric] - scores[self.metric]

    def ranking_subset(self, int8: list[Prediction], size: int = RANK_SUBSET) -> list[int]:
        """The examples int8 answers differently, then those whose outputs moved most."""
        moved = [_distance(a, b) for a, b in zip(self.fp32, int8)]
        differ = [i for i, (a, b) in enumerate(zip(self.fp32, int8)) if a.answer != b.answer]
        seen = set(differ)
        rest = [i for i in np.argsort(moved)[::-1].tolist() if i not in seen]
        return sorted((differ + rest)[:size])

    def rank(self, candidates: list[str], base: list[str], subset: list[int]) -> list[dict[str, Any]]:
        """Each candidate kept alone in float (with ``base``): the metric on the subset and the
        outputs' distance to fp32 there; best first."""
        reference = [self.fp32[i] for i in subset]
        out = []
        for n, node in enumerate(candidates, 1):
            scores, preds = self.measure(base + [node], subset)
            distance = float(np.mean([_distance(a, b) for a, b in zip(reference, preds)]))
            out.append({"node": node, "product": product_name(node), "subset_metric": round(scores[self.metric], 4),
                        "distance": distance})
            self.log(f"  ranking {n}/{len(candidates)}: {product_name(node)} in float -> {self.metric} "
                     f"{scores[self.metric]:.2f} on the ranking subset, output distance {distance:.4g}")
        return sorted(out, key=lambda r: (-r["subset_metric"], r["distance"]))


def _distance(a: Prediction, b: Prediction) -> float:
    return float(np.abs(a.raw - b.raw).mean()) if a.raw.shape == b.raw.shape else float("inf")


def accuracy_aware_int8(data: EvalData, max_drop: float, base: list[str], candidates: list[str],
                        rebuild: Callable[[list[str]], None], open_predictor: Callable[[str], Any],
                        log: Callable[[str], None]) -> dict[str, Any]:
    """Keep products in float until int8 loses at most ``max_drop`` points (the int8 graph is
    left rebuilt with ``base`` and them in float); the manifest's record of it. Raises
    ExportError when even every product in float does not reach the limit."""
    started = time.perf_counter()
    control = Control(data, rebuild, open_predictor, log)
    metric = control.metric
    int8_scores, int8 = control.measure(base)
    drop = control.drop(int8_scores)
    log(f"accuracy on {data.path.name} ({data.format}, {len(data.examples)} examples): fp32 {metric} "
        f"{control.fp32_scores[metric]:.2f}, int8 {int8_scores[metric]:.2f}, drop {drop:.2f} (--max-drop {max_drop:g})")
    steps = [{"float_products": [], "int8": int8_scores[metric], "drop": drop}]
    kept: list[str] = []
    ranking: list[dict[str, Any]] = []
    best = (drop, list(kept), int8_scores)
    if drop > max_drop:
        subset = control.ranking_subset(int8)
        log(f"int8 loses {drop:.2f} points > {max_drop:g}: ranking {len(candidates)} products on {len(subset)} "
            "examples")
        ranking = control.rank(candidates, base, subset)
        for entry in ranking:
            kept.append(entry["node"])
            int8_scores, _ = control.measure(base + kept)
            drop = control.drop(int8_scores)
            steps.append({"float_products": [product_name(n) for n in kept], "int8": int8_scores[metric],
                          "drop": drop})
            log(f"  {entry['product']} in float ({len(kept)} kept): int8 {metric} {int8_scores[metric]:.2f}, "
                f"drop {drop:.2f}")
            if drop < best[0]:
                best = (drop, list(kept), int8_scores)
            if drop <= max_drop:
                break
        else:
            names = ", ".join(product_name(n) for n in best[1]) or "none"
            raise ExportError(f"int8 cannot hold a drop of {max_drop:g} points of {metric} on {data.path.name}: the "
                              f"best reached was {best[0]:.2f} (fp32 {control.fp32_scores[metric]:.2f}, int8 "
                              f"{best[2][metric]:.2f}) with in float: {names}; nothing was written (raise "
                              "--max-drop, or export without --quantize int8)")
    control.rebuild(base + kept)
    return {"data": data.describe(), "metric": metric, "metrics": {"fp32": control.fp32_scores, "int8": int8_scores},
            "fp32": control.fp32_scores[metric], "int8": int8_scores[metric], "drop": drop, "max_drop": max_drop,
            "float_products": [product_name(n) for n in kept], "float_nodes": kept,
            "ranking": [{k: r[k] for k in ("product", "node", "subset_metric", "distance")} for r in ranking],
            "steps": steps, "seconds": round(time.perf_counter() - started, 1)}
