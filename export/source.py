"""Load an ALBERT checkpoint for a task, and its tokenizer files, from a folder or the hub."""

from __future__ import annotations

import logging
import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from albert_onnx.artifact import DEFAULT_SOURCE
from albert_onnx.errors import AlbertOnnxError

__all__ = ["DEFAULT_SOURCE", "ExportError", "Source", "load_source"]
TOKENIZER_FILES = ("spiece.model", "tokenizer_config.json", "special_tokens_map.json",
                   "tokenizer.json")


class ExportError(AlbertOnnxError):
    """The export cannot proceed or its result failed validation."""


@dataclass
class Source:
    name: str
    revision: str | None  # as asked for (branch, tag or commit), None for the default
    commit: str | None  # the hub commit it resolved to; None for a local folder
    model: Any  # the transformers model class of ``task``
    tokenizer_dir: Path
    task: str
    architecture: str | None  # config.architectures[0], as the checkpoint names itself


def load_source(source: str, workdir: Path, revision: str | None = None, task: str = "auto") -> Source:
    """Load the model class of ``task`` (``auto``: from the checkpoint's architecture;
    safetensors, or torch weights with ``weights_only``) and gather its tokenizer files into
    ``workdir``."""
    import torch
    from transformers import AlbertConfig

    from .heads import model_class, resolve_task

    local = Path(source)
    is_local = local.is_dir()
    if not is_local and (local.exists() or source.startswith((".", "/")) or source.count("/") > 1):
        raise ExportError(f"source {source!r} is neither a model folder nor a hub id "
                          "(like 'ken11/albert-base-japanese-v1')")
    hub_kwargs: dict[str, Any] = {"revision": revision} if revision else {}
    unreachable = None if is_local else _hub_unreachable()
    if unreachable:  # no host to retry against for half a minute: the hub's cache alone, at once
        hub_kwargs["local_files_only"] = True
    try:
        with _quiet_hub():
            config = AlbertConfig.from_pretrained(source, **hub_kwargs)
    except (OSError, ValueError) as exc:
        where = "folder" if is_local else "Hugging Face hub id"
        reason = (f"the hub is out of reach ({unreachable}) and the model is not in the local hub cache"
                  if unreachable else str(exc).splitlines()[0][:300])
        raise ExportError(f"cannot load an ALBERT config from {where} {source!r}: {reason}"
                          + ("" if is_local else "; offline? pass a local model folder")) from None
    if config.model_type != "albert":
        raise ExportError(f"{source!r} is a {config.model_type!r} model; only ALBERT is supported")
    task = resolve_task(task, config.architectures, source)
    cls = model_class(task)
    try:
        extra = {"add_pooling_layer": False} if task == "feature-extraction" else {}  # unused
        with _quiet_hub():
            model, loading = cls.from_pretrained(source, dtype=torch.float32, output_loading_info=True, **extra,
                                                 **hub_kwargs)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ExportError(f"cannot load {cls.__name__} weights from {source!r}: "
                          f"{str(exc).splitlines()[0][:300]}") from None
    new_head = sorted(k for k in loading.get("missing_keys", []) if not k.startswith("albert."))
    if new_head and task != "feature-extraction":  # a head the checkpoint does not have would be random numbers
        own = resolve_task("auto", config.architectures, source) if config.architectures else None
        valid = sorted({"feature-extraction", *([own] if own else [])})
        raise ExportError(f"{source!r} has no {task} head (its architecture is {config.architectures}; "
                          f"{', '.join(new_head)} would be random weights); valid --task for it: {valid}")
    model.eval()
    tok_dir = workdir / "tokenizer"
    tok_dir.mkdir(parents=True)
    for name in TOKENIZER_FILES:
        if is_local:
            if (local / name).is_file():
                shutil.copyfile(local / name, tok_dir / name)
        else:
            _download(source, name, revision, tok_dir, offline=bool(unreachable))
    if not (tok_dir / "spiece.model").is_file():
        raise ExportError(f"{source!r} has no spiece.model; the runtime needs the SentencePiece model")
    commit = getattr(config, "_commit_hash", None) if not is_local else None
    arch = config.architectures[0] if config.architectures else None
    return Source(source, revision, commit, model, tok_dir, task, arch)


def _hub_unreachable() -> str | None:
    """Why the hub's host cannot be reached at all (its name does not resolve), or None. Set
    ``HF_HUB_OFFLINE=1`` and the hub library itself reads its cache alone."""
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = urlparse(endpoint).hostname or endpoint
    try:
        socket.getaddrinfo(host, 443)
    except socket.gaierror as exc:
        return f"{host}: {exc.strerror or exc}"
    except UnicodeError as exc:  # a name no resolver takes
        return f"{host}: {exc}"
    return None


@contextmanager
def _quiet_hub() -> Iterator[None]:
    """No retry warnings of the hub library, nor transformers' "newly initialized" ones, on the
    terminal: the export's own error says what failed."""
    loggers = [logging.getLogger(name) for name in ("huggingface_hub", "transformers")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _download(repo: str, name: str, revision: str | None, dest: Path, offline: bool = False) -> None:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils import EntryNotFoundError

    try:
        with _quiet_hub():
            path = hf_hub_download(repo, name, revision=revision, local_files_only=offline)
    except EntryNotFoundError:
        return
    except Exception as exc:  # network and hub errors come in many types
        if name == "spiece.model":
            raise ExportError(f"cannot download {name} of {repo!r}: {exc}") from None
        return
    shutil.copyfile(path, dest / name)
