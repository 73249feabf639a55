"""examples/web/index.html in headless Chromium (Debian's `chromium`): transformers.js on the
WASM backend loads the web export, every asset served from the loopback, and fills the mask as
you type; the top answer on the page is the Python runtime's.

ALBERT_ONNX_SCREENSHOTS=DIR saves the page there; ALBERT_ONNX_WEB_ARTIFACT=DIR uses that artifact
(exported with --web) instead of the test's random-weight one."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

import pytest

from albert_onnx import pipeline

from .conftest import CHROMIUM, launch_chromium

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
JS = ROOT / "tests" / "js" / "node_modules"


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed: apt-get install chromium")
def test_example_page_fills_the_mask_as_you_type(tiny_model: Path, tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is not installed: pip install -e '.[test]'")
    if not (JS / "@huggingface" / "transformers").exists():
        pytest.skip("transformers.js is not installed: cd tests/js && ONNXRUNTIME_NODE_INSTALL=skip npm ci")
    given = os.environ.get("ALBERT_ONNX_WEB_ARTIFACT")
    if given:
        art = Path(given)
    else:
        from albert_onnx.export import export_model

        art = Path(export_model(str(tiny_model), tmp_path / "art", web=True, log=lambda s: None))
    site = tmp_path / "site"
    (site / "models").mkdir(parents=True)
    shutil.copy2(ROOT / "examples" / "web" / "index.html", site / "index.html")
    (site / "node_modules").symlink_to(JS)
    (site / "models" / "albert").symlink_to(art / "web")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    text = "吾輩は猫である。名前は[MASK]無い。"
    try:
        with sync_api.sync_playwright() as p:
            browser = launch_chromium(p)
            page = browser.new_page(viewport={"width": 760, "height": 420})
            outside: list[str] = []
            page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(
                f"http://127.0.0.1:{server.server_port}/") else None)
            page.goto(f"http://127.0.0.1:{server.server_port}/index.html")
            page.wait_for_selector("#answers[data-top]", timeout=120_000)
            page.fill("#text", text)
            page.wait_for_selector(f"#answers[data-for='{text}']", timeout=60_000)
            top = page.get_attribute("#answers", "data-top")
            shots = os.environ.get("ALBERT_ONNX_SCREENSHOTS")
            if shots:
                page.screenshot(path=str(Path(shots) / "web-fill-mask.png"))
            browser.close()
    finally:
        server.shutdown()
    assert not outside, outside[:3]  # every asset from the loopback
    assert top == pipeline(art)(text, top_k=1)[0]["token_str"]
