"""Export of every task: --task auto from the architecture, the manifest's task record,
fusions and shared weights per task, the int8 gate, and the CLI's predict verb."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from albert_onnx import FeatureExtractor, pipeline
from albert_onnx.artifact import load_artifact
from albert_onnx.cli import main

from .conftest import TINY, head_artifact, json_lines, make_head_folder

transformers = pytest.importorskip("transformers", reason="transformers is not installed: pip install -e '.[export]'")


@pytest.mark.parametrize("head, task, labels, problem", [
    ("cls", "text-classification", ["neg", "neu", "pos"], None),  # config without a problem type
    ("multilabel", "text-classification", ["LABEL_0", "LABEL_1", "LABEL_2", "LABEL_3"], "multi_label_classification"),
    ("regression", "text-classification", ["LABEL_0"], "regression"),
    ("ner", "token-classification", ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"], None),
    ("encoder", "feature-extraction", None, None),
])
def test_auto_task_and_manifest(spm_albert: Path, heads_root: Path, head: str, task: str,
                                labels: list[str] | None, problem: str | None) -> None:
    _, art = head_artifact(head, spm_albert, heads_root)
    m = load_artifact(art).manifest
    assert m["task"]["name"] == task and m["task"]["id2label"] == labels
    assert m["task"]["num_labels"] == (None if labels is None else len(labels))
    if task == "text-classification":
        assert m["task"]["problem_type"] == problem
    assert m["graph_info"]["fusions"]["Attention"] == TINY["num_hidden_layers"]
    assert m["graph_info"]["fusions"]["SkipLayerNormalization"] == 2 * TINY["num_hidden_layers"]
    assert m["graphs"]["fp32"]["validation"]["max_abs_diff"] <= 1e-4
    gate = m["graphs"]["int8"]["validation"]["gate"]
    assert gate["min"] == 0.0 and gate["figure"] in m["graphs"]["int8"]["validation"]
    assert m["graphs"]["int8"]["activation_scales"] == "dynamic-per-tensor"


def test_shared_layer_weights_stored_once_for_every_head(spm_albert: Path, heads_root: Path) -> None:
    onnx = pytest.importorskip("onnx", reason="onnx is not installed: pip install -e '.[export]'")
    from onnx import numpy_helper

    for head in ("cls", "ner", "encoder"):
        _, art = head_artifact(head, spm_albert, heads_root)
        seen = set()
        for init in onnx.load(str(art / "model.onnx")).graph.initializer:
            key = (init.data_type, tuple(init.dims), numpy_helper.to_array(init).tobytes())
            assert key not in seen, (head, init.name)
            seen.add(key)


def test_feature_extraction_from_an_mlm(tiny_model: Path, tmp_path: Path) -> None:
    """--task feature-extraction on a masked-LM checkpoint: the encoder alone."""
    from albert_onnx.export import export_model

    art = export_model(str(tiny_model), tmp_path / "fe", task="feature-extraction", log=lambda s: None)
    assert load_artifact(art).task["name"] == "feature-extraction"
    assert isinstance(pipeline(art), FeatureExtractor)
    model = transformers.AlbertModel.from_pretrained(str(tiny_model)).eval()
    fe = FeatureExtractor(art)
    import torch

    ids = fe.tokenizer.encode("吾輩は猫である。")
    with torch.no_grad():
        want = model(input_ids=torch.tensor([ids])).last_hidden_state[0].numpy()
    assert abs(fe("吾輩は猫である。", pooling="none") - want).max() < 1e-4


def test_unknown_architecture_lists_the_tasks(spm_albert: Path, tmp_path: Path) -> None:
    from albert_onnx.export import ExportError, export_model

    folder = make_head_folder(spm_albert, tmp_path / "other", "encoder")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["architectures"] = ["AlbertForCausalLM"]
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ExportError, match=r"'AlbertForCausalLM'.*pass --task, one of \['fill-mask', "
                                          r"'text-classification', 'token-classification', 'feature-extraction', "
                                          r"'question-answering', 'multiple-choice'\]"):
        export_model(str(folder), tmp_path / "out", log=lambda s: None)
    assert not (tmp_path / "out").exists()
    with pytest.raises(ExportError, match="unknown task 'qa'"):
        export_model(str(folder), tmp_path / "out", task="qa", log=lambda s: None)


def test_int8_gate_fails_and_writes_nothing(spm_albert: Path, heads_root: Path, tmp_path: Path) -> None:
    from albert_onnx.export import ExportError, export_model

    folder, _ = head_artifact("ner", spm_albert, heads_root)
    lines: list[str] = []
    with pytest.raises(ExportError, match=r"int8 top_label_agreement 0\.\d+ is below the gate 1"):
        export_model(str(folder), tmp_path / "gated", quantize="int8", int8_min_agreement=1.0, log=lines.append)
    assert not (tmp_path / "gated").exists() and list(tmp_path.iterdir()) == []
    assert any("gate top_label_agreement >= 1" in line for line in lines)
    with pytest.raises(ExportError, match="out of range"):
        export_model(str(folder), tmp_path / "x", quantize="int8", int8_min_agreement=1.5, log=lines.append)


def test_cli_export_task_and_predict(spm_albert: Path, heads_root: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    folder, cls_art = head_artifact("cls", spm_albert, heads_root)
    assert main(["export", str(folder), "-o", str(tmp_path / "c"), "--task", "text-classification"]) == 0
    assert "fp32 check against PyTorch: max|Δ| = " in capsys.readouterr().out
    assert main(["predict", str(cls_art), "吾輩は猫である。", "今日は雨", "--json", "--all-labels"]) == 0
    doc = json_lines(capsys.readouterr().out)
    assert doc == pipeline(cls_art)(["吾輩は猫である。", "今日は雨"], top_k=None)
    assert main(["predict", str(cls_art), "吾輩は猫", "--text-pair", "である", "--json"]) == 0
    assert json_lines(capsys.readouterr().out) == pipeline(cls_art)([{"text": "吾輩は猫", "text_pair": "である"}],
                                                                    top_k=1)
    assert main(["predict", str(cls_art), "a", "b", "--text-pair", "c"]) == 2
    assert "once per TEXT" in capsys.readouterr().err
    _, ner_art = head_artifact("ner", spm_albert, heads_root)
    assert main(["predict", str(ner_art), "東京駅から大阪へ", "--aggregation-strategy", "simple", "--json"]) == 0
    assert json_lines(capsys.readouterr().out) == [pipeline(ner_art)("東京駅から大阪へ", aggregation_strategy="simple")]
    _, enc_art = head_artifact("encoder", spm_albert, heads_root)
    assert main(["predict", str(enc_art), "東京駅", "--pooling", "mean", "--json"]) == 0
    vec = json_lines(capsys.readouterr().out)
    assert len(vec) == 1 and len(vec[0]) == TINY["hidden_size"]
    assert main(["predict", str(enc_art), "東京駅"]) == 0
    assert "32 float32" in capsys.readouterr().out
    assert main(["fill-mask", str(cls_art), "猫[MASK]"]) == 1
    assert "holds a 'text-classification' model" in capsys.readouterr().err
