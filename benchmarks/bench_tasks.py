"""Each task head against the transformers pipeline of that task, at the ALBERT-base shape.

Text classification (3 labels), token classification (9 BIO labels), feature extraction (mean
pooling) at 16 and 128 tokens; question answering on a 250-character context; multiple choice
with 5 choices (against AlbertForMultipleChoice and a softmax: transformers has no pipeline for
it). Random weights on the base shape (12 layers, hidden 768, embedding 128, 12 heads, FFN 3072,
vocab 32000), end to end from input to the pipeline-shaped result, in blocks of consecutive
calls over several rounds, 2 threads for every contender.

  python benchmarks/bench_tasks.py            # about 10 minutes on 2 cores
  python benchmarks/bench_tasks.py --quick

Results: benchmarks/results/CLASS/tasks.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    CACHE,
    ROOT,
    base_shape_model,
    cached_artifact,
    machine,
    md_table,
    prefix_of_length,
    summarize,
    timed,
    write_report,
)

HEADS = {  # task -> (transformers class, extra config)
    "text-classification": ("AlbertForSequenceClassification",
                            {"num_labels": 3, "id2label": {0: "negative", 1: "neutral", 2: "positive"},
                             "label2id": {"negative": 0, "neutral": 1, "positive": 2}}),
    "token-classification": ("AlbertForTokenClassification",
                             {"num_labels": 9, "id2label": dict(enumerate(
                                 ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]))}),
    "feature-extraction": ("AlbertModel", {}),
    "question-answering": ("AlbertForQuestionAnswering", {}),
    "multiple-choice": ("AlbertForMultipleChoice", {}),
}
CALLS = {"pytorch": {16: 30, 128: 10}, "albert-onnx": {16: 60, 128: 20}}
QA_CONTEXT_CHARS = 250


def cases(task: str, tokenizer: Any, corpus: list[str]) -> list[tuple[int, Any]]:
    """(size for the call counts, input) per measured case of a task."""
    pool = "".join(corpus)
    if task == "question-answering":
        return [(128, {"question": "猫は何と言った?", "context": pool[:QA_CONTEXT_CHARS]})]
    if task == "multiple-choice":
        return [(128, {"question": corpus[0][:12], "choices": [line[:20] for line in corpus[1:6]]})]
    return [(n, prefix_of_length(tokenizer, pool, n)) for n in (16, 128)]


def reference(task: str, folder: Path, model: Any) -> Any:
    """The PyTorch way to answer one input of ``task``."""
    import torch
    import transformers

    tok = transformers.AlbertTokenizerFast.from_pretrained(str(folder))
    if task == "multiple-choice":
        def choose(item: dict[str, Any]) -> Any:
            enc = tok([item["question"]] * len(item["choices"]), item["choices"], padding=True, return_tensors="pt")
            with torch.inference_mode():
                return torch.softmax(model(**{k: v[None] for k, v in enc.items()}).logits[0], -1)
        return choose
    ref = transformers.pipeline(task, model=model, device="cpu", tokenizer=tok)  # type: ignore[call-overload]  # a str task
    if task == "question-answering":
        return lambda item: ref(question=item["question"], context=item["context"])
    kwargs: dict[str, Any] = {"token-classification": {"aggregation_strategy": "simple"}}.get(task, {})
    return lambda text: ref(text, **kwargs)


def head_folder(task: str, cache: Path) -> Path:
    """The base-shape random MLM's encoder with a random head of ``task``, cached."""
    import shutil

    import torch
    import transformers

    folder = cache / f"base-{task}"
    if (folder / "config.json").exists():
        return folder
    base = base_shape_model(cache)
    cls_name, extra = HEADS[task]
    torch.manual_seed(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        transformers.logging.set_verbosity_error()
        model = getattr(transformers, cls_name).from_pretrained(str(base), **extra).eval()
    model.save_pretrained(str(folder))
    for name in ("spiece.model", "tokenizer_config.json", "special_tokens_map.json"):
        if (base / name).exists():
            shutil.copyfile(base / name, folder / name)
    return folder


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="one round, fewer calls")
    ap.add_argument("--cache", type=Path, default=CACHE)
    args = ap.parse_args(argv)
    rounds = 1 if args.quick else args.rounds
    scale = 0.3 if args.quick else 1.0

    import torch
    import transformers

    from albert_onnx import pipeline

    torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    warnings.simplefilter("ignore")
    corpus = [x for x in (ROOT / "tests" / "data" / "corpus_ja.txt").read_text(encoding="utf-8").split("\n")
              if x.strip() and "[" not in x]
    results: list[dict[str, Any]] = []
    kernels: set[str | None] = set()
    for task, (cls_name, _) in HEADS.items():
        folder = head_folder(task, args.cache)
        art = cached_artifact(folder, args.cache / f"artifact-{task}", quantize="int8", int8_min_agreement=0.0)
        model = getattr(transformers, cls_name).from_pretrained(str(folder)).eval()
        ref = reference(task, folder, model)
        ours = {p: pipeline(art, precision=p, threads=args.threads) for p in ("fp32", "int8")}
        kernels.add(ours["int8"].int8_kernel)
        kwargs: dict[str, Any] = {"feature-extraction": {"pooling": "mean"},
                                  "token-classification": {"aggregation_strategy": "simple"}}.get(task, {})

        def call(p: str, x: Any) -> Any:
            return ours[p](**x) if task == "question-answering" else ours[p](x, **kwargs)

        contenders = {"pytorch pipeline": ref,
                      "albert-onnx fp32": lambda x: call("fp32", x),
                      "albert-onnx int8": lambda x: call("int8", x)}
        for n, text in cases(task, ours["fp32"].tokenizer, corpus):
            samples: dict[str, list[float]] = {k: [] for k in contenders}
            for fn in contenders.values():
                fn(text), fn(text)  # warm up
            for _ in range(rounds):
                for name, fn in contenders.items():
                    calls = CALLS["pytorch" if name.startswith("pytorch") else "albert-onnx"][n]
                    samples[name] += timed(fn, max(3, int(calls * scale)), text)
            base = summarize(samples["pytorch pipeline"])["median_ms"]
            size = (f"{QA_CONTEXT_CHARS}-char context" if task == "question-answering"
                    else f"{len(text['choices'])} choices" if task == "multiple-choice"
                    else len(ours["fp32"].tokenizer.encode(text)))
            for name, s in samples.items():
                stats = summarize(s)
                results.append({"task": task, "contender": name, "tokens": size,
                                **stats, "speedup_vs_pytorch": base / stats["median_ms"]})
            print(f"{task:<22} {n:>4} tok  " + "  ".join(
                f"{r['contender']}: {r['median_ms']:.1f} ms ({r['speedup_vs_pytorch']:.1f}x)"
                for r in results[-3:]), flush=True)
    info = machine(args.threads)
    rows = [[r["task"], r["contender"], r["tokens"], round(r["median_ms"], 2), round(r["p90_ms"], 2),
             f"{r['speedup_vs_pytorch']:.1f}x"] for r in results]
    md = (f"# Task heads against the transformers pipelines (ALBERT-base shape, random weights)\n\n"
          f"{info['cpu']}, CPU class {info['cpu_class']} ({', '.join(info['isa']) or 'no AVX'}), "
          f"{args.threads} threads, {info['date']}; "
          f"onnxruntime {info['versions']['onnxruntime']}, "
          f"torch {info['versions']['torch']}, transformers {info['versions']['transformers']}. End to end, "
          "batch 1, median and p90 of blocks of consecutive calls over "
          f"{rounds} round(s); int8 products {', '.join(sorted(k for k in kernels if k))}.\n\n"
          + md_table(["task", "contender", "tokens", "median ms", "p90 ms", "vs PyTorch"], rows))
    j, m = write_report("tasks_quick" if args.quick else "tasks",
                        {"machine": info, "int8_kernel": sorted(k for k in kernels if k), "results": results}, md)
    print(f"wrote {j} and {m}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
