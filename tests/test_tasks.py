"""Task heads against the transformers pipelines of the same task (fp32), batch against one at
a time (every precision), pipeline(), and bad input."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from albert_onnx import (
    ArtifactError,
    FeatureExtractor,
    FillMask,
    InputError,
    TextClassifier,
    TokenClassifier,
    pipeline,
)

from .conftest import NO_SHARED, SHARED, corpus_lines, head_artifact

transformers = pytest.importorskip("transformers", reason="transformers is not installed: pip install -e '.[export]'")

TEXTS = [t for t in corpus_lines() if "[MASK]" not in t][:60]


def _hf(task: str, folder: Path) -> Any:
    import transformers as tf

    cls = {"text-classification": tf.AlbertForSequenceClassification,
           "token-classification": tf.AlbertForTokenClassification,
           "feature-extraction": tf.AlbertModel}[task]
    return tf.pipeline(task, model=cls.from_pretrained(str(folder)),  # type: ignore[call-overload]  # a str task
                       tokenizer=tf.AlbertTokenizerFast.from_pretrained(str(folder)), device="cpu")


def assert_same(got: Any, want: Any, path: str = "") -> None:
    """Same structure, keys, labels and strings; numbers within 1e-4."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), (path, got, want)
        for k in want:
            assert_same(got[k], want[k], f"{path}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), (path, got, want)
        for n, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, f"{path}[{n}]")
    elif isinstance(want, (float, np.floating)):
        assert isinstance(got, float) and abs(got - float(want)) <= 1e-4, (path, got, want)
    else:
        assert type(got) is type(want) and got == want, (path, got, want)


@pytest.fixture(scope="module", params=["cls", "multilabel", "regression"])
def classifier(request: pytest.FixtureRequest, spm_albert: Path, heads_root: Path) -> tuple[Path, Path]:
    return head_artifact(request.param, spm_albert, heads_root)


@pytest.mark.parametrize("kwargs", [{}, {"top_k": 1}, {"top_k": 2}, {"top_k": None},
                                    {"function_to_apply": "sigmoid"}, {"top_k": None, "function_to_apply": "none"},
                                    {"function_to_apply": "softmax", "top_k": 3}])
def test_text_classification_equals_pipeline(classifier: tuple[Path, Path], kwargs: dict[str, Any]) -> None:
    folder, art = classifier
    ref, ours = _hf("text-classification", folder), TextClassifier(art)
    pairs = [{"text": a, "text_pair": b} for a, b in zip(TEXTS[:8], TEXTS[8:16])]
    for inputs in (TEXTS[0], TEXTS[:12], pairs[0], pairs, {"text": TEXTS[3]}):
        assert_same(ours(inputs, **kwargs), ref(inputs, **kwargs))


def test_text_classification_labels_and_defaults(spm_albert: Path, heads_root: Path) -> None:
    _, art = head_artifact("cls", spm_albert, heads_root)
    tc = TextClassifier(art)
    assert tc.labels == ["neg", "neu", "pos"] and tc.default_function() == "softmax"
    assert {d["label"] for d in tc(TEXTS[0], top_k=None)} == {"neg", "neu", "pos"}
    assert TextClassifier(head_artifact("multilabel", spm_albert, heads_root)[1]).default_function() == "sigmoid"
    assert TextClassifier(head_artifact("regression", spm_albert, heads_root)[1]).default_function() == "none"


@pytest.mark.filterwarnings("ignore:Tokenizer does not support real words")
@pytest.mark.parametrize("strategy", ["none", "simple", "first", "average", "max"])
def test_token_classification_equals_pipeline(spm_albert: Path, heads_root: Path, strategy: str) -> None:
    folder, art = head_artifact("ner", spm_albert, heads_root)
    ref, ours = _hf("token-classification", folder), TokenClassifier(art)
    assert_same(ours(TEXTS, aggregation_strategy=strategy), ref(TEXTS, aggregation_strategy=strategy))
    assert_same(ours(TEXTS[5], aggregation_strategy=strategy, ignore_labels=[]),
                ref(TEXTS[5], aggregation_strategy=strategy, ignore_labels=[]))


