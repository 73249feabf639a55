"""The page at `/`, in headless Chromium (Debian's `chromium`) on the loopback: for each task,
type, submit, and read the answer from the page; it is the Python predictor's.

ALBERT_ONNX_SCREENSHOTS=DIR saves a screenshot per task there (docs/serve.md shows them, taken on
the shared models' artifacts named by ALBERT_ONNX_UI_ARTIFACTS=DIR: w, w-cls, w-ner, w-qa, w-mc,
w-nli, w-fe as `albert-onnx export` wrote them)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from albert_onnx import pipeline

from .conftest import CHROMIUM, head_artifact, launch_chromium
from .serving import Server

pytestmark = pytest.mark.slow

# per task: the test head, the shared artifact's folder, the fields typed, and the answer expected
CASES: dict[str, tuple[str, str, dict[str, str]]] = {
    "fill-mask": ("tiny", "w", {"text": "吾輩は[MASK]である。"}),
    "text-classification": ("cls", "w-cls", {"text": "「おい、こら」と主人が言った。"}),
    "token-classification": ("ner", "w-ner", {"text": "三毛子は車屋の黒と寒月君に会った。"}),
    "question-answering": ("qa", "w-qa", {"question": "吾輩は何ですか。",
                                          "context": "吾輩は猫である。名前はまだ無い。"}),
    "multiple-choice": ("mc", "w-mc", {"question": "吾輩は猫で", "choices": "ある。\n走った。\n晴れ。"}),
    "zero-shot-classification": ("nli", "w-nli", {"text": "吾輩は猫である。", "labels": "動物,天気,料理"}),
    "feature-extraction": ("encoder", "w-fe", {"texts": "吾輩は猫である。\n名前はまだ無い。\n今日は雨だ。"}),
}


def expected(task: str, art: Path, fields: dict[str, str]) -> str:
    """What the page shows as its top answer, from the Python predictor."""
    p = pipeline(art, task=task if task == "zero-shot-classification" else None)
    if task == "fill-mask":
        return str(p(fields["text"])[0]["token_str"])
    if task == "text-classification":
        return str(p(fields["text"], top_k=None)[0]["label"])
    if task == "token-classification":
        found = p(fields["text"], aggregation_strategy="simple")
        return f"{found[0]['word']} {found[0]['entity_group']}" if found else ""
    if task == "question-answering":
        return str(p(question=fields["question"], context=fields["context"])["answer"])
    if task == "multiple-choice":
        return str(p(fields["question"], fields["choices"].split("\n"))[0]["choice"])
    if task == "zero-shot-classification":
        return str(p(fields["text"], fields["labels"].split(","))["labels"][0])
    vectors = p(fields["texts"].split("\n")[:2], pooling="mean", normalize=True)
    return f"{float(np.dot(vectors[0], vectors[1])):.4f}"


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed: apt-get install chromium")
@pytest.mark.parametrize("task", list(CASES))
def test_page_answers_as_the_predictor(task: str, tiny_artifact: Path, spm_albert: Path, heads_root: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: "
                                                                "pip install -e '.[test]'")
    head, shared, fields = CASES[task]
    shared_dir = os.environ.get("ALBERT_ONNX_UI_ARTIFACTS")
    art = Path(shared_dir) / shared if shared_dir else \
        tiny_artifact if head == "tiny" else head_artifact(head, spm_albert, heads_root)[1]
    server = Server(art, *(["--task", task] if task == "zero-shot-classification" else []))
    try:
        with sync_api.sync_playwright() as p:
            browser = launch_chromium(p)
            page = browser.new_page(viewport={"width": 900, "height": 640})
            page.goto(f"http://127.0.0.1:{server.port}/")
            for name, value in fields.items():
                page.wait_for_selector(f"#{name}")
                page.fill(f"#{name}", value)
            page.click("#submit")
            page.wait_for_selector("#result[data-top]", timeout=30_000)
            top: Any = page.get_attribute("#result", "data-top")
            shots = os.environ.get("ALBERT_ONNX_SCREENSHOTS")
            if shots:
                page.screenshot(path=str(Path(shots) / f"serve-{task}.png"), full_page=True)
            browser.close()
    finally:
        server.stop()
    assert top == expected(task, art, fields)
