"""The web export against the Python runtime: size of each web file, load time, and latency per
fill-mask call at 16 and 128 tokens, in Node (transformers.js on onnxruntime-node), in headless
Chromium (transformers.js on ONNX Runtime Web's WASM backend, as many threads as the page gets)
and in the Python runtime, fp32 and int8, on the same machine.

Models: the shared mini model (when ../shared exists) and the ALBERT-base shape (random
weights). Needs tests/js/node_modules (`ONNXRUNTIME_NODE_INSTALL=skip npm ci` there), Debian's
chromium and playwright for the browser column (it is left out without them).

  python benchmarks/bench_web.py           # a few minutes on 2 cores

Results: benchmarks/results/CLASS/web.{json,md}.
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, SHARED_MODEL, base_shape_model, cached_artifact, machine, md_table, timed, write_report  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
JS = ROOT / "tests" / "js"
CALLS = 30
PAGE = """<!doctype html><meta charset="utf-8">
<script type="importmap">{"imports": {
 "@huggingface/transformers": "./node_modules/@huggingface/transformers/dist/transformers.web.js",
 "onnxruntime-web/webgpu": "./node_modules/onnxruntime-web/dist/ort.webgpu.min.mjs",
 "onnxruntime-common": "./node_modules/onnxruntime-common/dist/esm/index.js"}}</script>
