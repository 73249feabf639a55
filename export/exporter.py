"""Export an ALBERT checkpoint (any task) to a self-contained, validated artifact folder."""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from albert_onnx import __version__
from albert_onnx.artifact import FORMAT_NAME, FORMAT_VERSION, MANIFEST_NAME, SPIECE_NAME, load_artifact, sha256_file
from albert_onnx.engine.session import create_int8_session, create_session
from albert_onnx.tokenizer import Tokenizer

from . import graph as G
from .heads import make_head
from .quantize import (
    DEFAULT_INT8,
    INT8_WEIGHTS,
    float_input_projection,
    float_tensors,
    int8_embedding_lookup,
    quantize_int8,
    store_weight_form,
)
from .sample_texts import SAMPLE_TEXTS
from .source import DEFAULT_SOURCE, ExportError, load_source
from .validate import INT8_GATES, compare_precisions, compare_with_torch, validation_batches

FP32_FILE, INT8_FILE, FP16_FILE = "model.onnx", "model_int8.onnx", "model_fp16.onnx"
TOOLS = ("torch", "transformers", "onnx", "onnxruntime", "optimum", "optimum-onnx",
         "sentencepiece", "tokenizers", "numpy")


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version(), "albert-onnx": __version__}
    for name in TOOLS:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _session(path: Path) -> Any:
    """A CPU session on a graph just written, made the way the runtime makes its own."""
    return create_session(path, "cpu", None)


