"""The web layout of an artifact (``albert-onnx export --web``): what transformers.js, optimum
and every ONNX Runtime binding read, in the artifact's ``web/`` folder:

    web/config.json  web/tokenizer.json  web/tokenizer_config.json  web/special_tokens_map.json
    web/onnx/model.onnx            (fp32: the task's standard inputs and outputs)
    web/onnx/model_quantized.onnx  (int8, dynamic, the runtime's recipe: what transformers.js loads with dtype "q8")

``tokenizer.json`` carries the ``[MASK]`` fix (the Metaspace pre-tokenizer prepends ``▁`` only to
the start of a text, never after an added token such as ``[MASK]``), and is checked against the
runtime's tokenizer (ids and offsets, texts and pairs, every mask case) before it is written; a
tokenizer setting it cannot express fails the export instead of writing a wrong file. The graphs
come from optimum's exporter (standard operators only, which ONNX Runtime Web's WASM backend
runs), validated against PyTorch as the runtime's graphs are; the int8 one is gated on agreement
with fp32. No fp16 graph: the WASM backend has no float16 kernels.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from albert_onnx.engine.session import create_session
from albert_onnx.tokenizer import Tokenizer

from .heads import reference_outputs
from .quantize import quantize_int8
from .source import ExportError

WEB_FOLDER = "web"
OUTPUT = {"fill-mask": ["logits"], "text-classification": ["logits"], "token-classification": ["logits"],
          "question-answering": ["start_logits", "end_logits"], "multiple-choice": ["logits"],
          "feature-extraction": ["last_hidden_state"]}
INT8_GATE = {"feature-extraction": 0.99}  # mean cosine; the other tasks: top-1 agreement
DEFAULT_INT8_GATE = 0.9


def tokenizer_json(tokenizer_dir: Path, out: Path) -> None:
    """``tokenizer.json`` and its config files of the reference fast tokenizer, with the mask fix."""
    import transformers

    fast = transformers.AlbertTokenizerFast.from_pretrained(str(tokenizer_dir))
    fast.save_pretrained(str(out))
    for name in ("spiece.model",):  # the slow tokenizer's file: transformers.js reads tokenizer.json
        (out / name).unlink(missing_ok=True)
    path = out / "tokenizer.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    found = _first_only(data.get("pre_tokenizer"))
    if not found:
        raise ExportError("the tokenizer's tokenizer.json has no Metaspace pre-tokenizer to carry the [MASK] fix; "
                          "its settings cannot be written for the web")
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _first_only(node: Any) -> int:
    """Set every Metaspace pre-tokenizer to prepend ``▁`` at the start of a text only."""
    count = 0
    if isinstance(node, dict):
        if node.get("type") == "Metaspace":
            node["prepend_scheme"] = "first"
            count += 1
        for value in node.values():
            count += _first_only(value)
    elif isinstance(node, list):
        for value in node:
            count += _first_only(value)
    return count


def probe_texts(texts: list[str], seed: int = 0) -> list[str]:
    """Texts and every mask case: one mask anywhere, first, last, two, spaces around it."""
    rng = random.Random(seed)
    out = []
    for text in texts:
        k = rng.randrange(len(text) + 1)
        out += [text, text[:k] + "[MASK]" + text[k:], "[MASK]" + text, text + "[MASK]",
                text[:k] + " [MASK] " + text[k:], text[:k] + "[MASK][MASK]" + text[k:], f"{text} [MASK]。"]
    return out


# tokenizers' "first" prepends '▁' to a piece whose first normalized character comes from the
# text's first character. When the normalizer replaces the text's first character together with
# the next (`` and '' become '"') or changes it (NFKC: a lone sound mark, a control character
# dropped), that alignment moves and the leading '▁' is lost: a known difference, logged and
# documented, and the only one the checks accept.
QUOTE_STARTS = ("``", "''")


def shifted_start(reference: Any, text: str) -> bool:
    """Whether ``text`` begins where tokenizers' "first" loses the leading '▁' (see above)."""
    return text.startswith(QUOTE_STARTS) or (bool(text) and reference.normalizer.normalize_str(text[0]) != text[0])


def other_special(text: str) -> bool:
    """Whether ``text`` writes a special token other than ``[MASK]``: after it, "first" prepends
    no '▁' where the runtime (as the reference tokenizer) does; the runtime's fix is for [MASK] only."""
    return any(token in text for token in ("[CLS]", "[SEP]", "<pad>", "<unk>"))


