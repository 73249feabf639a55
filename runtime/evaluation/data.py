"""Evaluation data, read as JGLUE ships it or in a generic form, checked row by row.

JGLUE's own files: JSQuAD (SQuAD v1.1-style JSON), JCommonsenseQA, JNLI, JSTS and MARC-ja (JSON
lines). The generic form, JSON lines or Parquet: ``text``, optional ``text_pair``, and ``label``
(a label name, a label id, or a number for a regression head) or ``answers`` (question answering:
``text`` the question, ``text_pair`` or ``context`` the context), or ``choices`` with ``label``
(multiple choice). A bad row is an :class:`InputError` naming the file, the line and the field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..artifact import sha256_file
from ..errors import InputError

# what each kind of example holds: the inputs the predictor takes, and the gold answer
QA, CHOICE, LABEL, SCORE = "question-answering", "multiple-choice", "classification", "regression"
KINDS = (QA, CHOICE, LABEL, SCORE)


@dataclass(frozen=True)
class Example:
    """One evaluation example: where it is (``where``: ``line 12`` or ``question id ...``), its
    inputs and its gold answer."""

    where: str
    inputs: Any  # LABEL/SCORE: (text, pair or None); QA: (question, context); CHOICE: (question, [choices])
    gold: Any  # LABEL: str or int; SCORE: float; QA: [answer texts]; CHOICE: int


@dataclass(frozen=True)
class EvalData:
    """A data file read for one kind of task."""

    path: Path
    format: str  # jsquad, jcommonsenseqa, jnli, jsts, marc-ja, jsonl, parquet
    kind: str
    examples: list[Example]
    sha256: str

    def describe(self) -> dict[str, Any]:
        return {"file": self.path.name, "format": self.format, "examples": len(self.examples), "sha256": self.sha256}


def read_eval_data(path: str | Path, kind: str, limit: int | None = None) -> EvalData:
    """Read ``path`` as examples of ``kind`` (one of :data:`KINDS`): the first ``limit`` of them."""
    path = Path(path)
    if kind not in KINDS:
        raise InputError(f"unknown kind of evaluation {kind!r}; valid: {list(KINDS)}")
    if not path.is_file():
        raise InputError(f"{path}: data file not found")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InputError(f"limit must be a positive integer, not {limit!r}")
    if path.suffix.lower() == ".parquet":
        fmt, rows = "parquet", _parquet_rows(path)
    else:
        fmt, rows = _json_rows(path)
        if fmt == "jsquad" and kind != QA:
            raise InputError(f"{path}: JSQuAD data (question answering), but the artifact's task needs {_needs(kind)}")
    examples: list[Example] = []
    layout = None  # which JGLUE file the rows' keys say (or "jsonl": the generic form)
    for where, row in rows:
        if fmt == "jsquad":
            examples.append(Example(where, row["inputs"], row["gold"]))
        else:
            layout = layout or _layout(row)
            examples.append(_example(path, where, row, kind, layout))
        if limit is not None and len(examples) >= limit:
            break
    if fmt == "jsonl" and layout:
        fmt = layout
    if not examples:
        raise InputError(f"{path}: no examples in the file")
    return EvalData(path, fmt, kind, examples, sha256_file(path))


def _needs(kind: str) -> str:
    return {QA: "question, context and answers", CHOICE: "a question, its choices and the label",
            LABEL: "texts and labels", SCORE: "texts and numeric labels"}[kind]


# ---------------------------------------------------------------------------------- reading
def _json_rows(path: Path) -> tuple[str, Iterator[tuple[str, Mapping[str, Any]]]]:
    """JSQuAD's one JSON document (on one line or pretty-printed), or JSON lines."""
    with open(path, "rb") as f:
        first = f.readline()
    try:
        head = json.loads(_text(path, first, 1))
        whole = isinstance(head, dict) and isinstance(head.get("data"), list)
    except json.JSONDecodeError:
        whole = first.strip() == b"{" or first.lstrip().startswith(b'{"version"')
    if whole:
        try:
            document = json.loads(_text(path, path.read_bytes(), 0))
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
        if isinstance(document, dict) and isinstance(document.get("data"), list):
            return "jsquad", _squad_rows(path, document)
        raise InputError(f"{path}: one JSON document without a 'data' list: neither SQuAD-style JSON nor JSON lines")
    return "jsonl", _jsonl_rows(path)