def export_model(source: str = DEFAULT_SOURCE, out: str | Path = "albert-onnx-artifact", *,
                 quantize: str | None = None, fp16: bool = False, opset: int = 17,
                 revision: str | None = None, atol: float = 1e-4, overwrite: bool = False,
                 task: str = "auto", int8_min_agreement: float | None = None,
                 int8_weights: str = "int8", web: bool = False, eval_data: str | Path | None = None,
                 max_drop: float = 0.5, log: Callable[[str], None] = print) -> Path:
    """Export ``source`` (hub id or local folder) to the artifact folder ``out``.

    Args:
        source: Hugging Face hub id or local folder of an ALBERT checkpoint with ``spiece.model``.
        out: artifact folder to create; it appears whole or not at all.
        task: ``auto`` (from the checkpoint's architecture), ``fill-mask``,
            ``text-classification``, ``token-classification``, ``question-answering``,
            ``multiple-choice`` or ``feature-extraction``
            (the encoder alone, from any ALBERT checkpoint).
        quantize: ``"int8"`` to add a dynamically quantized graph, or None.
        int8_min_agreement: the int8 gate's bar for this task (default per task: fill-mask
            top-1 0.90, classification top label 0.97, embeddings mean cosine 0.99); 0 turns
            the gate off. Below it the export fails and writes nothing.
        int8_weights: the form the int8 file stores its (asymmetric, per-channel) weights in:
            ``int8`` (default; what VNNI / AMX and non-x86 CPUs run as it is) or ``uint8``. The
            runtime converts at load to the exact and fastest form of the CPU it runs on, so
            either serves every CPU with the same answers.
        fp16: add a float16 graph (for the CUDA provider).
        eval_data: accuracy-aware int8: a validation file (as ``albert-onnx evaluate`` reads
            them) on which int8 may lose at most ``max_drop`` points of the task's metric
            against fp32; products are kept in float until it does (``export/accuracy.py``), or
            the export fails. The manifest records the data's checksum, both metrics, the drop
            and the products in float. It replaces the sample-text int8 gate.
        max_drop: with ``eval_data``: the points (the metric x 100) int8 may lose.
        web: also write ``web/``, the layout transformers.js, optimum and ONNX Runtime's other
            bindings load (standard graphs, ``tokenizer.json`` with the ``[MASK]`` fix; see
            ``export/web.py``), covered by the manifest's checksums.
        opset: ONNX opset of the exported graph.
        revision: hub revision (branch, tag or commit).
        atol: largest |Δ logits| against PyTorch accepted; beyond it the export fails.
        overwrite: replace an existing artifact folder at ``out``.

    Raises:
        ExportError: bad arguments, a source that cannot be loaded, or failed validation.
    """
    if quantize not in (None, "int8"):
        raise ExportError(f"unknown quantization {quantize!r}; valid: 'int8' or none")
    if int8_min_agreement is not None and not 0.0 <= int8_min_agreement <= 1.0:
        raise ExportError(f"int8_min_agreement {int8_min_agreement} is out of range; valid: 0..1 (0 = no gate)")
    if int8_weights not in INT8_WEIGHTS:
        raise ExportError(f"unknown int8 weight type {int8_weights!r}; valid: {list(INT8_WEIGHTS)}")
    if eval_data is not None and quantize != "int8":
        raise ExportError("--eval-data measures int8 against fp32: it needs --quantize int8")
    if isinstance(max_drop, bool) or not isinstance(max_drop, (int, float)) or not max_drop >= 0:
        raise ExportError(f"--max-drop takes the points int8 may lose (0 or more, e.g. 0.5), not {max_drop!r}")
    if not 11 <= opset <= 21:
        raise ExportError(f"opset {opset} is out of range; valid: 11..21 (default 17)")
    out = Path(out)
    if out.exists() and not overwrite:
        raise ExportError(f"{out} already exists; choose another folder or pass --force")
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=".albert-onnx-work-") as work_str:
        work = Path(work_str)
        src = load_source(source, work, revision, task)
        cfg = src.model.config
        tokenizer = Tokenizer.from_pretrained(src.tokenizer_dir)
        if len(tokenizer) > cfg.vocab_size:
            raise ExportError(f"tokenizer has {len(tokenizer)} ids but the model's vocabulary is "
                              f"{cfg.vocab_size}: they do not belong together")
        data = None
        if eval_data is not None:
            from .accuracy import read_data

            data = read_data(eval_data, src.task, cfg)
        log(f"loaded {source} as {src.task} ({type(src.model).__name__}, "
            f"{sum(p.numel() for p in src.model.parameters()) / 1e6:.1f} M parameters, "
            f"{cfg.num_hidden_layers} layers, hidden {cfg.hidden_size})")

        stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
        try:
            settings = {**DEFAULT_INT8, "weight_type": int8_weights}
            manifest = _build(src, tokenizer, work, stage, quantize=quantize, fp16=fp16,
                              opset=opset, atol=atol, int8_min=int8_min_agreement,
                              int8_settings=settings, gate=data is None, log=log)
            if data is not None:
                _accuracy_aware(data, max_drop, stage, work, manifest, settings, log)
                manifest["graphs"]["int8"].update(_int8_gate(  # recorded, not a gate: the accuracy decided
                    src.task, stage, _session(stage / FP32_FILE), tokenizer, int(cfg.max_position_embeddings),
                    int8_min_agreement, settings, log, enforce=False))
            if web:
                from .web import write_web

                manifest["web"] = write_web(src, tokenizer, work, stage, SAMPLE_TEXTS, quantize=quantize == "int8",
                                            atol=atol, int8_min=int8_min_agreement, log=log)
            manifest["export_seconds"] = round(time.perf_counter() - started, 1)
            _finish(stage, manifest)
            load_artifact(stage)  # the runtime's own check of what was written
            stage.chmod(0o755)  # mkdtemp makes it private; an artifact is meant to be shared
            _publish(stage, out, overwrite)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
    log(f"wrote {out}")
    return out