def lost_lead(got: Any, want: Any) -> bool:
    """``got`` is ``want`` without its lone leading '▁' (ids and the other offsets the same)."""
    return len(want.ids) > 2 and want.tokens[1] == "▁" and got.ids == want.ids[:1] + want.ids[2:] and \
        [tuple(o) for o in got.offsets] == [tuple(o) for o in want.offsets[:1] + want.offsets[2:]]


def check_tokenizer(path: Path, tokenizer: Tokenizer, texts: list[str]) -> dict[str, int]:
    """``tokenizers`` loading ``path`` against the runtime's tokenizer (mask fix on): ids,
    offsets and type ids of every probe text and of pairs; an ExportError names the first
    difference."""
    from tokenizers import Tokenizer as Reference

    ref = Reference.from_file(str(path))
    probes = probe_texts(texts)
    pairs = list(zip(texts, texts[1:] + texts[:1]))
    for text in probes:
        got, want = ref.encode(text), tokenizer.encode_with_offsets(text)
        if shifted_start(ref, text) or other_special(text):  # the known differences (above)
            continue
        if got.ids != want.ids or [tuple(o) for o in got.offsets] != [tuple(o) for o in want.offsets]:
            raise ExportError(f"tokenizer.json cannot express this tokenizer's settings: on {text[:40]!r} it gives "
                              f"{got.tokens[:12]} where the runtime gives {want.tokens[:12]}; not writing it")
    for a, b in pairs:
        if shifted_start(ref, a) or shifted_start(ref, b) or other_special(a + b):
            continue
        got, want = ref.encode(a, b), tokenizer.encode_with_offsets(a, b)
        if got.ids != want.ids or got.type_ids != want.type_ids:
            raise ExportError(f"tokenizer.json cannot express this tokenizer's settings on the pair {a[:30]!r}, "
                              f"{b[:30]!r}; not writing it")
    return {"texts": len(probes), "pairs": len(pairs)}


def write_web(src: Any, tokenizer: Tokenizer, work: Path, stage: Path, texts: list[str], *, quantize: bool,
              atol: float, int8_min: float | None, log: Callable[[str], None]) -> dict[str, Any]:
    """Write ``stage/web``; returns its manifest entry."""
    from optimum.exporters.onnx import main_export

    web = stage / WEB_FOLDER
    (web / "onnx").mkdir(parents=True)
    hf = work / "web-source"
    src.model.save_pretrained(str(hf))
    for item in Path(src.tokenizer_dir).iterdir():
        if item.is_file() and not (hf / item.name).exists():
            shutil.copy2(item, hf / item.name)
    exported = work / "web-export"
    main_export(str(hf), str(exported), task=src.task, do_validation=False, library_name="transformers")
    shutil.move(str(exported / "model.onnx"), web / "onnx" / "model.onnx")
    shutil.copy2(hf / "config.json", web / "config.json")
    tokenizer_json(Path(src.tokenizer_dir), web)
    checked = check_tokenizer(web / "tokenizer.json", tokenizer, texts)
    log(f"web: tokenizer.json equals the runtime's tokenizer on {checked['texts']} texts (every [MASK] case) "
        f"and {checked['pairs']} pairs (two known differences, at a text's start and after a [CLS] written in "
        "it: docs/web.md)")
    feeds = _feeds(src.task, tokenizer, texts, int(src.model.config.max_position_embeddings))
    fp32 = create_session(web / "onnx" / "model.onnx", "cpu", None)
    worst = 0.0
    for feed in feeds:
        want = _torch(src, feed)
        got = fp32.run(OUTPUT[src.task], feed)
        worst = max(worst, *(float(np.abs(g - w).max()) for g, w in zip(got, want)))
    log(f"web: model.onnx against PyTorch: max|Δ| = {worst:.1e}, atol {atol:g}")
    if not worst <= atol:
        raise ExportError(f"the web graph differs from PyTorch by {worst:.2e} (atol {atol:g}); not writing it")
    entry: dict[str, Any] = {"folder": WEB_FOLDER, "tokenizer_check": checked, "fp32_max_abs_diff": worst,
                             "outputs": OUTPUT[src.task]}
    if quantize:
        q = web / "onnx" / "model_quantized.onnx"
        float_nodes = web_int8(web / "onnx" / "model.onnx", q)
        int8 = create_session(q, "cpu", None)
        score = _agreement(src.task, [fp32.run(OUTPUT[src.task], f) for f in feeds],
                           [int8.run(OUTPUT[src.task], f) for f in feeds], feeds)
        gate = int8_min if int8_min is not None else INT8_GATE.get(src.task, DEFAULT_INT8_GATE)
        kind = "mean cosine" if src.task == "feature-extraction" else "top-1 agreement"
        log(f"web: model_quantized.onnx against model.onnx: {kind} {score:.3f}; gate {kind} >= {gate:g}")
        if score < gate:
            raise ExportError(f"the web int8 graph's {kind} with fp32 is {score:.3f}, below the gate {gate:g}; "
                              "not writing it (--int8-min-agreement sets the gate)")
        entry["int8"] = {kind.replace(" ", "_").replace("-", ""): round(score, 4), "gate": gate,
                         "float_nodes": float_nodes}
    return entry


