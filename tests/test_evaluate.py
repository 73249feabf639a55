"""`albert-onnx evaluate` and `albert_onnx.evaluate`: JGLUE's metrics on hand-made examples with
known answers (and against scipy), its files read as they are (and rows that are wrong named by
file, line and field), reports equal to the predictors run one example at a time, and the CLI's
reports and gate."""

from __future__ import annotations

import json
import math
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from albert_onnx import InputError, evaluate, pipeline
from albert_onnx.evaluation import metrics, read_eval_data
from albert_onnx.evaluation.data import CHOICE, LABEL, QA, SCORE

from .conftest import corpus_lines, head_artifact

JGLUE = Path(__file__).resolve().parents[2] / "shared" / "jglue"
TEXTS = [t for t in corpus_lines() if "[MASK]" not in t and 4 < len(t) < 60]


# ------------------------------------------------------------------------------------ metrics
@pytest.mark.parametrize("text, normalized", [
    ("東京。", "東京"), ("東京。。", "東京。"), ("The Cat!", "the cat"), ("  a \t b\n", "a b"),
    ("「東京」", "「東京」"),  # JGLUE removes ASCII punctuation only
    ("(株)ヤフー", "株ヤフー"), ("３月", "３月"), ("", ""),
])
def test_answers_are_normalized_as_jglue_does(text: str, normalized: str) -> None:
    assert metrics.normalize_answer(text) == normalized


def test_exact_match_and_character_f1_on_known_examples() -> None:
    assert metrics.exact_match("東京都。", "東京都") == 1.0
    assert metrics.exact_match("東京", "東京都") == 0.0
    assert metrics.char_f1("東京", "東京都") == pytest.approx(2 * 1.0 * (2 / 3) / (1.0 + 2 / 3))  # 0.8
    assert metrics.char_f1("京都", "東京都") == pytest.approx(0.8)  # characters, not their order
    assert metrics.char_f1("大阪", "東京") == 0.0
    assert metrics.char_f1("ああい", "あい") == pytest.approx(0.8)  # counted as multisets: 2 in common
    got = metrics.squad_scores(["東京", "大阪府", "名古屋"], [["東京都", "東京"], ["大阪"], ["京都"]])
    # example 1: best gold "東京" (EM 1, F1 1); 2: F1 0.8; 3: nothing in common
    assert got["exact_match"] == pytest.approx(100 / 3)
    assert got["f1"] == pytest.approx(100 * (1.0 + 0.8 + 0.0) / 3)


def test_accuracy_and_correlations_on_known_examples() -> None:
    assert metrics.accuracy([0, 1, 2, 2], [0, 1, 1, 2]) == 75.0
    assert metrics.pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(100.0)
    assert metrics.pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-100.0)
    assert metrics.spearman([1, 2, 3, 4], [1, 4, 9, 16]) == pytest.approx(100.0)  # monotone, not linear
    assert metrics.rank([3.0, 1.0, 3.0, 2.0]).tolist() == [3.5, 1.0, 3.5, 2.0]  # ties share their mean rank
    assert math.isnan(metrics.pearson([1, 1, 1], [1, 2, 3]))


def test_correlations_equal_scipy() -> None:
    stats = pytest.importorskip("scipy.stats", reason="scipy is not installed: pip install -e '.[test]'")
    rng = np.random.default_rng(0)
    for n in (2, 3, 10, 500):
        for ties in (False, True):
            x = rng.normal(size=n)
            y = x * rng.uniform(-1, 1) + rng.normal(size=n)
            if ties:  # JSTS's gold scores repeat: 0.0, 0.2, ..., 5.0
                x, y = np.round(x, 1), np.round(y * 2) / 2
            if np.ptp(x) == 0 or np.ptp(y) == 0:
                continue
            assert metrics.pearson(x, y) == pytest.approx(100 * stats.pearsonr(x, y)[0], abs=1e-9)
            assert metrics.spearman(x, y) == pytest.approx(100 * stats.spearmanr(x, y)[0], abs=1e-9)


