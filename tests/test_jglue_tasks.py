"""Question answering, multiple choice and zero-shot classification (every JGLUE task) against
the transformers pipelines and PyTorch, on tiny models built here and on the shared fine-tunes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from albert_onnx import InputError, MultipleChoice, QuestionAnswerer, ZeroShotClassifier, pipeline
from albert_onnx.errors import ArtifactError
from albert_onnx.tasks.zero_shot import DEFAULT_TEMPLATE, ENGLISH_TEMPLATE

from .conftest import NO_SHARED, SHARED, corpus_lines, head_artifact, json_lines

transformers = pytest.importorskip("transformers", reason="transformers is not installed: pip install -e '.[export]'")
torch = pytest.importorskip("torch", reason="torch is not installed: pip install -e '.[export]'")

SHARED_QA, SHARED_MC, SHARED_NLI = (SHARED / "models" / f"albert-ja-mini-wagahai-{h}" for h in ("qa", "mc", "nli"))
LINES = [x for x in corpus_lines() if "[" not in x and "<" not in x]
CONTEXT = "".join(LINES[:12])  # several windows at max_seq_len 48
QUESTIONS = ["猫は何ですか?", "誰が言った?", "どこで生れたか", "名前は?"]


def hf_pipeline(task: str, folder: Path, **tokenizer_options: Any) -> Any:
    cls = {"question-answering": transformers.AlbertForQuestionAnswering,
           "zero-shot-classification": transformers.AlbertForSequenceClassification}[task]
    tokenizer = transformers.AlbertTokenizerFast.from_pretrained(str(folder), **tokenizer_options)
    return transformers.pipeline(task, model=cls.from_pretrained(str(folder)), tokenizer=tokenizer)


def assert_same_answers(got: Any, want: Any, tol: float = 1e-4) -> None:
    """Equal nesting, answers, offsets; scores within ``tol``."""
    assert type(got) is type(want), (got, want)
    if isinstance(want, list):
        assert len(got) == len(want), (got, want)
        for g, w in zip(got, want):
            assert_same_answers(g, w, tol)
        return
    assert set(got) == set(want), (got, want)
    for key, value in want.items():
        if key in ("score", "scores"):
            assert np.allclose(got[key], value, atol=tol), (got, want)
        else:
            assert got[key] == value, (key, got, want)


# ---------------------------------------------------------------------- question answering
@pytest.fixture(scope="module")
def tiny_qa(spm_albert: Path, heads_root: Path) -> tuple[Path, Path]:
    return head_artifact("qa", spm_albert, heads_root)


@pytest.mark.parametrize("options", [
    {},
    {"top_k": 3},
    {"top_k": 5, "max_answer_len": 4},
    {"handle_impossible_answer": True, "top_k": 2},
    {"align_to_words": False, "top_k": 3},
    {"doc_stride": 20},
    {"max_seq_len": 40, "doc_stride": 6, "top_k": 4},
])
def test_qa_equals_the_pipeline_on_a_tiny_model(tiny_qa: tuple[Path, Path], options: dict[str, Any]) -> None:
    folder, art = tiny_qa
    qa, ref = QuestionAnswerer(art), hf_pipeline("question-answering", folder)
    options = {"max_seq_len": 48, "doc_stride": 16, **options}
    windows = qa.windows(0, QUESTIONS[0], CONTEXT, options["max_seq_len"], options["doc_stride"])
    assert len(windows) >= 3  # the context spans 3+ windows
    assert [w.encoding.ids for w in windows] == ref.tokenizer(
        QUESTIONS[0], CONTEXT, truncation="only_second", max_length=options["max_seq_len"],
        stride=options["doc_stride"], return_overflowing_tokens=True)["input_ids"]
    for q in QUESTIONS:
        assert_same_answers(qa(question=q, context=CONTEXT, **options), ref(question=q, context=CONTEXT, **options))
    # lists of questions, one context; and two lists
    assert_same_answers(qa(question=QUESTIONS, context=CONTEXT, **options),
                        ref(question=QUESTIONS, context=CONTEXT, **options))
    contexts = [CONTEXT, LINES[20], LINES[21] + LINES[22], CONTEXT[100:]]
    assert_same_answers(qa(question=QUESTIONS, context=contexts, **options),
                        ref(question=QUESTIONS, context=contexts, **options))


def test_qa_call_forms(tiny_qa: tuple[Path, Path]) -> None:
    folder, art = tiny_qa
    qa, ref = QuestionAnswerer(art), hf_pipeline("question-answering", folder)
    item = {"question": QUESTIONS[1], "context": LINES[3] + LINES[4]}
    kw = {"max_seq_len": 48}
    for args in ((item,), ([item],), ([item, item],), (item["question"], item["context"])):
        assert_same_answers(qa(*args, **kw), ref(*args, **kw))
    assert_same_answers(qa(question=[item["question"]], context=item["context"], **kw),
                        ref(question=[item["question"]], context=item["context"], **kw))
    assert pipeline(art).__class__ is QuestionAnswerer


def test_qa_a_question_in_a_list_answers_as_alone(tiny_qa: tuple[Path, Path]) -> None:
    _, art = tiny_qa
    for precision in ("fp32", "int8"):
        qa = QuestionAnswerer(art, precision=precision)
        alone = [qa(question=q, context=CONTEXT, max_seq_len=48, top_k=2) for q in QUESTIONS]
        together = qa(question=QUESTIONS, context=CONTEXT, max_seq_len=48, top_k=2)
        assert_same_answers(together, alone, tol=1e-5)


@pytest.mark.parametrize("call, message", [
    (lambda qa: qa(question="", context="吾輩は猫である。"), r"question is empty"),
    (lambda qa: qa(question="猫?", context="   "), r"context is empty"),
    (lambda qa: qa(question="猫?", context="\x07\x07"), r"the context has no tokens"),
    (lambda qa: qa(question="猫?", context=CONTEXT, doc_stride=48, max_seq_len=48), r"doc_stride=48 must be smaller"),
    (lambda qa: qa(question="猫?", context=CONTEXT, top_k=0), r"top_k must be a positive integer"),
    (lambda qa: qa(question="猫?", context=CONTEXT, max_answer_len=0), r"max_answer_len must be a positive"),
    (lambda qa: qa(question="猫?" * 30, context=CONTEXT, max_seq_len=48), r"leaves no room for the context"),
    (lambda qa: qa(question="猫?", context=CONTEXT, max_seq_len=40, doc_stride=36),
     r"doc_stride=36 must be smaller than the \d+ context tokens"),
    (lambda qa: qa(question="猫?", context=CONTEXT, max_seq_len=65), r"over the model's limit of 64"),
    (lambda qa: qa(question=["a", "b"], context=["c"]), r"2 questions and 1 contexts"),
    (lambda qa: qa({"question": "a"}), r"keys 'question' and 'context'"),
    (lambda qa: qa(question="a"), r"give both question= and context="),
    (lambda qa: qa(question=3, context="c"), r"question= and context= take"),
])
def test_qa_bad_input(tiny_qa: tuple[Path, Path], call: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        call(QuestionAnswerer(tiny_qa[1]))


@pytest.mark.skipif(not SHARED_QA.is_dir(), reason=NO_SHARED)
def test_qa_equals_the_pipeline_on_the_shared_model(tmp_path_factory: pytest.TempPathFactory) -> None:
    from albert_onnx.export import export_model

    art = export_model(str(SHARED_QA), tmp_path_factory.mktemp("qa") / "a", quantize="int8", log=lambda s: None)
    qa, ref = QuestionAnswerer(art), hf_pipeline("question-answering", SHARED_QA)
    lines = [x for x in (SHARED / "models" / "albert-ja-mini-wagahai" / "heldout_sentences.txt")
             .read_text(encoding="utf-8").split("\n") if x]
    contexts = ["".join(lines[i : i + 3]) for i in range(0, 60, 3)] + ["".join(lines[60:72])]  # the last: 3+ windows
    assert len(qa.windows(0, "number?", contexts[-1], 128, 32)) >= 3
    for n, context in enumerate(contexts):
        for q in ("katakana word?", "number?", f"after {context[5:9]}?"):
            for options in ({}, {"align_to_words": False, "top_k": 3}, {"handle_impossible_answer": True}):
                assert_same_answers(qa(question=q, context=context, **options),
                                    ref(question=q, context=context, **options))


# ---------------------------------------------------------------------- multiple choice
@pytest.fixture(scope="module")
def tiny_mc(spm_albert: Path, heads_root: Path) -> tuple[Path, Path]:
    return head_artifact("mc", spm_albert, heads_root)


def torch_choice_scores(folder: Path, question: str, choices: list[str]) -> np.ndarray:
    tok = transformers.AlbertTokenizerFast.from_pretrained(str(folder))
    model = transformers.AlbertForMultipleChoice.from_pretrained(str(folder)).eval()
    enc = tok([question] * len(choices), choices, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**{k: v[None] for k, v in enc.items()}).logits[0]
    return torch.softmax(logits, -1).numpy()


@pytest.mark.parametrize("n", [2, 3, 5, 8])
def test_mc_scores_equal_pytorch(tiny_mc: tuple[Path, Path], n: int) -> None:
    folder, art = tiny_mc
    mc = MultipleChoice(art)
    question, choices = LINES[n][:10], [LINES[n + k][10:30] for k in range(n)]
    got = mc(question, choices)
    want = torch_choice_scores(folder, question, choices)
    assert [g["index"] for g in got] == sorted(range(n), key=lambda i: -want[i])
    assert all(g["choice"] == choices[g["index"]] for g in got)
    assert np.allclose([g["score"] for g in got], want[[g["index"] for g in got]], atol=1e-4)
    assert mc({"question": question, "choices": choices}) == got


def test_mc_runs_a_question_in_one_session_call(tiny_mc: tuple[Path, Path]) -> None:
    mc = MultipleChoice(tiny_mc[1], precision="int8")
    calls: list[int] = []
    run = mc.encoder._run
    mc.encoder._run = lambda feed, outputs: calls.append(feed["input_ids"].shape[0]) or run(feed, outputs)  # type: ignore[method-assign,func-returns-value]
    items = [{"question": LINES[k][:8], "choices": [LINES[k + j][8:20] for j in range(2 + k)]} for k in range(4)]
    mc(items)
    assert calls == [2, 3, 4, 5]
    for precision in ("fp32", "int8"):
        m = MultipleChoice(tiny_mc[1], precision=precision)
        assert m(items) == [m(item) for item in items]


@pytest.mark.parametrize("call, message", [
    (lambda mc: mc("q", ["only one"]), r"1 choice\(s\); give at least 2"),
    (lambda mc: mc("q", ["a", ""]), r"choice 1 must be a non-empty str"),
    (lambda mc: mc("", ["a", "b"]), r"the question must be a non-empty str"),
    (lambda mc: mc("q", "ab"), r"choices must be a list of str"),
    (lambda mc: mc([{"question": "q"}]), r"keys 'question' and 'choices'"),
    (lambda mc: mc("q", ["a" * 80, "b"]), r"choice 0 with its question is \d+ tokens long"),
])
def test_mc_bad_input(tiny_mc: tuple[Path, Path], call: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        call(MultipleChoice(tiny_mc[1]))


@pytest.mark.skipif(not SHARED_MC.is_dir(), reason=NO_SHARED)
def test_mc_equals_pytorch_on_the_shared_model(tmp_path_factory: pytest.TempPathFactory) -> None:
    from albert_onnx.export import export_model

    art = export_model(str(SHARED_MC), tmp_path_factory.mktemp("mc") / "a", quantize="int8", log=lambda s: None)
    mc = MultipleChoice(art)
    lines = [x for x in (SHARED / "models" / "albert-ja-mini-wagahai" / "heldout_sentences.txt")
             .read_text(encoding="utf-8").split("\n") if 10 < len(x) < 60]
    for n in range(0, 30, 3):
        question = lines[n][: len(lines[n]) // 2]
        choices = [line[len(line) // 2 :] for line in lines[n : n + 5]]
        got = mc(question, choices)
        want = torch_choice_scores(SHARED_MC, question, choices)
        assert got[0]["index"] == int(want.argmax())
        assert np.allclose([g["score"] for g in got], want[[g["index"] for g in got]], atol=1e-4)


# ---------------------------------------------------------------------- zero-shot classification
@pytest.fixture(scope="module")
def tiny_nli(spm_albert: Path, heads_root: Path) -> tuple[Path, Path]:
    return head_artifact("nli", spm_albert, heads_root)


@pytest.mark.parametrize("labels, options", [
    (["天気", "動物", "学校"], {}),
    ("天気, 動物, 学校,", {"multi_label": True}),
    (["猫"], {}),
    (["天気", "動物"], {"hypothesis_template": "この文は{}についてです。"}),
    (["天気", "動物", "学校", "音楽"], {"hypothesis_template": "話題:{}", "multi_label": True}),
])
def test_zero_shot_equals_the_pipeline(tiny_nli: tuple[Path, Path], labels: Any, options: dict[str, Any]) -> None:
    folder, art = tiny_nli
    # the tiny tokenizer's limit is the model's 64 positions (the pipeline truncates premises to it)
    zs = pipeline(art, task="zero-shot-classification")
    ref = hf_pipeline("zero-shot-classification", folder, model_max_length=64)
    assert isinstance(zs, ZeroShotClassifier)
    texts = LINES[:4] + ["猫" * 70]  # the last is truncated (premise only) to the model's length
    # our default template is Japanese, the pipeline's English: the pipeline is given ours
    theirs = {"hypothesis_template": DEFAULT_TEMPLATE, **options}
    assert_same_answers(zs(texts[0], candidate_labels=labels, **options),
                        ref(texts[0], candidate_labels=labels, **theirs))
    assert_same_answers(zs(texts, labels, **options), ref(texts, candidate_labels=labels, **theirs))
    for precision in ("fp32", "int8"):
        z = ZeroShotClassifier(art, precision=precision)
        assert_same_answers(z(texts, labels, **options), [z(t, labels, **options) for t in texts], tol=1e-6)


@pytest.mark.parametrize("call, message", [
    (lambda zs: zs("文", []), r"candidate_labels must be a non-empty list"),
    (lambda zs: zs("文", " , "), r"candidate_labels must be a non-empty list"),
    (lambda zs: zs("文", ["a", "a"]), r"candidate label 'a' is given twice"),
    (lambda zs: zs("文", ["a", ""]), r"candidate label 1 must be a non-empty str"),
    (lambda zs: zs("文", ["a"], hypothesis_template="no slot"), r"has no \{\} for the label"),
    (lambda zs: zs("文", ["a"], hypothesis_template="{0} {1}"), r"may hold only \{\} where the label goes"),
    (lambda zs: zs("", ["a"]), r"text is empty"),
])
def test_zero_shot_bad_input(tiny_nli: tuple[Path, Path], call: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        call(ZeroShotClassifier(tiny_nli[1]))


def test_zero_shot_needs_an_entailment_label(spm_albert: Path, heads_root: Path) -> None:
    _, art = head_artifact("cls", spm_albert, heads_root)
    with pytest.raises(ArtifactError, match=r"needs an NLI model with an entailment label; this one's labels are "
                                            r"\['neg', 'neu', 'pos'\]"):
        pipeline(art, task="zero-shot-classification")
    with pytest.raises(InputError, match=r"task 'question-answering' cannot run on it \(valid here: "
                                         r"\['text-classification', 'zero-shot-classification'\]\)"):
        pipeline(art, task="question-answering")


@pytest.mark.skipif(not SHARED_NLI.is_dir(), reason=NO_SHARED)
def test_zero_shot_equals_the_pipeline_on_the_shared_model(tmp_path_factory: pytest.TempPathFactory) -> None:
    from albert_onnx.export import export_model

    art = export_model(str(SHARED_NLI), tmp_path_factory.mktemp("nli") / "a", log=lambda s: None)
    zs, ref = ZeroShotClassifier(art), hf_pipeline("zero-shot-classification", SHARED_NLI)
    texts = LINES[30:40]
    for labels, options in ((["猫", "人間", "天気"], {}), (["猫", "人間"], {"multi_label": True}),
                            (["猫", "主人"], {"hypothesis_template": "{}の話"}),
                            (["猫", "天気"], {"hypothesis_template": ENGLISH_TEMPLATE})):
        theirs = {"hypothesis_template": DEFAULT_TEMPLATE, **options}
        assert_same_answers(zs(texts, labels, **options), ref(texts, candidate_labels=labels, **theirs))


# ---------------------------------------------------------------------- export
def near_tie_model(spm_albert: Path, root: Path, head: str) -> Path:
    """A head whose output layer is scaled down: scores nearly tied, so int8 changes answers."""
    from .conftest import make_head_folder

    folder = make_head_folder(spm_albert, root / f"{head}-flat", head, seed=3)
    cls = {"qa": transformers.AlbertForQuestionAnswering, "mc": transformers.AlbertForMultipleChoice}[head]
    model = cls.from_pretrained(str(folder))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "qa_outputs" in name or "classifier" in name:
                p.mul_(0.002)
    model.save_pretrained(str(folder))
    return folder


@pytest.mark.parametrize("head, task, figure", [("qa", "question-answering", "best_span_agreement"),
                                                ("mc", "multiple-choice", "best_choice_agreement")])
def test_export_detects_the_task_and_gates_int8(spm_albert: Path, heads_root: Path, tmp_path: Path, head: str,
                                                task: str, figure: str) -> None:
    from albert_onnx.artifact import load_artifact
    from albert_onnx.export import ExportError, export_model

    _, art = head_artifact(head, spm_albert, heads_root)
    m = load_artifact(art).manifest
    assert m["task"]["name"] == task
    assert m["graphs"]["fp32"]["validation"]["max_abs_diff"] <= 1e-4
    assert m["graphs"]["int8"]["validation"]["gate"]["figure"] == figure
    # a model below the bar fails the export, prints its figure and writes nothing
    folder = near_tie_model(spm_albert, tmp_path, head)
    lines: list[str] = []
    with pytest.raises(ExportError, match=rf"int8 {figure} 0\.\d+ is below the gate 1"):
        export_model(str(folder), tmp_path / "gated", quantize="int8", int8_min_agreement=1.0, log=lines.append)
    assert not (tmp_path / "gated").exists()
    assert any(f"gate {figure} >= 1" in line for line in lines)
    # above its bar the same model exports, the figure and the bar stored
    ok = export_model(str(folder), tmp_path / "open", quantize="int8", int8_min_agreement=0.2, log=lines.append)
    gate = load_artifact(ok).manifest["graphs"]["int8"]["validation"]["gate"]
    assert gate["figure"] == figure and gate["min"] == 0.2 and 0.2 <= gate["value"] < 1.0


# ---------------------------------------------------------------------- bulk jobs and the CLI
def jglue_rows(head: str) -> list[dict[str, Any]]:
    """Rows of a .jsonl input for a head's task; the last one is bad."""
    qa_rows: list[dict[str, Any]] = [{"question": q, "context": LINES[n] + LINES[n + 1]}
                                     for n, q in enumerate(QUESTIONS)]
    qa_rows.append({"question": "猫?", "context": 3})
    mc_rows = [{"question": LINES[n][:8], "choices": [LINES[n + k][8:20] for k in range(3)]} for n in range(4)]
    mc_rows.append({"question": "q", "choices": "not a list"})
    zs_rows = [{"text": t} for t in LINES[:4]] + [{"text": ""}]
    return {"qa": qa_rows, "mc": mc_rows, "nli": zs_rows}[head]


