"""How the verbs print answers: JSON lines (``--json``, one result a line), or a human table whose
columns are aligned by display width and whose echo of a long input is shortened."""

from __future__ import annotations

import json
import math
import unicodedata
from typing import Any

ECHO_COLUMNS = 60  # an input echoed in human output is cut to this many columns


def json_line(result: Any) -> str:
    return json.dumps(result, ensure_ascii=False)


def display_width(text: str) -> int:
    """Columns a terminal gives ``text``: East Asian wide and full-width characters count double."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 0 if unicodedata.combining(c) else 1
               for c in text)


def pad(text: str, width: int) -> str:
    return text + " " * max(0, width - display_width(text))


def echo(item: Any, columns: int = ECHO_COLUMNS) -> str:
    """An input as the human output heads its answer: one line, at most ``columns`` wide; a
    longer one ends in ``… (N characters)``."""
    if isinstance(item, dict):
        text = " / ".join(str(v) if not isinstance(v, list) else " | ".join(v) for v in item.values())
    else:
        text = str(item)
    text = " ".join(text.split())  # one line: newlines and runs of spaces fold
    if display_width(text) <= columns:
        return text
    out, width = [], 0
    for c in text:
        width += display_width(c)
        if width > columns - 1:
            break
        out.append(c)
    return "".join(out) + f"… ({len(item) if isinstance(item, str) else len(text)} characters)"


def human_chunk(task: str, items: list[Any], results: list[Any], options: Any) -> list[str]:
    """The lines of a chunk of answers, each headed by its input (scores aligned in a column)."""
    width = max(display_width(echo(item)) for item in items)
    return [line for item, result in zip(items, results) for line in human(task, item, result, options, width)]


def human(task: str, item: Any, result: Any, options: Any, width: int = ECHO_COLUMNS) -> list[str]:
    """The lines of one input's answer, headed by the input (``width``: the column of a score)."""
    lines = [echo(item)]
    if task == "fill-mask":
        for m, cands in enumerate(result, 1):
            lines.append(f"  [MASK] #{m}:")
            lines += [f"    {rank}. {pad(c['token_str'], 12)} {c['score']:.4f}" for rank, c in enumerate(cands, 1)]
    elif task == "score":
        if isinstance(result, dict):
            lines[0] = f"{pad(lines[0], width)}  PLL {result['pll']:9.3f}  " \
                       f"pseudo-perplexity {result['pseudo_perplexity']:10.3f}"
        else:  # per token
            total = sum(t["logprob"] for t in result)
            lines[0] = f"{pad(lines[0], width)}  PLL {total:9.3f}  " \
                       f"pseudo-perplexity {math.exp(-total / len(result)):10.3f}"
            lines += [f"    {pad(t['token'], 12)} {t['logprob']:8.3f}" for t in result]
    elif task == "text-classification":
        lines += [f"  {pad(x['label'], 20)} {x['score']:.4f}" for x in result]
    elif task == "token-classification":
        key = "entity" if options.aggregation_strategy == "none" else "entity_group"
        lines += [f"  {e['start']:>4}-{e['end']:<4} {pad(e[key], 12)} {e['score']:.4f}  {e['word']}" for e in result]
    elif task == "feature-extraction":
        shape = f"{len(result)}x{len(result[0])}" if result and isinstance(result[0], list) else str(len(result))
        first = result[0][:4] if result and isinstance(result[0], list) else result[:4]
        lines.append(f"  {shape} float32, first values {' '.join(f'{x:.4f}' for x in first)} ...")
    elif task == "question-answering":
        answers = result if isinstance(result, list) else [result]
        lines += [f"  {a['start']:>4}-{a['end']:<4} {a['score']:.4f}  {a['answer']}" for a in answers]
    elif task == "multiple-choice":
        lines += [f"  {pad(c['choice'], 20)} {c['score']:.4f}" for c in result]
    else:  # zero-shot
        lines += [f"  {pad(label, 20)} {score:.4f}" for label, score in zip(result["labels"], result["scores"])]
    return lines


class ProgressBar:
    """``fp32 [#######     ] 320/1118`` on stderr, redrawn in place; only on a terminal."""

    def __init__(self, enabled: bool = True) -> None:
        import sys

        self.stream = sys.stderr
        self.enabled = enabled and self.stream.isatty()
        self.drawn = False

    def update(self, label: str, done: int, total: int) -> None:
        if self.enabled:
            bar = "#" * int(24 * done / max(total, 1))
            print(f"\r{label:<5} [{bar:<24}] {done}/{total}", end="", file=self.stream, flush=True)
            self.drawn = True

    def close(self) -> None:
        if self.drawn:
            print(file=self.stream)
            self.drawn = False


def write_atomically(path: str, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all ('-': stdout)."""
    import os
    import sys
    from pathlib import Path

    if path == "-":
        sys.stdout.write(text)
        return
    target = Path(path)
    tmp = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        from ..errors import InputError

        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