# ------------------------------------------------------------------------------------ files
def _jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _squad(path: Path, qas: list[tuple[str, str, list[str]]]) -> Path:
    paragraphs = [{"context": c, "qas": [{"id": f"q{n}", "question": q, "is_impossible": False,
                                           "answers": [{"text": a, "answer_start": max(0, c.find(a))} for a in ans]}]}
                  for n, (q, c, ans) in enumerate(qas)]
    path.write_text(json.dumps({"version": "v1.0", "data": [{"title": "t", "paragraphs": paragraphs}]},
                               ensure_ascii=False), encoding="utf-8")
    return path


def test_jglue_formats_are_read_as_they_are(tmp_path: Path) -> None:
    jcqa = _jsonl(tmp_path / "jcqa.json", [{"q_id": 0, "question": "猫は何を飲む？", "choice0": "水", "choice1": "石",
                                             "choice2": "砂", "choice3": "鉄", "choice4": "紙", "label": 0}])
    data = read_eval_data(jcqa, CHOICE)
    assert data.format == "jcommonsenseqa"
    assert data.examples[0].inputs == ("猫は何を飲む？", ["水", "石", "砂", "鉄", "紙"])
    jsts = _jsonl(tmp_path / "jsts.json", [{"sentence_pair_id": "0", "yjcaptions_id": "1", "sentence1": "猫がいる。",
                                             "sentence2": "猫が寝ている。", "label": 3.2},
                                            {"sentence_pair_id": "1", "yjcaptions_id": "2", "sentence1": "犬。",
                                             "sentence2": "雨。", "label": 0}])
    data = read_eval_data(jsts, SCORE)
    assert data.format == "jsts" and [e.gold for e in data.examples] == [3.2, 0.0]
    jnli = _jsonl(tmp_path / "jnli.json", [{"sentence_pair_id": "0", "yjcaptions_id": "1", "sentence1": "猫がいる。",
                                             "sentence2": "動物がいる。", "label": "entailment"}])
    data = read_eval_data(jnli, LABEL)
    assert data.format == "jnli" and data.examples[0].inputs == ("猫がいる。", "動物がいる。")
    marc = _jsonl(tmp_path / "marc.json", [{"sentence": "良い商品でした。", "label": "positive"}])
    data = read_eval_data(marc, LABEL)
    assert data.format == "marc-ja" and data.examples[0].inputs == ("良い商品でした。", None)
    squad = _squad(tmp_path / "jsquad.json", [("どこ？", "東京にある。", ["東京", "東京"])])
    data = read_eval_data(squad, QA)
    assert data.format == "jsquad" and data.examples[0].gold == ["東京", "東京"]
    assert data.examples[0].where == "question id q0"
    generic = _jsonl(tmp_path / "qa.jsonl", [{"text": "どこ？", "text_pair": "東京にある。", "answers": ["東京"]},
                                              {"question": "何？", "context": "猫である。",
                                               "answers": {"text": ["猫"], "answer_start": [0]}}])
    assert [e.gold for e in read_eval_data(generic, QA).examples] == [["東京"], ["猫"]]
    assert len(read_eval_data(jsts, SCORE, limit=1).examples) == 1