def web_int8(src: Path, dst: Path) -> list[str]:
    """The runtime's int8 recipe (export/quantize.py) on the standard graph: per-channel asymmetric
    weights of every MatMul and the word-embedding Gather, uint8 activations quantized as they
    come, the input projection (embedding -> hidden) kept in float; the names kept in float.
    Plain ONNX Runtime operators (DynamicQuantizeLinear, MatMulInteger), which the WASM backend
    runs. Closer to the runtime's int8 than ONNX Runtime's defaults (symmetric, every MatMul):
    on the shared QA model, span top-1 agreement with the runtime's int8 0.955 -> 0.965 (docs/web.md)."""
    import onnx

    graph = onnx.load(str(src), load_external_data=False).graph
    keep = [n.name for n in graph.node if n.op_type == "MatMul" and "embedding_hidden_mapping_in" in n.name]
    quantize_int8(src, dst, per_channel=True, reduce_range=False, weight_type="uint8",
                  op_types=["MatMul", "Gather"], exclude=keep)
    return keep


def _feeds(task: str, tokenizer: Tokenizer, texts: list[str], max_len: int) -> list[dict[str, np.ndarray]]:
    """A few padded batches of the standard inputs, as transformers.js feeds them (cut to the
    model's positions)."""
    sample = texts[:16]
    if task == "multiple-choice":
        rows = [tokenizer.encode_truncated(sample[0], choice, max_len) for choice in sample[1:5]]
    elif task in ("question-answering", "text-classification"):
        rows = [tokenizer.encode_truncated(a, b, max_len) for a, b in zip(sample, sample[1:] + sample[:1])]
    else:
        rows = [tokenizer.encode_truncated(t, None, max_len) for t in probe_texts(sample[:4])]
    width = max(len(r.ids) for r in rows)
    ids = np.zeros((len(rows), width), dtype=np.int64)
    mask, types = np.zeros_like(ids), np.zeros_like(ids)
    for n, r in enumerate(rows):
        ids[n, : len(r.ids)], mask[n, : len(r.ids)], types[n, : len(r.ids)] = r.ids, 1, r.type_ids
    ids[mask == 0] = tokenizer.pad_token_id
    feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    if task == "multiple-choice":
        feed = {k: v[None] for k, v in feed.items()}
    return [feed]


def _torch(src: Any, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    """PyTorch's outputs for a feed of the web graph (a multiple-choice feed: one question)."""
    import torch

    rows = {k: torch.from_numpy(v[0] if src.task == "multiple-choice" else v) for k, v in feed.items()}
    with torch.no_grad():
        out = [t.numpy() for t in reference_outputs(src.task, src.model, rows)]
    return [o[None] for o in out] if src.task == "multiple-choice" else out


def _agreement(task: str, ref: list[list[np.ndarray]], cand: list[list[np.ndarray]],
               feeds: list[dict[str, np.ndarray]]) -> float:
    """int8 against fp32: mean cosine of the states (embeddings), else top-1 agreement of
    every real position's (or row's) logits."""
    hits: list[float] = []
    for r_out, c_out, feed in zip(ref, cand, feeds):
        mask = feed["attention_mask"].astype(bool)
        for r, c in zip(r_out, c_out):
            if task == "feature-extraction":
                a, b = r[mask], c[mask]
                hits += list((a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1) + 1e-12))
            elif task in ("fill-mask", "token-classification"):
                hits += list((r.argmax(-1) == c.argmax(-1))[mask].astype(float))
            elif task == "question-answering":
                hits += list((r.argmax(-1) == c.argmax(-1)).astype(float))
            else:
                hits += list((r.argmax(-1) == c.argmax(-1)).reshape(-1).astype(float))
    return float(np.mean(hits))
