"""Shared pieces of the benchmark scripts: machine facts, models, report writing."""

from __future__ import annotations

import hashlib
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from albert_onnx import bench

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SHARED_MODEL = SHARED / "models" / "albert-ja-mini-wagahai"
RESULTS = ROOT / "benchmarks" / "results"
CACHE = Path(tempfile.gettempdir()) / "albert-onnx-bench"  # models and artifacts the scripts reuse
PACKAGES = ("albert-onnx", "onnxruntime", "numpy", "torch", "transformers", "optimum", "optimum-onnx", "openvino",
            "nncf", "tokenizers", "sentencepiece")
BASE_SHAPE = dict(vocab_size=32000, embedding_size=128, hidden_size=768, num_hidden_layers=12,
                  num_attention_heads=12, intermediate_size=3072, hidden_act="gelu_new",
                  max_position_embeddings=512)


def machine(threads: int) -> dict[str, Any]:
    return bench.machine(threads, PACKAGES)


def timed(fn: Any, calls: int, *args: Any) -> list[float]:
    """Seconds of each of ``calls`` consecutive calls ``fn(*args)`` (one block)."""
    out = []
    for _ in range(calls):
        t = time.perf_counter()
        fn(*args)
        out.append(time.perf_counter() - t)
    return out


def prefix_of_length(tokenizer: Any, pool: str, tokens: int) -> str:
    """The longest prefix of ``pool`` that encodes to ``tokens`` ids at most ([CLS]/[SEP] in)."""
    lo, hi = 1, len(pool)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(tokenizer.encode(pool[:mid])) <= tokens:
            lo = mid
        else:
            hi = mid - 1
    return pool[:lo]


def masked_texts(rows: int) -> list[str]:
    """``rows`` lines of the project's corpus (up to 100 characters) with one ``[MASK]`` each."""
    lines = [x for x in (ROOT / "tests" / "data" / "corpus_ja.txt").read_text(encoding="utf-8").split("\n")
             if x.strip() and "[" not in x and "<" not in x]
    texts = []
    for n in range(rows):
        line = lines[n % len(lines)][:100]
        cut = (n * 7) % max(1, len(line))
        texts.append(line[:cut] + "[MASK]" + line[cut:])
    return texts


def summarize(samples_s: list[float]) -> dict[str, float]:
    return {**bench.latency_stats(samples_s), "mean_ms": statistics.fmean(samples_s) * 1e3, "n": len(samples_s)}


def spm_32k(out: Path) -> Path:
    """A 32,000-piece SentencePiece model, the size of ken11's vocabulary: trained on the novel in
    ../shared (as many pieces as it yields, about 15,000) or on the project's corpus, then padded
    with seeded random pieces of 1-6 kana and kanji scored below every trained one."""
    import random

    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as pb

    path = out / "spiece.model"
    if path.exists():
        return path
    out.mkdir(parents=True, exist_ok=True)
    novel = SHARED / "corpus" / "wagahaiwa_nekodearu.txt"
    text = novel if novel.exists() else ROOT / "tests" / "data" / "corpus_ja.txt"
    spm.SentencePieceTrainer.train(
        input=str(text), model_prefix=str(out / "trained"), vocab_size=32000, hard_vocab_limit=False,
        pad_id=0, unk_id=1, bos_id=-1, eos_id=-1, control_symbols="[CLS],[SEP],[MASK]", minloglevel=2)
    model = pb.ModelProto()  # type: ignore[attr-defined]  # generated protobuf module, no stubs
    model.ParseFromString((out / "trained.model").read_bytes())
    seen = {p.piece for p in model.pieces}
    low = min(p.score for p in model.pieces if p.type == 1)
    chars = [chr(c) for c in (*range(0x3041, 0x3097), *range(0x30A1, 0x30FB), *range(0x4E00, 0x4E00 + 3000))]
    rng = random.Random(32000)
    while len(model.pieces) < 32000:
        piece = "".join(rng.choice(chars) for _ in range(rng.randint(1, 6)))
        if rng.random() < 0.3:
            piece = "\u2581" + piece
        if piece not in seen:
            seen.add(piece)
            model.pieces.add(piece=piece, score=low - 1.0 - len(model.pieces) * 1e-4, type=1)
    path.write_bytes(model.SerializeToString())
    return path