def test_parquet_in_the_generic_form(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow", reason="pyarrow is not installed: pip install -e '.[batch]'")
    import pyarrow.parquet as pq

    path = tmp_path / "dev.parquet"
    pq.write_table(pa.table({"text": ["猫。", "犬。"], "text_pair": ["動物。", None], "label": ["neg", "pos"]}), path)
    data = read_eval_data(path, LABEL)
    assert data.format == "parquet" and [e.inputs for e in data.examples] == [("猫。", "動物。"), ("犬。", None)]


BAD_ROWS = [
    # (kind, file content, what the error must say)
    (LABEL, '{"text": "猫。", "label": "neg"}\n{"text": "", "label": "neg"}\n',
     r"\.jsonl:2: field 'text' must be a non-empty string"),
    (LABEL, '{"text": "猫。", "label": "neg"}\n{"text": "犬。"}\n', r"\.jsonl:2: field 'label' is missing"),
    (LABEL, '{"text": "猫。", "label": true}\n', r"\.jsonl:1: field 'label' must be a label name or a label id"),
    (SCORE, '{"sentence1": "猫。", "sentence2": "犬。", "label": "high"}\n', r":1: field 'label' must be a number"),
    (LABEL, '{"text": "猫。", "label": "neg"}\nnot json\n', r"\.jsonl:2: not a JSON object"),
    (LABEL, '[1, 2]\n', r"\.jsonl:1: a line must hold a JSON object, not list"),
    (CHOICE, '{"question": "何？", "choices": ["a", "b"], "label": 2}\n',
     r":1: field 'label' must be the index of the right choice, 0\.\.1"),
    (CHOICE, '{"question": "何？", "choices": "ab", "label": 0}\n',
     r":1: field 'choices' must be a list of two or more"),
    (QA, '{"question": "何？", "context": "猫。", "answers": []}\n', r":1: field 'answers' is empty"),
    (QA, '{"question": "何？", "answers": ["猫"]}\n', r":1: field 'context' or 'text_pair' is missing"),
    (LABEL, '{"question": "何？", "choice0": "a", "choice1": "b", "label": 0}\n',
     r"JCommonsenseQA data \(multiple choice\)"),
    (LABEL, "", r"no examples in the file"),
]


@pytest.mark.parametrize("kind, content, message", BAD_ROWS)
def test_bad_rows_name_file_line_and_field(tmp_path: Path, kind: str, content: str, message: str) -> None:
    path = tmp_path / "dev.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        read_eval_data(path, kind)


def test_bad_bytes_and_squad_fields(tmp_path: Path) -> None:
    path = tmp_path / "dev.jsonl"
    path.write_bytes(b'{"text": "ok", "label": 0}\n{"text": "\xff", "label": 0}\n')
    with pytest.raises(InputError, match=r"dev\.jsonl:2: not UTF-8 text"):
        read_eval_data(path, LABEL)
    squad = _squad(tmp_path / "jsquad.json", [("どこ？", "東京。", ["東京"])])
    doc = json.loads(squad.read_text(encoding="utf-8"))
    del doc["data"][0]["paragraphs"][0]["qas"][0]["question"]
    squad.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(InputError, match=r"jsquad\.json: question id q0: field 'question' must be a non-empty string"):
        read_eval_data(squad, QA)
    with pytest.raises(InputError, match=r"JSQuAD data \(question answering\), but the artifact's task needs texts"):
        read_eval_data(_squad(tmp_path / "ok.json", [("どこ？", "東京。", ["東京"])]), LABEL)


@pytest.mark.skipif(not JGLUE.is_dir(), reason="../shared/jglue is not here (JGLUE v1.3 is not part of the repository)")
def test_the_shared_jglue_files_read_whole() -> None:
    counts = {("jcommonsenseqa-v1.3/test-v1.3.json", CHOICE): 1118, ("jsts-v1.3/test-v1.3.json", SCORE): 1589,
              ("jnli-v1.3/test-v1.3.json", LABEL): 2508, ("jcommonsenseqa-v1.3/train-v1.3.json", CHOICE): 8939,
              ("jsts-v1.3/train-v1.3.json", SCORE): 12451}
    for (name, kind), n in counts.items():
        assert len(read_eval_data(JGLUE / name, kind).examples) == n, name
    squad = read_eval_data(JGLUE / "jsquad-v1.3/test-v1.3.json", QA)
    assert squad.format == "jsquad" and len(squad.examples) > 4000 and all(e.gold for e in squad.examples)


# ------------------------------------------------------------------------------------ evaluate
def _by_hand(head: str, art: Path, path: Path) -> dict[str, dict[str, float]]:
    """The metric from the predictors, one example at a time."""
    out = {}
    for precision in ("fp32", "int8"):
        p = pipeline(art, precision=precision)
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        if head == "cls":
            labels = p.labels
            answers = [p(r["text"] if "text_pair" not in r else {"text": r["text"], "text_pair": r["text_pair"]},
                         truncation=True, top_k=1)[0]["label"] for r in rows]
            gold = [r["label"] if isinstance(r["label"], str) else labels[r["label"]] for r in rows]
            out[precision] = {"accuracy": metrics.accuracy(answers, gold)}
        elif head == "regression":
            values = [p({"text": r["sentence1"], "text_pair": r["sentence2"]}, function_to_apply="none")["score"]
                      for r in rows]
            gold = [r["label"] for r in rows]
            out[precision] = {"pearson": metrics.pearson(values, gold), "spearman": metrics.spearman(values, gold)}
        elif head == "mc":
            picks = [p(r["question"], [r[f"choice{i}"] for i in range(5)])[0]["index"] for r in rows]
            out[precision] = {"accuracy": metrics.accuracy(picks, [r["label"] for r in rows])}
        else:
            answers = [p(question=r["question"], context=r["context"], max_answer_len=30, align_to_words=False,
                         doc_stride=16)["answer"] for r in rows]
            out[precision] = metrics.squad_scores(answers, [r["answers"] for r in rows])
    return out


def _data(head: str, tmp_path: Path) -> Path:
    rng = random.Random(3)
    rows: list[dict[str, Any]]
    if head == "cls":
        rows = [{"text": t, "label": rng.choice(["neg", "neu", "pos"])} for t in TEXTS[:30]]
        rows += [{"text": a, "text_pair": b, "label": rng.randrange(3)} for a, b in zip(TEXTS[30:40], TEXTS[40:50])]
    elif head == "regression":
        rows = [{"sentence_pair_id": str(n), "yjcaptions_id": "0", "sentence1": a, "sentence2": b,
                 "label": round(rng.uniform(0, 5), 1)} for n, (a, b) in enumerate(zip(TEXTS[:40], TEXTS[1:41]))]
    elif head == "mc":
        rows = [{"q_id": n, "question": q, **{f"choice{i}": TEXTS[(n * 5 + i + 7) % len(TEXTS)][:12] for i in range(5)},
                 "label": rng.randrange(5)} for n, q in enumerate(TEXTS[:25])]
    else:
        rows = []
        for n, context in enumerate(TEXTS[:25]):
            k = rng.randrange(len(context) - 2)
            rows.append({"question": TEXTS[n + 30][:10], "context": context, "answers": [context[k:k + 3]]})
    return _jsonl(tmp_path / f"{head}.jsonl", rows)


@pytest.mark.parametrize("head", ["cls", "regression", "mc", "qa"])
def test_evaluate_equals_the_predictors_one_example_at_a_time(head: str, spm_albert: Path, heads_root: Path,
                                                             tmp_path: Path) -> None:
    _, art = head_artifact(head, spm_albert, heads_root)
    path = _data(head, tmp_path)
    report = evaluate(art, path)
    want = _by_hand(head, art, path)
    assert list(report["results"]) == ["fp32", "int8"] and report["baseline"] == "fp32"
    for precision, figures in want.items():
        for name, value in figures.items():
            assert report["results"][precision][name] == pytest.approx(value, abs=1e-9), (precision, name)
            assert report["results"][precision]["ms_per_example"] > 0
    for name in report["metrics"]:
        assert report["drop"]["int8"][name] == pytest.approx(want["fp32"][name] - want["int8"][name], abs=1e-9)
    assert report["metric"] == {"cls": "accuracy", "regression": "pearson", "mc": "accuracy", "qa": "f1"}[head]
    assert report["data"]["examples"] == len(path.read_text(encoding="utf-8").splitlines())
    assert 0 <= report["disagreements"]["count"] <= report["disagreements"]["of"]
    assert report["machine"]["cpu_class"]


def test_labels_the_model_does_not_have_are_named(spm_albert: Path, heads_root: Path, tmp_path: Path) -> None:
    _, art = head_artifact("cls", spm_albert, heads_root)
    path = _jsonl(tmp_path / "dev.jsonl", [{"text": "猫。", "label": "neg"}, {"text": "犬。", "label": "positive"}])
    with pytest.raises(InputError, match=r"dev\.jsonl:2: label 'positive' is not one of the model's labels "
                                         r"\['neg', 'neu', 'pos'\]"):
        evaluate(art, path)
    _, fill = head_artifact("encoder", spm_albert, heads_root)
    with pytest.raises(InputError, match="evaluate takes question-answering, multiple-choice and text-classification"):
        evaluate(fill, path)


# ------------------------------------------------------------------------------------ the CLI
def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "albert_onnx.cli", *args], capture_output=True, text=True,
                          timeout=300)