@pytest.mark.filterwarnings("ignore:Tokenizer does not support real words")
def test_token_offsets_through_normalization(spm_albert: Path, heads_root: Path) -> None:
    """Half-width kana, full-width Latin, circled digits, ligature-like squares, odd spaces:
    start/end are offsets into the caller's text, as the pipeline gives them."""
    folder, art = head_artifact("ner", spm_albert, heads_root)
    ref, ours = _hf("token-classification", folder), TokenClassifier(art)
    texts = ["ｶﾀｶﾅの　Ａｌｂｅｒｔは①番目、株式会社㍿で  働く", "ﬁle ＡＢＣ  ｶﾞｷﾞ ", " 先頭に空白", "é́x"]
    for strategy in ("none", "simple", "first", "average", "max"):
        assert_same(ours(texts, aggregation_strategy=strategy, ignore_labels=[]),
                    ref(texts, aggregation_strategy=strategy, ignore_labels=[]))


def test_feature_extraction_equals_pipeline(spm_albert: Path, heads_root: Path) -> None:
    folder, art = head_artifact("encoder", spm_albert, heads_root)
    ref, fe = _hf("feature-extraction", folder), FeatureExtractor(art)
    tokens = fe(TEXTS[:20], pooling="none")
    cls, mean = fe(TEXTS[:20], pooling="cls"), fe(TEXTS[:20], pooling="mean")
    assert cls.dtype == np.float32 and cls.shape == (20, 32) and mean.shape == (20, 32)
    for n, text in enumerate(TEXTS[:20]):
        want = np.asarray(ref(text)[0], dtype=np.float32)
        np.testing.assert_allclose(tokens[n], want, atol=1e-4, rtol=0)
        np.testing.assert_allclose(cls[n], want[0], atol=1e-4, rtol=0)
        np.testing.assert_allclose(mean[n], want.mean(0), atol=1e-4, rtol=0)
    unit = fe(TEXTS[:3], pooling="mean", normalize=True)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-5)
    assert fe(TEXTS[0]).shape == (32,)


@pytest.mark.parametrize("head", ["cls", "ner", "encoder"])
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_list_equals_one_at_a_time(spm_albert: Path, heads_root: Path, head: str, precision: str) -> None:
    _, art = head_artifact(head, spm_albert, heads_root)
    batched = pipeline(art, precision=precision, max_batch_size=8)
    single = pipeline(art, precision=precision, max_batch_size=1)
    texts = TEXTS[:24]
    if head == "encoder":
        np.testing.assert_allclose(batched(texts, pooling="mean"),
                                   np.stack([single(t, pooling="mean") for t in texts]), atol=1e-5, rtol=0)
        return
    kwargs: dict[str, Any] = {"top_k": None} if head == "cls" else {"ignore_labels": []}
    many = batched(texts, **kwargs)
    for text, got in zip(texts, many):
        assert_same(got, single(text, **kwargs))


@pytest.mark.parametrize("head, inputs, parameters", [
    ("fill-mask", "吾輩は[MASK]である。", {}),
    ("fill-mask", "大学で[MASK]の研究を[MASK]しています", {"top_k": 2}),
    ("cls", TEXTS[0], {}),
    ("cls", TEXTS[0], {"top_k": None}),
    ("cls", {"text": TEXTS[0], "text_pair": TEXTS[1]}, {}),
    ("cls", {"text": TEXTS[0], "text_pair": TEXTS[1]}, {"top_k": 2}),
    ("ner", TEXTS[2], {}),
    ("ner", TEXTS[2], {"aggregation_strategy": "simple"}),
    ("encoder", TEXTS[3], {"pooling": "mean"}),
    ("nli", TEXTS[4], {"candidate_labels": ["猫", "犬"]}),
])
def test_one_of_list_nests_a_lone_input_as_a_call_on_it(spm_albert: Path, heads_root: Path, tiny_artifact: Path,
                                                        head: str, inputs: Any, parameters: dict[str, Any]) -> None:
    """What the server relies on to merge requests: a lone input's answer, built by ``one_of_list``
    from its entry of a list call, is the answer of a call on it alone."""
    art = tiny_artifact if head == "fill-mask" else head_artifact(head, spm_albert, heads_root)[1]
    predictor = pipeline(art, "zero-shot-classification" if head == "nli" else None)
    assert predictor.merges_lists
    merged = predictor.one_of_list(inputs, parameters, predictor([inputs], **parameters)[0])
    alone = predictor(inputs, **parameters)
    if head == "encoder":
        np.testing.assert_allclose(merged, alone, atol=1e-5, rtol=0)
    else:
        assert_same(merged, alone)