def _text(path: Path, raw: bytes, line: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        where = f"{path}:{line}" if line else f"{path} (byte {exc.start})"
        raise InputError(f"{where}: not UTF-8 text") from None


def _jsonl_rows(path: Path) -> Iterator[tuple[str, Mapping[str, Any]]]:
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            line = _text(path, raw, number).strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{number}: not a JSON object ({exc.msg})") from None
            if not isinstance(row, dict):
                raise InputError(f"{path}:{number}: a line must hold a JSON object, not {type(row).__name__}")
            yield f"line {number}", row


def _parquet_rows(path: Path) -> Iterator[tuple[str, Mapping[str, Any]]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError(f"{path}: reading Parquet needs pyarrow: pip install 'albert-onnx[batch]'") from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises its own types for corrupt files
        raise InputError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0][:200]})") from None
    for number, row in enumerate(table.to_pylist(), 1):
        yield f"row {number}", row


def _squad_rows(path: Path, document: Any) -> Iterator[tuple[str, Mapping[str, Any]]]:
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise InputError(f"{path}: a SQuAD-style file needs a top-level 'data' list")
    for a, article in enumerate(document["data"]):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise InputError(f"{path}: data[{a}] needs a 'paragraphs' list")
        for p, paragraph in enumerate(paragraphs):
            at = f"data[{a}].paragraphs[{p}]"
            if not isinstance(paragraph, dict):
                raise InputError(f"{path}: {at} must be an object")
            context = _string(path, at, paragraph, "context")
            qas = paragraph.get("qas")
            if not isinstance(qas, list):
                raise InputError(f"{path}: {at} needs a 'qas' list")
            for q, qa in enumerate(qas):
                where = f"{at}.qas[{q}]"
                if not isinstance(qa, dict):
                    raise InputError(f"{path}: {where} must be an object")
                if "id" in qa:
                    where = f"question id {qa['id']}"
                question = _string(path, where, qa, "question")
                answers = _answers(path, where, qa.get("answers"), impossible=bool(qa.get("is_impossible")))
                yield where, {"inputs": (question, context), "gold": answers}


def _layout(row: Mapping[str, Any]) -> str:
    """Which JGLUE file (or the generic form) a first row's keys say this is."""
    if "question" in row and "choice0" in row:
        return "jcommonsenseqa"
    if "sentence1" in row and "sentence2" in row:
        label = row.get("label")
        return "jsts" if isinstance(label, (int, float)) and not isinstance(label, bool) else "jnli"
    if "sentence" in row and "label" in row:
        return "marc-ja"
    return "jsonl"


# ---------------------------------------------------------------------------------- fields
def location(path: Path, where: str) -> str:
    """An example's place in an error: ``FILE:LINE`` for a line, ``FILE (row 3)`` otherwise."""
    return f"{path}:{where.split()[-1]}" if where.startswith("line") else f"{path} ({where})"


