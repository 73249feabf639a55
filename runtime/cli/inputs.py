"""What a verb runs on: TEXT arguments, ``-i FILE`` and stdin (``-``), one text or JSON object a
line, read lazily so a pipe of any length streams through."""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Iterator
from typing import Any

from ..batch.rows import open_text, split_lines
from ..errors import InputError

STDIN = "-"
# tasks whose inputs are several fields: their lines are JSON objects whatever the file's name
STRUCTURED = {"question-answering": ("question", "context"), "multiple-choice": ("question", "choices")}


def check_some_input(args: argparse.Namespace) -> None:
    """Refuse, before a model loads, a line that gives no input at all."""
    if not (args.texts or args.input or getattr(args, "question", None) or getattr(args, "context", None)):
        raise InputError("no input: give TEXT arguments, -i FILE, or '-' to read stdin")


def read_inputs(args: argparse.Namespace, task: str) -> Iterator[Any]:
    """The inputs of ``task``, in order: those of the arguments first, then each ``--input``.

    Texts are str; text pairs ``{"text", "text_pair"}``; questions ``{"question", "context"}``
    or ``{"question", "choices"}``, as the Python predictors take them.
    """
    files: list[str] = list(getattr(args, "input", []))
    texts: list[str] = list(getattr(args, "texts", []))
    if texts.count(STDIN) + files.count(STDIN) > 1:
        raise InputError("stdin ('-') can be read once; give '-' once, as TEXT or as --input")
    if STDIN in texts:  # '-' among the TEXTs: stdin's lines take its place
        texts.remove(STDIN)
        files.insert(0, STDIN)
    yield from _argument_inputs(args, task, texts)
    for name in files:
        yield from _file_inputs(args, task, name)


def _argument_inputs(args: argparse.Namespace, task: str, texts: list[str]) -> Iterator[Any]:
    questions, contexts = getattr(args, "question", None) or [], getattr(args, "context", None) or []
    choices, pairs = getattr(args, "choices", None), getattr(args, "text_pair", None)
    if task == "question-answering":
        if texts:
            raise InputError("a question-answering artifact takes --question Q (repeatable) and --context C "
                             "(once, or once per --question), or JSON lines with -i FILE; no TEXT")
        if questions or contexts:
            if not questions or len(contexts) not in (1, len(questions)):
                raise InputError(f"{len(questions)} --question and {len(contexts)} --context: give --context once, "
                                 "or once per --question")
            for n, q in enumerate(questions):
                yield {"question": q, "context": contexts[0 if len(contexts) == 1 else n]}
        return
    if questions or contexts:
        raise InputError(f"--question and --context are for question answering; this artifact holds {task!r}")
    if task == "multiple-choice":
        if texts and not choices:
            raise InputError("a multiple-choice artifact takes the question as TEXT and its choices as "
                             "--choices A B ... (or JSON lines {\"question\", \"choices\"} with -i FILE)")
        for t in texts:
            yield {"question": t, "choices": list(choices or [])}
        return
    if choices:
        raise InputError(f"--choices is for multiple choice; this artifact holds {task!r}")
    if pairs is not None:
        if len(pairs) != len(texts):
            raise InputError(f"--text-pair was given {len(pairs)} times for {len(texts)} TEXTs; give it once per TEXT")
        yield from ({"text": t, "text_pair": p} for t, p in zip(texts, pairs))
        return
    yield from texts


def _file_inputs(args: argparse.Namespace, task: str, name: str) -> Iterator[Any]:
    fmt = args.input_format
    if fmt == "auto":
        fmt = "jsonl" if name.endswith(".jsonl") or task in STRUCTURED else "text"
    where = "stdin" if name == STDIN else name
    if name == STDIN:
        stream: Any = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="surrogateescape", newline="")
    else:
        try:
            stream = open_text(name)
        except OSError as exc:
            raise InputError(f"--input {name}: cannot read it ({exc.strerror or exc})") from None
    with stream:
        for number, line in enumerate(split_lines(stream, False, where), 1):
            if not line.strip():
                continue  # blank lines separate nothing: skipped, in both formats
            yield line if fmt == "text" else _json_item(task, where, number, line)


def _json_item(task: str, where: str, number: int, line: str) -> Any:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where} line {number} is not JSON ({exc.msg}); with --input-format jsonl (or a .jsonl "
                         "file) each line is a JSON object") from None
    keys = STRUCTURED.get(task, ("text",))
    if not isinstance(obj, dict) or keys[0] not in obj:
        raise InputError(f"{where} line {number}: expected a JSON object with the keys {list(keys)}"
                         + (" (and maybe 'text_pair')" if task == "text-classification" else ""))
    for key in keys:
        value = obj.get(key)
        if key == "choices":
            if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
                raise InputError(f"{where} line {number}: 'choices' must be a list of strings")
        elif not isinstance(value, str):
            raise InputError(f"{where} line {number}: {key!r} must be a string")
    if task in STRUCTURED:
        return {k: obj[k] for k in keys}
    pair = obj.get("text_pair")
    if pair is None:
        return obj["text"]
    if task != "text-classification" or not isinstance(pair, str):
        raise InputError(f"{where} line {number}: 'text_pair' is for text classification, and a string")
    return {"text": obj["text"], "text_pair": pair}