def base_shape_model(cache: Path, vocab: str = "shared") -> Path:
    """A random-weight ALBERT-base-shaped MLM folder, made once and cached. Its tokenizer: the
    shared model's 8,000 pieces (``vocab="shared"``, a freshly trained one without ../shared), or
    ``vocab="32k"``, a 32,000-piece model the size of ken11's (see :func:`spm_32k`)."""
    folder = cache / ("albert-base-shape-random" if vocab == "shared" else f"albert-base-shape-random-{vocab}")
    if (folder / "config.json").exists():
        return folder
    import shutil

    import torch
    from transformers import AlbertConfig, AlbertForMaskedLM

    folder.mkdir(parents=True, exist_ok=True)
    tok_src = SHARED_MODEL if SHARED_MODEL.exists() else None
    if vocab == "32k":
        shutil.copyfile(spm_32k(cache / "spm-32k"), folder / "spiece.model")
        (folder / "tokenizer_config.json").write_text(json.dumps(
            {"tokenizer_class": "AlbertTokenizer", "do_lower_case": False, "keep_accents": True,
             "remove_space": True, "model_max_length": 512}), encoding="utf-8")
    elif tok_src is not None:
        for name in ("spiece.model", "tokenizer_config.json", "special_tokens_map.json"):
            shutil.copyfile(tok_src / name, folder / name)
    else:
        import sentencepiece as spm

        spm.SentencePieceTrainer.train(
            input=str(ROOT / "tests" / "data" / "corpus_ja.txt"), model_prefix=str(folder / "spiece"),
            vocab_size=700, hard_vocab_limit=False, pad_id=0, unk_id=1, bos_id=-1, eos_id=-1,
            control_symbols="[CLS],[SEP],[MASK]", minloglevel=2)
    torch.manual_seed(0)
    AlbertForMaskedLM(AlbertConfig(pad_token_id=0, **BASE_SHAPE)).eval().save_pretrained(str(folder))
    return folder


def cached_artifact(source: Path, artifact: Path, **export_options: Any) -> Path:
    """``source`` exported to ``artifact`` once, and again whenever the exporter's code or the
    options change (a stale cache would time an older graph)."""
    from albert_onnx.export import export_model

    digest = hashlib.sha256(repr(sorted(export_options.items())).encode())
    for path in sorted((ROOT / "export").glob("*.py")):
        digest.update(path.read_bytes())
    stamp = artifact.parent / f".{artifact.name}.exporter"
    if (artifact / "manifest.json").exists() and stamp.exists() and stamp.read_text() == digest.hexdigest():
        return artifact
    export_model(str(source), artifact, overwrite=True, log=lambda s: None, **export_options)
    stamp.write_text(digest.hexdigest())
    return artifact


def class_folder(cpu_class: str | None = None) -> Path:
    """Where this CPU class's reports live (``results/avx2``, ``results/avx512-vnni``, ``results/amx``):
    figures of different classes are never mixed in one file."""
    words = "".join(c if c.isalnum() or c == " " else "" for c in (cpu_class or bench.cpu_class()).lower())
    return RESULTS / "-".join(words.split())


def write_report(name: str, data: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    """Write ``name``.json and ``name``.md under the CPU class's folder of results."""
    folder = class_folder(data.get("machine", {}).get("cpu_class"))
    folder.mkdir(parents=True, exist_ok=True)
    j, m = folder / f"{name}.json", folder / f"{name}.md"
    j.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    m.write_text(markdown, encoding="utf-8")
    return j, m


def md_table(header: list[str], rows: list[list[Any]]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
        return str(v)

    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(out) + "\n"