def _example(path: Path, where: str, row: Mapping[str, Any], kind: str, fmt: str) -> Example:
    at = location(path, where)
    if kind == QA:
        if fmt != "jsonl":
            raise InputError(f"{path}: {_FORMAT_NAMES[fmt]} data, but the artifact answers questions: it needs "
                             "JSQuAD or rows with a question, its context and answers")
        question = _field_string(at, row, "question", "text")
        context = _field_string(at, row, "context", "text_pair")
        return Example(where, (question, context), _answers(at, "", row.get("answers"), key="answers"))
    if kind == CHOICE:
        if fmt not in ("jcommonsenseqa", "jsonl"):
            raise InputError(f"{path}: {_FORMAT_NAMES[fmt]} data, but the artifact is a multiple-choice model: it "
                             "needs JCommonsenseQA or rows with a question, 'choices' and 'label'")
        question = _field_string(at, row, "question", "text")
        if fmt == "jcommonsenseqa":
            choices: list[str] = []
            while f"choice{len(choices)}" in row:
                choices.append(_string(at, "", row, f"choice{len(choices)}"))
        else:
            raw = row.get("choices")
            if not isinstance(raw, list) or len(raw) < 2 or not all(isinstance(c, str) and c.strip() for c in raw):
                raise InputError(f"{at}: field 'choices' must be a list of two or more non-empty strings, "
                                 f"not {_show(raw)}")
            choices = list(raw)
        label = row.get("label")
        if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < len(choices):
            raise InputError(f"{at}: field 'label' must be the index of the right choice, 0..{len(choices) - 1}, "
                             f"not {_show(label)}")
        return Example(where, (question, choices), label)
    if fmt == "jcommonsenseqa":
        raise InputError(f"{path}: JCommonsenseQA data (multiple choice), but the artifact's task needs {_needs(kind)}")
    text = _field_string(at, row, "sentence1", "sentence", "text")
    pair = row.get("sentence2", row.get("text_pair"))
    if pair is not None and (not isinstance(pair, str) or not pair.strip()):
        name = "sentence2" if "sentence2" in row else "text_pair"
        raise InputError(f"{at}: field {name!r} must be a non-empty string when given, not {_show(pair)}")
    if "label" not in row:
        raise InputError(f"{at}: field 'label' is missing")
    label = row["label"]
    if kind == SCORE:
        if isinstance(label, bool) or not isinstance(label, (int, float)) or not math.isfinite(label):
            raise InputError(f"{at}: field 'label' must be a number for a regression head, not {_show(label)}")
        return Example(where, (text, pair), float(label))
    if isinstance(label, bool) or not isinstance(label, (str, int)) or (isinstance(label, str) and not label):
        raise InputError(f"{at}: field 'label' must be a label name or a label id, not {_show(label)}")
    return Example(where, (text, pair), label)


_FORMAT_NAMES = {"jsquad": "JSQuAD", "jcommonsenseqa": "JCommonsenseQA", "jnli": "JNLI", "jsts": "JSTS",
                 "marc-ja": "MARC-ja", "jsonl": "JSON lines", "parquet": "Parquet"}


def _field_string(at: str, row: Mapping[str, Any], *names: str) -> str:
    for name in names:
        if name in row:
            return _string(at, "", row, name)
    raise InputError(f"{at}: field {' or '.join(repr(n) for n in names)} is missing")


def _string(path: Any, where: str, row: Mapping[str, Any], name: str) -> str:
    value = row.get(name)
    if not isinstance(value, str) or not value.strip():
        at = f"{path}: {where}" if where else f"{path}"
        raise InputError(f"{at}: field {name!r} must be a non-empty string, not {_show(value)}")
    return value


def _answers(path: Any, where: str, raw: Any, impossible: bool = False, key: str = "answers") -> list[str]:
    """Gold answer texts from a list of ``{"text": ...}``, a list of str, or ``{"text": [...]}``
    (Hugging Face datasets); an unanswerable question's gold is the empty answer."""
    at = f"{path}: {where}" if where else f"{path}"
    if isinstance(raw, dict) and isinstance(raw.get("text"), list):
        raw = raw["text"]
    if not isinstance(raw, list):
        raise InputError(f"{at}: field {key!r} must be a list of answers ({{'text': ...}} or strings), "
                         f"not {_show(raw)}")
    out = []
    for n, answer in enumerate(raw):
        text = answer.get("text") if isinstance(answer, dict) else answer
        if not isinstance(text, str):
            raise InputError(f"{at}: field {key!r}, answer {n}: the text must be a string, not {_show(text)}")
        out.append(text)
    if not out and not impossible:
        raise InputError(f"{at}: field {key!r} is empty; give at least one answer (or mark it is_impossible)")
    return out or [""]


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, (bytes, bytearray)) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."

