"""Command line: ``albert-onnx export`` (needs the [export] extra), ``fill-mask``, ``score``,
``predict``, ``batch``, ``serve``, ``bench``, ``evaluate`` and ``completion``."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

from . import commands
from .failures import report
from .parser import PROG, UsageError, build_parser

__all__ = ["main"]

VERBS: dict[str, Callable[..., int]] = {
    "export": commands.export, "fill-mask": commands.fill_mask, "score": commands.score,
    "predict": commands.predict, "batch": commands.batch, "bench": commands.bench, "serve": commands.serve,
    "evaluate": commands.evaluate,
}


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 failure, 2 usage or input error)."""
    parser = build_parser()
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
        debug = bool(getattr(args, "debug", False))
        if args.command is None:
            raise UsageError(f"choose a command: {', '.join([*VERBS, 'completion'])}", PROG)
        _log_to_stderr(debug)
        if args.command == "completion":
            return commands.completion(args, parser)
        return VERBS[args.command](args)
    except BrokenPipeError:  # the reader went away (`| head`): nothing left to say
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except (Exception, KeyboardInterrupt) as exc:
        return report(exc, parser, debug)


def _log_to_stderr(debug: bool) -> None:
    """The package's warnings (a provider fallback, the int8 form chosen) as ``albert-onnx: ...`` lines."""
    log = logging.getLogger("albert_onnx")
    if not any(isinstance(h, _Stderr) for h in log.handlers):
        handler = _Stderr()
        handler.setFormatter(logging.Formatter(f"{PROG}: %(message)s"))
        log.addHandler(handler)
        log.propagate = False
    log.setLevel(logging.DEBUG if debug else logging.WARNING)


class _Stderr(logging.Handler):
    """Writes to whatever ``sys.stderr`` is when a record comes (not the one at setup)."""

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record), file=sys.stderr)