@pytest.mark.parametrize("head", ["qa", "mc", "nli"])
def test_local_batch_job_per_task(spm_albert: Path, heads_root: Path, tmp_path: Path, head: str) -> None:
    import json

    from albert_onnx.batch import run_local
    from albert_onnx.tasks.results import TaskOptions

    from .test_batch import read_output

    _, art = head_artifact(head, spm_albert, heads_root)
    rows = jglue_rows(head)
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    labels = ("天気", "動物") if head == "nli" else None
    options = TaskOptions(labels=labels, top_k=2)
    run_local(art, src, tmp_path / "out", workers=1, threads=1, options=options, progress=False)
    out = read_output(tmp_path / "out")
    assert len(out) == len(rows) and out[str(len(rows) - 1)]["error"]
    predictor = pipeline(art, "zero-shot-classification" if labels else None)
    for n, row in enumerate(rows[:-1]):
        got = json.loads(out[str(n)]["result"])
        if head == "qa":
            want = predictor(question=row["question"], context=row["context"], top_k=2)
        elif head == "mc":
            want = predictor(row)
        else:
            want = predictor(row["text"], list(labels))  # type: ignore[arg-type]
        assert_same_answers(got, want, tol=1e-6)


def test_predict_verb_per_task(spm_albert: Path, heads_root: Path, capsys: pytest.CaptureFixture[str]) -> None:

    from albert_onnx.cli import main

    _, qa_art = head_artifact("qa", spm_albert, heads_root)
    assert main(["predict", str(qa_art), "--question", QUESTIONS[0], "--question", QUESTIONS[1],
                 "--context", CONTEXT[:150], "--top-k", "2", "--no-align-to-words", "--json"]) == 0
    got = json_lines(capsys.readouterr().out)
    assert_same_answers(got, [QuestionAnswerer(qa_art)(question=q, context=CONTEXT[:150], top_k=2,
                                                       align_to_words=False) for q in QUESTIONS[:2]])
    _, mc_art = head_artifact("mc", spm_albert, heads_root)
    assert main(["predict", str(mc_art), "問い", "--choices", "甲", "乙", "丙", "--precision", "int8", "--json"]) == 0
    assert json_lines(capsys.readouterr().out) == [MultipleChoice(mc_art, precision="int8")("問い", ["甲", "乙", "丙"])]
    _, nli_art = head_artifact("nli", spm_albert, heads_root)
    assert main(["predict", str(nli_art), LINES[0], "--labels", "天気,動物", "--multi-label", "--json"]) == 0
    assert json_lines(capsys.readouterr().out) == [ZeroShotClassifier(nli_art)(LINES[0], "天気,動物", multi_label=True)]
    assert main(["predict", str(qa_art), "text"]) == 2
    assert "takes --question Q" in capsys.readouterr().err
    assert main(["predict", str(mc_art), "問い"]) == 2
    assert "--choices A B" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["ray", "spark"])
def test_cluster_engines_read_task_columns(spm_albert: Path, heads_root: Path, tmp_path: Path, engine: str) -> None:
    import json

    pytest.importorskip("ray" if engine == "ray" else "pyspark")
    from albert_onnx.batch.engines import run_ray, run_spark

    from .test_batch import read_output

    _, art = head_artifact("qa", spm_albert, heads_root)
    rows = jglue_rows("qa")
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    (run_ray if engine == "ray" else run_spark)(art, src, tmp_path / "out", workers=2, threads=1)
    out = read_output(tmp_path / "out")
    qa = QuestionAnswerer(art)
    assert out[str(len(rows) - 1)]["error"] == "'context' is not a string (got int)"
    for n, row in enumerate(rows[:-1]):
        assert_same_answers(json.loads(out[str(n)]["result"]), qa(**row), tol=1e-6)