def _build(src: Any, tokenizer: Tokenizer, work: Path, stage: Path, *, quantize: str | None,
           fp16: bool, opset: int, atol: float, int8_min: float | None, int8_settings: dict[str, Any],
           gate: bool, log: Callable[[str], None]) -> dict[str, Any]:
    import onnx

    cfg = src.model.config
    task = src.task
    fused, info = G.build_graph(make_head(task, src.model), cfg, work, opset, log)
    onnx.save(fused, str(stage / FP32_FILE))
    max_len = int(cfg.max_position_embeddings)
    batches = validation_batches(task, tokenizer, SAMPLE_TEXTS, int(cfg.vocab_size), max_len)
    fp32_session = _session(stage / FP32_FILE)
    check = compare_with_torch(task, src.model, fp32_session, tokenizer, batches)
    check["atol"] = atol
    log(f"fp32 check against PyTorch: max|Δ| = {check['max_abs_diff']:.1e}, atol {atol:g} "
        f"({check['entries']} {'positions' if 'top1_agreement' in check else 'rows'}, lengths "
        f"{check['sequence_lengths'][0]}..{check['sequence_lengths'][-1]})")
    if not check["max_abs_diff"] <= atol:
        raise ExportError(f"fp32 graph differs from PyTorch by {check['max_abs_diff']:.2e} > atol "
                          f"{atol:g}; nothing was written")
    graphs: dict[str, Any] = {"fp32": {"file": FP32_FILE, "validation": check,
                                       "tensor_bytes": G.tensor_bytes(fused)}}
    if quantize == "int8":
        kept_float = float_input_projection(stage / FP32_FILE)
        graphs["int8"] = {"file": INT8_FILE, **write_int8(stage, work, int8_settings, kept_float)}
        if gate:  # else the accuracy on --eval-data decides, after its search (_accuracy_aware)
            graphs["int8"].update(_int8_gate(task, stage, fp32_session, tokenizer, max_len, int8_min,
                                             int8_settings, log))
    if fp16:
        graphs["fp16"] = _fp16(task, fused, stage, fp32_session, tokenizer, max_len, log)

    shutil.copyfile(src.tokenizer_dir / SPIECE_NAME, stage / SPIECE_NAME)
    labels = None
    if task in ("text-classification", "token-classification"):
        labels = [str(cfg.id2label[i]) for i in range(int(cfg.num_labels))]
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "task": {"name": task, "num_labels": None if labels is None else len(labels), "id2label": labels,
                 "problem_type": cfg.problem_type if labels is not None else None},
        "source": {"model": src.name, "revision": src.revision, "commit": src.commit,
                   "architecture": src.architecture, "exported_as": type(src.model).__name__},
        "model": {"vocab_size": int(cfg.vocab_size), "max_position_embeddings": max_len,
                  "hidden_size": int(cfg.hidden_size), "embedding_size": int(cfg.embedding_size),
                  "num_hidden_layers": int(cfg.num_hidden_layers),
                  "num_attention_heads": int(cfg.num_attention_heads),
                  "intermediate_size": int(cfg.intermediate_size),
                  "hidden_act": str(cfg.hidden_act)},
        "tokenizer": {**tokenizer.config.to_dict(), "mask_fix_default": True,
                      "special_token_ids": {
                          key: tokenizer.convert_tokens_to_ids(content)
                          for key, content in tokenizer.config.special_tokens.items()},
                      "tokenizer_size": len(tokenizer)},
        "graphs": graphs,
        "graph_info": info,
        "tools": _versions(),
    }


def _accuracy_aware(data: Any, max_drop: float, stage: Path, work: Path, manifest: dict[str, Any],
                    settings: dict[str, Any], log: Callable[[str], None]) -> None:
    """Keep products in float until int8 holds ``max_drop`` on ``data`` (export/accuracy.py)."""
    from albert_onnx.tasks import pipeline

    from .accuracy import PRODUCT_OPS, accuracy_aware_int8, products

    entry = manifest["graphs"]["int8"]
    base = list(entry["settings"]["float_nodes"])

    def rebuild(kept_float: list[str]) -> None:
        entry.update(write_int8(stage, work, settings, kept_float))
        _finish(stage, manifest)

    _finish(stage, manifest)  # the staged folder opens as an artifact from here on
    candidates = products(stage / FP32_FILE, [op for op in settings["op_types"] if op in PRODUCT_OPS], base)
    record = accuracy_aware_int8(data, max_drop, base, candidates, rebuild,
                                 lambda precision: pipeline(stage, precision=precision, verify=False), log)
    entry["accuracy"] = record
    if record["float_products"]:
        log(f"int8 holds a drop of {record['drop']:.2f} <= {max_drop:g} with in float: "
            + ", ".join(record["float_products"]))


def write_int8(stage: Path, work: Path, int8_settings: dict[str, Any], kept_float: list[str]) -> dict[str, Any]:
    """Quantize the fp32 graph into ``stage/model_int8.onnx`` with the nodes ``kept_float`` in
    float; the manifest's description of it."""
    import onnx

    quantize_int8(stage / FP32_FILE, work / "q.onnx", **int8_settings, exclude=kept_float)
    qmodel = onnx.load(str(work / "q.onnx"))
    lookup = int8_embedding_lookup(qmodel)
    dedupe = G.dedupe_initializers(qmodel)
    onnx.save(qmodel, str(stage / INT8_FILE))
    store_weight_form(stage / INT8_FILE, int8_settings["weight_type"])
    return {"settings": {**int8_settings, "float_nodes": list(kept_float)}, "activation_scales": "dynamic-per-tensor",
            "embedding_lookup": lookup, "dedupe": dedupe, "float_tensors": float_tensors(qmodel)}


