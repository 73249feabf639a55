"""One rule for every failure on the command line: one line on stderr, in the CLI's words (flags,
not Python keywords), exit status 2 for usage and input errors and 1 for the rest; ``--debug``
adds the traceback."""

from __future__ import annotations

import argparse
import re
import sys
import traceback

from ..errors import AlbertOnnxError, InputError
from .parser import PROG, UsageError

USAGE, FAILURE, INTERRUPTED = 2, 1, 130
# a Python keyword in a message: ``name``, ``name=value`` (value up to a space, ``;``, ``,`` or ``)``)
_KEYWORD = re.compile(r"\b([a-z][a-z0-9]*(?:_[a-z0-9]+)*)(?:=(True|False|[^\s;,)]+))?")
_PYTHON_WORDS = ((re.compile(r"(albert_onnx\.)?pipeline\(\)"), f"`{PROG} predict`"),
                 (re.compile(r"\bNone \("), "left out ("))
# a plain word that names a flag where a check says what it must be: ``threads must be ...``
_SUBJECT = re.compile(r"(?:^|(?<=; ))([a-z][a-z0-9_]*)(?= must\b| needs\b)")


def flags(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Every ``--flag`` of the parser and its verbs, by the Python keyword it stands for."""
    found: dict[str, argparse.Action] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for verb in action.choices.values():
                found.update(flags(verb))
        elif any(o.startswith("--") for o in action.option_strings) and action.dest not in found:
            found[action.dest] = action
    return found


def cli_words(message: str, known: dict[str, argparse.Action]) -> str:
    """``message`` with the Python keywords that are flags here written as flags:
    ``truncation=True`` -> ``--truncation``, ``doc_stride=5`` -> ``--doc-stride 5``,
    ``aggregation_strategy`` -> ``--aggregation-strategy``. A plain word (``threads``, ``labels``)
    stays a word unless ``=`` follows it."""
    for pattern, words in _PYTHON_WORDS:
        message = pattern.sub(words, message)

    def flag(m: re.Match[str]) -> str:
        name, value = m.group(1), m.group(2)
        action = known.get(name)
        if action is None or (value is None and "_" not in name):
            return m.group(0)
        option = _option(action)
        if isinstance(action, argparse._StoreFalseAction):  # --no-align-to-words: align_to_words=False
            return option if value in (None, "False") else f"no {option}"
        if isinstance(action, argparse._StoreTrueAction):
            return option if value in (None, "True") else f"no {option}"
        return option if value is None else f"{option} {value}"

    message = _SUBJECT.sub(lambda m: _option(known[m.group(1)]) if m.group(1) in known else m.group(0), message)
    return _KEYWORD.sub(flag, message)


def _option(action: argparse.Action) -> str:
    return next(o for o in action.option_strings if o.startswith("--"))


def one_line(message: str) -> str:
    """A message of several lines (as some libraries write them) as one."""
    return "; ".join(line.strip() for line in message.splitlines() if line.strip()) or "(no message)"


def report(exc: BaseException, parser: argparse.ArgumentParser, debug: bool) -> int:
    """Print ``exc`` as the CLI's one line (and its traceback with ``--debug``); the exit status."""
    if debug and not isinstance(exc, UsageError):
        traceback.print_exception(exc, file=sys.stderr)
    if isinstance(exc, UsageError):
        verb = exc.prog if exc.prog != PROG else PROG
        line = f"{exc}; see '{verb} --help'"
        status = USAGE
    elif isinstance(exc, KeyboardInterrupt):
        line, status = "interrupted", INTERRUPTED
    elif isinstance(exc, AlbertOnnxError):
        line = cli_words(str(exc), flags(parser))
        status = USAGE if isinstance(exc, InputError) else FAILURE
    elif isinstance(exc, OSError):
        line, status = f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""), FAILURE
    else:  # a library's message can carry a remote traceback: its last line says what happened
        last = [x.strip() for x in str(exc).splitlines() if x.strip()][-1:] or [""]
        line = (f"unexpected {type(exc).__name__}: {last[0]}; this is a bug: please report it with the output of "
                "the same command with --debug")
        status = FAILURE
    print(f"{PROG}: error: {one_line(line)}", file=sys.stderr)
    return status