def _skewed_int8(art: Path, out: Path, label: int) -> Path:
    """A copy of ``art`` whose int8 graph favours ``label``: a real drop to gate on."""
    import onnx
    from onnx import numpy_helper

    from albert_onnx.artifact import sha256_file

    shutil.copytree(art, out)
    model = onnx.load(str(out / "model_int8.onnx"))
    bias = [i for i in model.graph.initializer if "classifier" in i.name and "bias" in i.name]
    assert bias, [i.name for i in model.graph.initializer]
    values = numpy_helper.to_array(bias[0]).copy()
    values[label] += 1000.0
    bias[0].CopyFrom(numpy_helper.from_array(values, bias[0].name))
    onnx.save(model, str(out / "model_int8.onnx"))
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"]["model_int8.onnx"] = {"sha256": sha256_file(out / "model_int8.onnx"),
                                            "bytes": (out / "model_int8.onnx").stat().st_size}
    (out / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return out


def test_cli_reports_and_the_gate(spm_albert: Path, heads_root: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnx", reason="onnx is not installed: pip install -e '.[export]'")
    _, art = head_artifact("cls", spm_albert, heads_root)
    gold = pipeline(art)([t for t in TEXTS[:40]])
    path = _jsonl(tmp_path / "dev.jsonl", [{"text": t, "label": g["label"]} for t, g in zip(TEXTS[:40], gold)])
    run = _cli("evaluate", str(art), str(path), "--json", str(tmp_path / "r.json"), "--markdown",
               str(tmp_path / "r.md"), "--fail-over", "100")
    assert run.returncode == 0, run.stderr
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert report["results"]["fp32"]["accuracy"] == 100.0 and report["gate"]["failed"] is False
    md = (tmp_path / "r.md").read_text(encoding="utf-8")
    assert "| precision | accuracy | ms / example |" in md and "Gate passed" in md
    assert "fp32  accuracy 100.00" in run.stdout

    labels = pipeline(art).labels
    rare = min(range(len(labels)), key=lambda i: sum(g["label"] == labels[i] for g in gold))
    run = _cli("evaluate", str(art), str(path), "--json", "-", "--quiet")  # stdout: the JSON report alone
    assert run.returncode == 0 and json.loads(run.stdout)["results"]["fp32"]["accuracy"] == 100.0
    skewed = _skewed_int8(art, tmp_path / "skewed", rare)
    run = _cli("evaluate", str(skewed), str(path), "--fail-over", "0.5", "--json", str(tmp_path / "s.json"))
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1].startswith("albert-onnx: error: Gate FAILED: int8 loses ")
    assert "Traceback" not in run.stderr
    report = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))
    assert report["drop"]["int8"]["accuracy"] > 0.5 and report["disagreements"]["count"] > 0

    bad = _jsonl(tmp_path / "bad.jsonl", [{"text": "猫。", "label": "neg"}, {"text": "犬。", "label": 7}])
    run = _cli("evaluate", str(art), str(bad), "--json", str(tmp_path / "bad.json"))
    assert run.returncode == 2 and "bad.jsonl:2: label id 7 is out of range" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and not (tmp_path / "bad.json").exists()
    for args, message in ((["--limit", "0"], "--limit"), (["--fail-over", "-1"], "--fail-over"),
                          (["--precision", "fp16"], "no such graph")):
        run = _cli("evaluate", str(art), str(path), *args)
        assert run.returncode == 2 and message in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr


