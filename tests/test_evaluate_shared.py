"""`evaluate` on real data and trained heads (../shared: JGLUE v1.3 and the mini models; skipped
without it): its fp32 answers are PyTorch's, one example at a time, so its figures are those
a transformers user would compute."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from albert_onnx import evaluate, pipeline
from albert_onnx.evaluation import metrics, read_eval_data
from albert_onnx.evaluation.data import LABEL, QA
from albert_onnx.evaluation.predict import QA_OPTIONS, predict

from .conftest import NO_SHARED, SHARED

JGLUE = SHARED / "jglue"
MODELS = SHARED / "models"
pytestmark = pytest.mark.skipif(not (JGLUE.is_dir() and MODELS.is_dir()), reason=NO_SHARED)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pytest.importorskip("torch", reason="torch is not installed: pip install -e '.[export]'")
    from albert_onnx.export import export_model

    root = tmp_path_factory.mktemp("shared-eval")
    return {head: Path(export_model(str(MODELS / f"albert-ja-mini-wagahai-{head}"), root / head, quantize="int8",
                                    int8_min_agreement=0.0, log=lambda s: None)) for head in ("nli", "qa")}


def test_jnli_accuracy_equals_pytorch(exported: dict[str, Path], tmp_path: Path) -> None:
    import torch
    import transformers

    rows = [json.loads(line) for line in (JGLUE / "jnli-v1.3/test-v1.3.json").read_text(encoding="utf-8")
            .splitlines()[:150]]
    data = tmp_path / "jnli.json"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    folder = MODELS / "albert-ja-mini-wagahai-nli"
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder))
    model = transformers.AlbertForSequenceClassification.from_pretrained(str(folder)).eval()
    want = []
    with torch.no_grad():
        for r in rows:  # one example at a time
            logits = model(**tokenizer(r["sentence1"], r["sentence2"], truncation=True, return_tensors="pt")).logits
            want.append(model.config.id2label[int(logits.argmax())])
    got = [p.answer for p in predict(pipeline(exported["nli"]), LABEL, read_eval_data(data, LABEL).examples)]
    assert got == want
    report = evaluate(exported["nli"], data)
    assert report["results"]["fp32"]["accuracy"] == pytest.approx(metrics.accuracy(want, [r["label"] for r in rows]))


def test_jsquad_scores_equal_the_transformers_pipeline(exported: dict[str, Path]) -> None:
    import transformers

    data = read_eval_data(JGLUE / "jsquad-v1.3/test-v1.3.json", QA, limit=40)
    folder = MODELS / "albert-ja-mini-wagahai-qa"
    ref = transformers.pipeline("question-answering", model=str(folder), tokenizer=str(folder))
    ours = pipeline(exported["qa"])
    got = predict(ours, QA, data.examples)
    want = []
    for ex in data.examples:
        question, context = ex.inputs
        room = 128 - len(ours.tokenizer.encode(question, add_special_tokens=False)) - 3
        answer = ref(question=question, context=context, doc_stride=min(64, max(1, room // 2)), **QA_OPTIONS)
        want.append(answer)
    assert [g.answer for g in got] == [w["answer"] for w in want]
    assert np.allclose([g.raw[0] for g in got], [w["score"] for w in want], atol=1e-4)
    report = evaluate(exported["qa"], JGLUE / "jsquad-v1.3/test-v1.3.json", limit=40)
    assert report["results"]["fp32"]["f1"] == pytest.approx(
        metrics.squad_scores([w["answer"] for w in want], [ex.gold for ex in data.examples])["f1"])