def test_question_answering_and_multiple_choice_are_never_merged(spm_albert: Path, heads_root: Path) -> None:
    # a list of one question is unwrapped, and a question's choices run as one input
    assert not any(pipeline(head_artifact(h, spm_albert, heads_root)[1]).merges_lists for h in ("qa", "mc"))


def test_fill_mask_int8_list_equals_one_at_a_time(tiny_artifact: Path) -> None:
    texts = ["吾輩は[MASK]である。", "大学で[MASK]の研究を[MASK]しています", "[MASK]は猫"] * 4
    fm = FillMask(tiny_artifact, precision="int8")
    batched = fm.fill(texts)
    for text, got in zip(texts, batched):
        want = fm.fill([text])[0]
        assert [[c["token"] for c in m] for m in got] == [[c["token"] for c in m] for m in want]
        np.testing.assert_allclose([[c["score"] for c in m] for m in got],
                                   [[c["score"] for c in m] for m in want], atol=1e-5, rtol=0)


def test_pipeline_picks_the_task(spm_albert: Path, heads_root: Path, tiny_artifact: Path) -> None:
    assert type(pipeline(tiny_artifact)) is FillMask
    assert type(pipeline(head_artifact("cls", spm_albert, heads_root)[1])) is TextClassifier
    assert type(pipeline(head_artifact("ner", spm_albert, heads_root)[1])) is TokenClassifier
    assert type(pipeline(head_artifact("encoder", spm_albert, heads_root)[1])) is FeatureExtractor
    with pytest.raises(ArtifactError, match="holds a 'text-classification' model, not 'fill-mask'.*pipeline"):
        FillMask(head_artifact("cls", spm_albert, heads_root)[1])


@pytest.mark.parametrize("head, call, match", [
    ("cls", lambda p: p(""), "input: text is empty"),
    ("cls", lambda p: p([]), "no texts given"),
    ("cls", lambda p: p(5), "inputs must be a str"),
    ("cls", lambda p: p(["a", 3]), "input 1 must be a str"),
    ("cls", lambda p: p({"text": "a", "pair": "b"}), "keys 'text' and optionally 'text_pair'"),
    ("cls", lambda p: p({"text": "a", "text_pair": ""}), "text_pair is empty"),
    ("cls", lambda p: p("猫" * 200), "at most 64"),
    ("cls", lambda p: p("a", top_k=0), "top_k must be None"),
    ("cls", lambda p: p("a", function_to_apply="relu"), "unknown function_to_apply 'relu'; valid"),
    ("ner", lambda p: p("a", aggregation_strategy="longest"), r"valid: \['none', 'simple', 'first'"),
    ("ner", lambda p: p("a", ignore_labels="O"), "ignore_labels must be a list"),
    ("ner", lambda p: p("猫" * 200), "at most 64"),
    ("ner", lambda p: p("\ud800"), "lone surrogate"),
    ("encoder", lambda p: p("a", pooling="max"), r"unknown pooling 'max'; valid: \['cls', 'mean', 'none'\]"),
    ("encoder", lambda p: p(["a", "  "]), "text 1 is empty"),
])
def test_bad_input(spm_albert: Path, heads_root: Path, head: str, call: Any, match: str) -> None:
    predictor = pipeline(head_artifact(head, spm_albert, heads_root)[1])
    with pytest.raises(InputError, match=match):
        call(predictor)


@pytest.mark.skipif(not (SHARED / "models" / "albert-ja-mini-wagahai-cls").is_dir(), reason=NO_SHARED)
@pytest.mark.parametrize("name, task", [("albert-ja-mini-wagahai-cls", "text-classification"),
                                        ("albert-ja-mini-wagahai-ner", "token-classification")])