# ------------------------------------------------------------------------------------ accuracy-aware int8
def _qa_gold_from_fp32(art: Path, path: Path, n: int) -> Path:
    """Questions on corpus lines whose gold answer is fp32's own (as evaluate asks it): fp32
    scores 100, and every span int8 moves costs it points."""
    from albert_onnx.evaluation.predict import predict

    rows = [{"question": TEXTS[-k - 1][:8], "context": c, "answers": ["?"]} for k, c in enumerate(TEXTS[:n])]
    answers = predict(pipeline(art), QA, read_eval_data(_jsonl(path, rows), QA).examples)
    # (an answer that normalizes to nothing, such as "。", scores F1 0 even against itself, as in SQuAD v1.1)
    return _jsonl(path, [{**r, "answers": [a.answer]} for r, a in zip(rows, answers)
                         if metrics.normalize_answer(a.answer)])


def test_accuracy_aware_int8_keeps_products_in_float_until_the_drop_holds(spm_albert: Path, heads_root: Path,
                                                                          tmp_path: Path) -> None:
    from albert_onnx.artifact import load_artifact
    from albert_onnx.export import export_model

    folder, art = head_artifact("qa", spm_albert, heads_root)
    data = _qa_gold_from_fp32(art, tmp_path / "dev.jsonl", 120)
    plain = evaluate(art, data)
    assert plain["results"]["fp32"]["f1"] == pytest.approx(100.0)
    assert plain["drop"]["int8"]["f1"] > 0.5, "the test needs int8 to lose points here"
    lines: list[str] = []
    out = export_model(str(folder), tmp_path / "aware", quantize="int8", eval_data=data, max_drop=0.5,
                       log=lines.append)
    record = load_artifact(out).manifest["graphs"]["int8"]["accuracy"]
    assert record["data"]["sha256"] == plain["data"]["sha256"] and record["metric"] == "f1"
    assert record["drop"] <= 0.5 and record["max_drop"] == 0.5 and record["float_products"]
    assert record["steps"][0]["drop"] == pytest.approx(plain["drop"]["int8"]["f1"])  # the plain int8 at the start
    assert [s["float_products"] for s in record["steps"][1:]] == [record["float_products"][:k + 1]
                                                                 for k in range(len(record["float_products"]))]
    assert len(record["ranking"]) >= len(record["float_products"])
    settings = load_artifact(out).manifest["graphs"]["int8"]["settings"]
    assert set(record["float_nodes"]) <= set(settings["float_nodes"])
    assert any(line.startswith("accuracy on dev.jsonl") for line in lines)
    again = evaluate(out, data)  # evaluate re-checks the record: the same data, the same figures
    assert again["export_record"]["same_data"] and again["export_record"]["equal"]
    assert again["export_record"]["within_max_drop"]
    assert again["results"]["int8"]["f1"] == pytest.approx(record["int8"], abs=1e-9)