<script type="module">
import { env, pipeline } from "@huggingface/transformers";
env.allowRemoteModels = false; env.allowLocalModels = true; env.localModelPath = "./models/";
env.backends.onnx.wasm.wasmPaths = new URL("./node_modules/onnxruntime-web/dist/", location.href).href;
const q = new URLSearchParams(location.search);
const texts = JSON.parse(q.get("texts")), calls = Number(q.get("calls"));
let t = performance.now();
const fill = await pipeline("fill-mask", "albert", { dtype: q.get("dtype"), device: "wasm" });
const load_ms = performance.now() - t, out = [];
for (const text of texts) {
  for (let i = 0; i < 5; i++) await fill(text, { top_k: 5 });
  const times = [];
  for (let i = 0; i < calls; i++) {
    t = performance.now(); await fill(text, { top_k: 5 }); times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  out.push({ median_ms: times[Math.floor(times.length / 2)], p90_ms: times[Math.floor(times.length * 0.9)] });
}
document.title = "done";
document.body.dataset.result = JSON.stringify({ load_ms, texts: out,
  threads: env.backends.onnx.wasm.numThreads, isolated: self.crossOriginIsolated });
</script>"""


def texts_of(tokenizer: Any) -> dict[int, str]:
    """A text of about 16 and of about 128 tokens, each with one [MASK]."""
    corpus = ROOT / "tests" / "data" / "corpus_ja.txt"
    lines = [line.strip() for line in corpus.read_text(encoding="utf-8").splitlines()
             if line.strip() and "[MASK]" not in line and not line.startswith(("``", "''"))]
    out: dict[int, str] = {}
    for target in (16, 128):
        text = ""
        for line in lines:
            if len(tokenizer.encode(text + line + "[MASK]")) > target:
                break
            text += line
        k = len(text) // 2
        out[target] = text[:k] + "[MASK]" + text[k:]
    return out


def python_timing(art: Path, precision: str, texts: list[str]) -> dict[str, Any]:
    from albert_onnx import pipeline

    t = time.perf_counter()
    fill = pipeline(art, precision=precision, threads=2)
    load_ms = (time.perf_counter() - t) * 1e3
    rows = []
    for text in texts:
        call = functools.partial(fill, text, top_k=5)
        timed(call, 5)  # warm-up
        times = sorted(x * 1e3 for x in timed(call, CALLS))
        rows.append({"median_ms": statistics.median(times), "p90_ms": times[int(0.9 * len(times))]})
    return {"load_ms": load_ms, "texts": rows}


def node_timing(web: Path, dtype: str, texts: list[str]) -> dict[str, Any]:
    run = subprocess.run(["node", str(JS / "timing.mjs"), str(web), dtype, str(CALLS),
                          json.dumps(texts, ensure_ascii=False)], capture_output=True, text=True, timeout=900)
    if run.returncode != 0:
        raise RuntimeError(run.stderr[-2000:])
    return dict(json.loads(run.stdout.strip().splitlines()[-1]))


def browser_timing(web: Path, dtype: str, texts: list[str]) -> dict[str, Any] | None:
    chromium = shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if chromium is None:
        return None
    from urllib.parse import urlencode

    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp)
        (site / "models").mkdir()
        (site / "index.html").write_text(PAGE, encoding="utf-8")
        (site / "node_modules").symlink_to(JS / "node_modules")
        (site / "models" / "albert").symlink_to(web)
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
        handler.log_message = lambda *a: None  # type: ignore[attr-defined]
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, args=[
                    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"])
                page = browser.new_page()
                query = urlencode({"texts": json.dumps(texts, ensure_ascii=False), "calls": CALLS, "dtype": dtype})
                page.goto(f"http://127.0.0.1:{server.server_port}/index.html?{query}")
                page.wait_for_function("document.title === 'done'", timeout=900_000)
                result = json.loads(page.get_attribute("body", "data-result") or "{}")
                browser.close()
        finally:
            server.shutdown()
    return dict(result)


def main() -> int:
    from albert_onnx.tokenizer import Tokenizer

    if not (JS / "node_modules" / "@huggingface" / "transformers").exists():
        print("transformers.js is not installed: cd tests/js && ONNXRUNTIME_NODE_INSTALL=skip npm ci")
        return 2
    models: list[tuple[str, Path]] = []
    if SHARED_MODEL.exists():
        models.append(("shared mini (fill-mask)", SHARED_MODEL))
    models.append(("ALBERT-base shape (fill-mask)", base_shape_model(CACHE)))
    results, sizes = [], []
    for label, folder in models:
        art = cached_artifact(folder, CACHE / f"web-{folder.name}", quantize="int8", int8_min_agreement=0.0, web=True)
        web = art / "web"
        for f in sorted(web.rglob("*")):
            if f.is_file():
                sizes.append([label, f.relative_to(web).as_posix(), round(f.stat().st_size / 1e6, 3)])
        texts = texts_of(Tokenizer.from_pretrained(art))
        for precision, dtype in (("fp32", "fp32"), ("int8", "q8")):
            runs = {"Python runtime (2 threads)": python_timing(art, precision, list(texts.values())),
                    "transformers.js, Node": node_timing(web, dtype, list(texts.values())),
                    "transformers.js, Chromium WASM": browser_timing(web, dtype, list(texts.values()))}
            for name, r in runs.items():
                if r is None:
                    continue
                results.append({"model": label, "precision": precision, "runtime": name, **r})
                print(label, precision, name, json.dumps(r), flush=True)
    info = machine(2)
    rows = [[r["model"], r["precision"], r["runtime"] + (f" ({r['threads']} threads)" if "threads" in r else ""),
             round(r["load_ms"]), *(round(x[k], 2) for x in r["texts"] for k in ("median_ms", "p90_ms"))]
            for r in results]
    md = (f"# The web export against the Python runtime ({info['date']})\n\n{info['cpu']}, CPU class "
          f"**{info['cpu_class']}**; fill-mask, top 5, one text a call, {CALLS} calls after 5 warm-ups.\n\n"
          + md_table(["model", "precision", "runtime", "load ms", "16 tokens median ms", "p90", "128 tokens median ms",
                      "p90"], rows)
          + "\nSizes of the web files:\n\n" + md_table(["model", "file", "MB"], sizes))
    j, m = write_report("web", {"machine": info, "results": results, "sizes": sizes}, md)
    print(md)
    print(f"wrote {j} and {m}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
