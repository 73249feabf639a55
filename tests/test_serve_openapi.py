"""The server's published API: `/openapi.json` is valid OpenAPI 3.1 for every task, every real
answer of every route conforms to the schema it documents, `/docs` and `/` are served from the
package; in the slow run, schemathesis against live servers finds no 5xx and no nonconforming
answer."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from albert_onnx.serve import create_app

from .conftest import head_artifact
from .serving import Server, asgi_call
from .test_serve import PLAIN, TEXTS

pytest.importorskip("uvicorn", reason="uvicorn is not installed: pip install -e '.[serve]'")
CHECKERS = "pip install -e '.[test]'"

CONTEXT = "".join(PLAIN)
CALLS: dict[str, list[tuple[str, str, Any]]] = {  # per head: real requests of each route it serves
    "fill-mask": [("POST", "/predict", {"inputs": TEXTS[0]}),
                  ("POST", "/predict", {"inputs": TEXTS, "parameters": {"top_k": 2}}),
                  ("POST", "/predict", {"inputs": "[MASK]は[MASK]", "parameters": {"targets": ["猫"]}}),
                  ("POST", "/tokenize", {"inputs": TEXTS}), ("POST", "/decode", {"ids": [[2, 10, 3], [5]]})],
    "cls": [("POST", "/predict", {"inputs": PLAIN[0]}),
            ("POST", "/predict", {"inputs": [PLAIN[0], {"text": PLAIN[1], "text_pair": PLAIN[2]}],
                                  "parameters": {"top_k": None}}),
            ("POST", "/predict", {"inputs": [[PLAIN[0]], [PLAIN[1], PLAIN[2]]], "raw_scores": True}),
            ("POST", "/predict", {"inputs": PLAIN[0], "truncate": True})],
    "regression": [("POST", "/rerank", {"query": PLAIN[0], "texts": PLAIN, "return_text": True})],
    "ner": [("POST", "/predict", {"inputs": PLAIN[2]}),
            ("POST", "/predict", {"inputs": PLAIN, "parameters": {"aggregation_strategy": "simple"}})],
    "qa": [("POST", "/predict", {"inputs": {"question": "猫は?", "context": CONTEXT}}),
           ("POST", "/predict", {"inputs": {"question": "猫は?", "context": CONTEXT}, "parameters": {"top_k": 2}}),
           ("POST", "/predict", {"inputs": [{"question": "猫は?", "context": CONTEXT}] * 2})],
    "mc": [("POST", "/predict", {"inputs": {"question": "吾輩は", "choices": ["猫", "犬"]}}),
           ("POST", "/predict", {"inputs": [{"question": "吾輩は", "choices": ["猫", "犬"]}] * 2})],
    "nli": [("POST", "/predict", {"inputs": PLAIN[0], "parameters": {"candidate_labels": ["猫", "雨"]}}),
            ("POST", "/predict", {"inputs": PLAIN[:2], "parameters": {"candidate_labels": "猫"}}),
            ("POST", "/rerank", {"query": PLAIN[0], "texts": PLAIN})],
    "encoder": [("POST", "/predict", {"inputs": PLAIN[0]}),
                ("POST", "/predict", {"inputs": PLAIN, "parameters": {"pooling": "none"}}),
                ("POST", "/predict", {"inputs": {"source_sentence": PLAIN[0], "sentences": PLAIN}}),
                ("POST", "/embed", {"inputs": PLAIN}), ("POST", "/embed_all", {"inputs": PLAIN[0]}),
                ("POST", "/v1/embeddings", {"input": PLAIN, "model": "MODEL", "encoding_format": "base64"}),
                ("POST", "/v1/embeddings", {"input": PLAIN[0], "model": "MODEL"}),
                ("GET", "/v1/models", None), ("GET", "/v1/models/MODEL", None),
                ("POST", "/v1/embeddings", {"input": "x", "model": "other"})],
}
ALWAYS = [("GET", "/health", None), ("GET", "/ready", None), ("GET", "/info", None), ("GET", "/metrics", None),
          ("POST", "/predict", {"inputs": 5}), ("POST", "/predict", b"{"), ("GET", "/openapi.json", None)]


def _resolve(schema: Any, doc: dict[str, Any]) -> Any:
    if isinstance(schema, dict):
        if "$ref" in schema:
            return _resolve(doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]], doc)
        return {k: _resolve(v, doc) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_resolve(v, doc) for v in schema]
    return schema


@pytest.mark.parametrize("head", list(CALLS))
def test_every_answer_conforms_to_the_document(tiny_artifact: Path, spm_albert: Path, heads_root: Path,
                                               head: str) -> None:
    validator = pytest.importorskip("openapi_spec_validator", reason=f"openapi-spec-validator: {CHECKERS}")
    jsonschema = pytest.importorskip("jsonschema", reason=f"jsonschema: {CHECKERS}")
    art = tiny_artifact if head == "fill-mask" else head_artifact(head, spm_albert, heads_root)[1]
    app = create_app(art, task="zero-shot-classification" if head == "nli" else None)
    if head == "nli":  # the same artifact also as a classifier that reranks
        app2 = create_app(art)
    try:
        async def run() -> None:
            status, _, raw = await asgi_call(app, "GET", "/openapi.json", None)
            doc = json.loads(raw)
            validator.validate(doc)
            assert set(doc["paths"]) == set(app.info["routes"])
            checked = 0
            for method, path, body in ALWAYS + CALLS[head]:
                target = app2 if head == "nli" and path == "/rerank" else app
                path = path.replace("MODEL", art.name)
                body = json.loads(json.dumps(body).replace("MODEL", art.name)) if isinstance(body, dict) else body
                status, media, raw = await asgi_call(target, method, path, body)
                tdoc = doc if target is app else json.loads((await asgi_call(target, "GET", "/openapi.json", None))[2])
                template = "/v1/models/{model}" if path.startswith("/v1/models/") else path
                operation = tdoc["paths"][template][method.lower()]
                assert str(status) in operation["responses"], (path, status)
                content = operation["responses"][str(status)]["content"]
                assert media.split(";")[0] in content, (path, media)
                schema = _resolve(content[media.split(";")[0]]["schema"], tdoc)
                value = json.loads(raw) if media.startswith("application/json") else raw.decode()
                jsonschema.Draft202012Validator(schema).validate(value)
                checked += status == 200
            assert checked >= len(CALLS[head]) - 1
        asyncio.run(run())
    finally:
        app.worker.close()
        if head == "nli":
            app2.worker.close()


def test_pages_ship_with_the_package(tiny_artifact: Path) -> None:
    app = create_app(tiny_artifact)
    try:
        for path in ("/docs", "/"):
            status, media, raw = asyncio.run(asgi_call(app, "GET", path, None))
            page = raw.decode()
            assert status == 200 and media.startswith("text/html") and "<script>" in page
            assert "http://" not in page and "https://" not in page  # no CDN: every asset is the page itself
        assert "/" not in create_app(tiny_artifact, ui=False).info["routes"]
    finally:
        app.worker.close()


@pytest.mark.slow
@pytest.mark.parametrize("head", ["fill-mask", "cls", "encoder", "qa"])
def test_schemathesis_finds_no_5xx_and_no_nonconforming_answer(tiny_artifact: Path, spm_albert: Path,
                                                                 heads_root: Path, head: str) -> None:
    pytest.importorskip("schemathesis", reason=f"schemathesis is not installed: {CHECKERS}")
    art = tiny_artifact if head == "fill-mask" else head_artifact(head, spm_albert, heads_root)[1]
    server = Server(art)
    try:
        run = subprocess.run([sys.executable, "-m", "schemathesis.cli", "run",
                              f"http://127.0.0.1:{server.port}/openapi.json", "--checks",
                              "not_a_server_error,response_schema_conformance,status_code_conformance,"
                              "content_type_conformance", "--max-examples", "40", "--generation-deterministic"],
                             capture_output=True, text=True, timeout=600)
    finally:
        server.stop()
    assert run.returncode == 0, run.stdout[-3000:]
    assert " passed" in run.stdout and "failed" not in run.stdout.split("SUMMARY")[-1]