def test_shared_fine_tuned_models(name: str, task: str, tmp_path: Path) -> None:
    """Trained heads: default int8 gate passes; fp32 equals the pipeline on held-out sentences."""
    from albert_onnx.export import export_model

    folder = SHARED / "models" / name
    art = export_model(str(folder), tmp_path / "a", quantize="int8", log=lambda s: None)
    sentences = (SHARED / "models" / "albert-ja-mini-wagahai" / "heldout_sentences.txt").read_text(
        encoding="utf-8").split("\n")
    sentences = [s for s in sentences if s.strip()][:80]
    ref, ours = _hf(task, folder), pipeline(art)
    warnings.simplefilter("ignore")  # the pipeline's note on word boundaries
    kwargs: dict[str, Any] = {"top_k": None} if task == "text-classification" else {"aggregation_strategy": "simple"}
    assert_same(ours(sentences, **kwargs), ref(sentences, **kwargs))


@pytest.mark.parametrize("head", ["cls", "ner", "encoder"])
def test_one_predictor_shared_by_threads(spm_albert: Path, heads_root: Path, head: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    predictor = pipeline(head_artifact(head, spm_albert, heads_root)[1], precision="int8")
    kwargs: dict[str, Any] = {"encoder": {"pooling": "mean"}, "ner": {"aggregation_strategy": "simple"}}.get(head, {})

    def answer(text: str) -> Any:
        out = predictor(text, **kwargs)
        return out.tolist() if isinstance(out, np.ndarray) else out

    want = {t: answer(t) for t in TEXTS[:20]}
    with ThreadPoolExecutor(6) as pool:
        got = list(pool.map(answer, TEXTS[:20] * 10))
    for text, result in zip(TEXTS[:20] * 10, got):
        assert_same(result, want[text])


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


THREAD_CALLS: dict[str, Any] = {  # head: a call of its predictor (nli: as zero-shot classification)
    "fill-mask": lambda p: [p(t[:8] + "[MASK]" + t[8:40], top_k=3) for t in TEXTS[:6]] + [p.score(TEXTS[:4])],
    "cls": lambda p: p(TEXTS[:8], top_k=None),
    "ner": lambda p: p(TEXTS[:8], aggregation_strategy="simple"),
    "encoder": lambda p: p(TEXTS[:8], pooling="mean"),
    "qa": lambda p: p(question=["猫は何ですか?", "誰が言った?"], context="".join(TEXTS[:10]), max_seq_len=48, top_k=2),
    "mc": lambda p: [p(TEXTS[i], TEXTS[i + 1:i + 5]) for i in range(3)],
    "nli": lambda p: p(TEXTS[:4], ["猫", "人間", "天気"], multi_label=True),
}


@pytest.mark.parametrize("precision", ["fp32", "int8"])
@pytest.mark.parametrize("head", list(THREAD_CALLS))
def test_answers_do_not_depend_on_the_thread_count(tiny_artifact: Path, spm_albert: Path, heads_root: Path,
                                                   head: str, precision: str) -> None:
    """ONNX Runtime splits products and heads across threads by the count; every answer stays the
    same to the last bit (measured so on the base shape and the shared model too)."""
    art = tiny_artifact if head == "fill-mask" else head_artifact(head, spm_albert, heads_root)[1]
    task = "zero-shot-classification" if head == "nli" else None
    answers = [_plain(THREAD_CALLS[head](pipeline(art, task, precision=precision, threads=n))) for n in (1, 2, 3)]
    assert answers[1] == answers[0] and answers[2] == answers[0]


def test_fill_mask_targets_equal_the_pipeline(tiny_model: Path, tiny_artifact: Path) -> None:
    """``targets``: words of the vocabulary, a word outside it (its first token, as the pipeline
    takes it) and a lone str, with top_k above and below the number of targets."""
    import transformers as tf

    ref = tf.pipeline("fill-mask", model=tf.AlbertForMaskedLM.from_pretrained(str(tiny_model)),
                      tokenizer=tf.AlbertTokenizerFast.from_pretrained(str(tiny_model)), device="cpu")
    fm = FillMask(tiny_artifact, mask_fix=False)  # the reference tokenizer's stray '▁' after [MASK], as the pipeline
    text = "吾輩は[MASK]である。"
    words = [c["token_str"] for c in ref(text, top_k=12)][4:9]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the pipeline warns about a target outside its vocabulary
        for targets, k in ((words, 5), (words, 2), (words + ["心理学の研究"], 10), (words[1], 3)):
            assert_same(fm(text, targets=targets, top_k=k), ref(text, targets=targets, top_k=k))
    with pytest.raises(InputError, match="targets must be a str or a non-empty list of str"):
        fm(text, targets=[])
