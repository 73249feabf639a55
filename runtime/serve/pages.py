"""The server's two HTML pages, shipped with the package (no CDN): ``/docs``, which renders
``/openapi.json``, and ``/``, a page to try the model through the server's own routes."""

from __future__ import annotations

import functools
from importlib import resources


@functools.cache
def page(name: str) -> str:
    return resources.files(__package__).joinpath("static", f"{name}.html").read_text(encoding="utf-8")