def test_accuracy_aware_int8_without_need_changes_nothing(spm_albert: Path, heads_root: Path, tmp_path: Path) -> None:
    from albert_onnx.artifact import load_artifact
    from albert_onnx.export import export_model

    folder, art = head_artifact("mc", spm_albert, heads_root)
    data = _data("mc", tmp_path)
    out = export_model(str(folder), tmp_path / "aware", quantize="int8", eval_data=data, max_drop=100.0,
                       log=lambda s: None)
    manifest = load_artifact(out).manifest
    record = manifest["graphs"]["int8"]["accuracy"]
    assert record["float_products"] == [] and record["ranking"] == []
    before = load_artifact(art).manifest["graphs"]["int8"]
    assert manifest["graphs"]["int8"]["settings"]["float_nodes"] == before["settings"]["float_nodes"]
    assert manifest["graphs"]["int8"]["validation"]["gate"] == "replaced by the accuracy on --eval-data"


def test_accuracy_aware_int8_that_cannot_hold_fails_with_the_best_drop(tmp_path: Path) -> None:
    from albert_onnx.export.accuracy import accuracy_aware_int8
    from albert_onnx.export.source import ExportError

    path = _jsonl(tmp_path / "dev.jsonl", [{"text": f"文{i}。", "label": "a"} for i in range(10)])
    data = read_eval_data(path, LABEL)

    class Fake:  # fp32 right everywhere; int8 wrong on 3 examples, whatever is kept in float
        task, labels = "text-classification", ["a", "b"]

        def __init__(self, precision: str) -> None:
            self.precision = precision

        def logits(self, inputs: list[Any], truncation: bool = False) -> list[np.ndarray]:
            wrong = self.precision == "int8"
            return [np.array([0.0, 1.0] if wrong and str(x).endswith(("1。", "2。", "3。")) else [1.0, 0.0])
                    for x in inputs]

    with pytest.raises(ExportError, match=r"int8 cannot hold a drop of 0\.5 points of accuracy on dev\.jsonl: "
                                          r"the best reached was 30\.00 \(fp32 100\.00, int8 70\.00\)"):
        accuracy_aware_int8(data, 0.5, [], ["Attention_0", "Attention_1"], lambda kept: None, Fake,
                            lambda s: None)
    with pytest.raises(ExportError, match="--eval-data measures int8 against fp32: it needs --quantize int8"):
        from albert_onnx.export import export_model

        export_model("unused", tmp_path / "x", eval_data=path)


