"""Fine-tune the shared mini ALBERT on JCommonsenseQA (multiple choice) or JSTS (regression), on
the CPU, in minutes: the real fine-tunes `evaluate` and accuracy-aware int8 are measured on.

JGLUE v1.3's validation sets are not in ../shared/jglue, so the last 1,000 examples of the
training set are held out as the development set (written beside the model as `dev.json`, in
JGLUE's own format: what `export --eval-data` is given); the test set stays for the final
figures. The model is cached outside git (benchmarks' CACHE) and made again only when this
script or its options change.

  python benchmarks/finetune_jglue.py jcqa      # about 15 minutes on 2 cores (1,491 steps)
  python benchmarks/finetune_jglue.py jsts      # about 9 minutes (1,432 steps)

Needs the export extra (torch, transformers) and ../shared (the mini model, JGLUE).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, SHARED, SHARED_MODEL  # noqa: E402

JGLUE = SHARED / "jglue"
TASKS = {
    # name: (folder, head, max length, epochs, batch, learning rate)
    "jcqa": ("jcommonsenseqa-v1.3", "AlbertForMultipleChoice", 64, 3, 16, 1e-4),
    "jsts": ("jsts-v1.3", "AlbertForSequenceClassification", 96, 4, 32, 1e-4),
}
HELD_OUT = 1000


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def encode(task: str, tokenizer: Any, batch: list[dict[str, Any]], max_len: int) -> dict[str, Any]:
    import torch

    if task == "jcqa":
        firsts = [r["question"] for r in batch for _ in range(5)]
        seconds = [r[f"choice{i}"] for r in batch for i in range(5)]
        enc = tokenizer(firsts, seconds, truncation=True, max_length=max_len, padding=True, return_tensors="pt")
        out = {k: v.view(len(batch), 5, -1) for k, v in enc.items()}
        out["labels"] = torch.tensor([r["label"] for r in batch])
        return out
    enc = tokenizer([r["sentence1"] for r in batch], [r["sentence2"] for r in batch], truncation=True,
                    max_length=max_len, padding=True, return_tensors="pt")
    return {**enc, "labels": torch.tensor([float(r["label"]) for r in batch])}


def finetune(task: str, out: Path, minutes: float | None, seed: int = 0) -> Path:
    import torch
    import transformers

    folder, head, max_len, epochs, batch_size, lr = TASKS[task]
    train = rows(JGLUE / folder / "train-v1.3.json")
    dev, train = train[-HELD_OUT:], train[:-HELD_OUT]
    torch.manual_seed(seed)
    random.seed(seed)
    torch.set_num_threads(2)
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(SHARED_MODEL))
    extra = {"num_labels": 1, "problem_type": "regression"} if task == "jsts" else {}
    model = getattr(transformers, head).from_pretrained(str(SHARED_MODEL), **extra)
    steps = epochs * math.ceil(len(train) / batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    schedule = transformers.get_linear_schedule_with_warmup(optimizer, int(0.1 * steps), steps)
    model.train()
    started, step, losses = time.perf_counter(), 0, []
    for epoch in range(epochs):
        random.shuffle(train)
        for start in range(0, len(train), batch_size):
            loss = model(**encode(task, tokenizer, train[start:start + batch_size], max_len)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            losses.append(float(loss))
            step += 1
            if step % 100 == 0:
                print(f"{task} epoch {epoch + 1} step {step}/{steps} loss {sum(losses[-100:]) / 100:.4f} "
                      f"({time.perf_counter() - started:.0f} s)", flush=True)
            if minutes is not None and time.perf_counter() - started > 60 * minutes:
                break
        else:
            continue
        break
    model.eval()
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    (tmp / "dev.json").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in dev), encoding="utf-8")
    (tmp / "training.json").write_text(json.dumps({
        "task": task, "base": SHARED_MODEL.name, "train_examples": len(train), "held_out_dev": len(dev),
        "epochs": epochs, "steps": step, "batch": batch_size, "lr": lr, "max_length": max_len,
        "minutes": round((time.perf_counter() - started) / 60, 1), "last_100_loss": sum(losses[-100:]) / 100,
        "threads": 2}, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def cached_finetune(task: str, minutes: float | None = None) -> Path:
    """The fine-tuned model folder, trained once per version of this script and options."""
    out = CACHE / f"jglue-{task}"
    digest = hashlib.sha256(Path(__file__).read_bytes() + repr((task, minutes)).encode()).hexdigest()
    stamp = CACHE / f".jglue-{task}.stamp"
    if (out / "config.json").exists() and stamp.exists() and stamp.read_text() == digest:
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    finetune(task, out, minutes)
    stamp.write_text(digest)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", choices=sorted(TASKS))
    parser.add_argument("--minutes", type=float, default=None, help="stop training after this long")
    args = parser.parse_args()
    if not (JGLUE.is_dir() and SHARED_MODEL.is_dir()):
        sys.exit(f"needs {JGLUE} and {SHARED_MODEL} (../shared)")
    print(cached_finetune(args.task, args.minutes))


if __name__ == "__main__":
    main()