def _int8_gate(task: str, stage: Path, fp32_session: Any, tokenizer: Tokenizer, max_len: int,
               int8_min: float | None, int8_settings: dict[str, Any], log: Callable[[str], None],
               enforce: bool = True) -> dict[str, Any]:
    """The int8 graph against fp32 on the sample texts, and the gate on it (not ``enforce``d
    when the accuracy on the user's data decides instead)."""
    int8_session, choice = create_int8_session(stage / INT8_FILE, "cpu", None,  # as the runtime loads it
                                               stored=int8_settings["weight_type"])
    quality = compare_precisions(task, fp32_session, int8_session, tokenizer, SAMPLE_TEXTS, max_len)
    figure, default_bar = INT8_GATES[task]
    bar = default_bar if int8_min is None else int8_min
    quality["gate"] = {"figure": figure, "min": bar, "value": quality[figure]}
    log(f"int8 ({int8_settings['weight_type']} weights stored; measured as {choice.kernel}) against fp32: "
        f"{_quality_line(quality)}; "
        + (f"gate {figure} >= {bar:g}" + (" (off)" if bar == 0 else "") if enforce
           else "the accuracy on --eval-data decides"))
    if not enforce:
        quality["gate"] = "replaced by the accuracy on --eval-data"
    elif quality[figure] < bar:
        raise ExportError(f"int8 {figure} {quality[figure]:.3f} is below the gate {bar:g} "
                          "(--int8-min-agreement sets it, 0 turns it off); nothing was written")
    quality["int8_kernel"] = choice.kernel
    return {"validation": quality}


def _quality_line(q: dict[str, Any]) -> str:
    keys = [k for k in ("top1_agreement", "top5_overlap", "top_label_agreement", "cls_cosine",
                        "mean_pool_cosine", "best_span_agreement", "best_choice_agreement") if k in q]
    return ", ".join(f"{k.replace('_', ' ')} {q[k]:.3f}" for k in keys)


def _fp16(task: str, fused: Any, stage: Path, fp32_session: Any, tokenizer: Tokenizer, max_len: int,
          log: Callable[[str], None]) -> dict[str, Any]:
    import onnx
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = OnnxModel(onnx.ModelProto.FromString(fused.SerializeToString()))
    model.convert_float_to_float16(keep_io_types=True, op_block_list=["Softmax", "TopK"])
    onnx.save(model.model, str(stage / FP16_FILE))
    entry: dict[str, Any] = {"file": FP16_FILE, "tensor_bytes": G.tensor_bytes(model.model)}
    try:
        quality = compare_precisions(task, fp32_session, _session(stage / FP16_FILE), tokenizer,
                                     SAMPLE_TEXTS, max_len)
        entry["validation_cpu"] = quality
        log(f"fp16 (CPU run) against fp32: {_quality_line(quality)}")
    except Exception as exc:  # some fp16 kernels exist only on CUDA
        entry["validation_cpu"] = f"not runnable on the CPU provider: {str(exc).splitlines()[0][:200]}"
        log(f"fp16 graph written; ONNX Runtime cannot run it on the CPU ({entry['validation_cpu']})")
    return entry


def _finish(stage: Path, manifest: dict[str, Any]) -> None:
    files = {}
    for path in sorted(p for p in stage.rglob("*") if p.is_file() and p.name != MANIFEST_NAME):  # web/ too
        files[path.relative_to(stage).as_posix()] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    manifest["files"] = files
    manifest["sizes_mb"] = {name: round(f["bytes"] / 1e6, 2) for name, f in files.items()}
    tmp = stage / (MANIFEST_NAME + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, stage / MANIFEST_NAME)


def _publish(stage: Path, out: Path, overwrite: bool) -> None:
    """Rename the finished folder into place; an old artifact is replaced only at the end."""
    if out.exists():
        if not overwrite:
            raise ExportError(f"{out} appeared during the export; not replacing it")
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
        os.replace(stage, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(stage, out)