def test_a_product_kept_in_float_computes_in_float(spm_albert: Path, heads_root: Path, tmp_path: Path) -> None:
    """ALBERT's layers share their weights: the node kept in float reads its own float copy, no
    DequantizeLinear of the others' int8 weight (slower than float, and still rounded)."""
    onnx = pytest.importorskip("onnx", reason="onnx is not installed: pip install -e '.[export]'")
    from albert_onnx.export.quantize import DEFAULT_INT8, quantize_int8

    _, art = head_artifact("cls", spm_albert, heads_root)
    settings = {k: v for k, v in DEFAULT_INT8.items() if k != "weight_type"}
    quantize_int8(art / "model.onnx", tmp_path / "q.onnx", weight_type="int8", **settings,
                  exclude=["Attention_1"])
    g = onnx.load(str(tmp_path / "q.onnx")).graph
    inits = {i.name: i for i in g.initializer}
    kept = next(n for n in g.node if n.name == "Attention_1")
    assert kept.op_type == "Attention" and inits[kept.input[1]].data_type == onnx.TensorProto.FLOAT
    assert not [n for n in g.node if n.op_type == "DequantizeLinear"]
    assert sum(n.op_type == "QAttention" for n in g.node) == sum(n.op_type == "Attention" for n in
                                                                 onnx.load(str(art / "model.onnx")).graph.node) - 1
    assert not (tmp_path / "q.onnx.own-float.onnx").exists()


def test_the_progress_bar_draws_on_a_terminal_only() -> None:
    import io

    from albert_onnx.cli.output import ProgressBar

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    bar = ProgressBar()
    bar.stream, bar.enabled = Terminal(), True
    bar.update("fp32", 5, 10)
    bar.update("fp32", 10, 10)
    bar.close()
    assert bar.stream.getvalue() == "\rfp32  [############            ] 5/10\rfp32  [########################] 10/10\n"
    quiet = ProgressBar()  # pytest's stderr is no terminal
    quiet.update("int8", 1, 2)
    quiet.close()
    assert not quiet.drawn
