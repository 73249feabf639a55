"""FillMask: output shape and nesting, batching, precisions, input errors, providers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from albert_onnx import FillMask, InputError, ProviderError

TEXTS = ["吾輩は[MASK]である。", "大学で[MASK]の研究を[MASK]しています", "[MASK]は猫",
         "今日は楽しかった[MASK]😊", "東京[MASK] 駅から新幹線に乗った", "ＡＢＣ[MASK]１２３"]


@pytest.fixture(scope="module")
def fm(tiny_artifact: Path) -> FillMask:
    return FillMask(tiny_artifact)


def test_pipeline_nesting(fm: FillMask) -> None:
    one = fm("吾輩は[MASK]である。", top_k=3)
    assert isinstance(one, list) and len(one) == 3 and isinstance(one[0], dict)
    assert set(one[0]) == {"score", "token", "token_str", "sequence"}
    two = fm("大学で[MASK]の研究を[MASK]しています", top_k=2)
    assert len(two) == 2 and all(len(m) == 2 for m in two)
    many = fm(TEXTS[:2], top_k=4)
    assert len(many) == 2 and len(many[0]) == 4 and len(many[1]) == 2


def test_scores_are_sorted_probabilities(fm: FillMask) -> None:
    for cands in fm.fill(TEXTS, top_k=10):
        for mask in cands:
            scores = [c["score"] for c in mask]
            assert scores == sorted(scores, reverse=True)
            assert 0 < sum(scores) <= 1.0 + 1e-5


def test_sequence_substitutes_the_candidate(fm: FillMask) -> None:
    rest = fm.tokenizer.decode(fm.tokenizer.encode("[MASK]である。")[2:-1])  # as normalized
    for c in fm("吾輩は[MASK]である。", top_k=5):
        assert c["sequence"] == f"吾輩は{c['token_str']}{rest}"
    first, second = fm("大学で[MASK]の研究を[MASK]しています", top_k=1)
    assert first[0]["sequence"].startswith("大学て" + first[0]["token_str"])  # で: NFKD + accent strip
    assert "[MASK]" in first[0]["sequence"]  # the other mask stays


def test_batch_equals_one_at_a_time(tiny_artifact: Path) -> None:
    batched = FillMask(tiny_artifact, max_batch_size=4).fill(TEXTS * 3, top_k=5)
    single = FillMask(tiny_artifact, max_batch_size=1)
    for text, got in zip(TEXTS * 3, batched):
        want = single.fill([text], top_k=5)[0]
        assert [[c["token"] for c in m] for m in got] == [[c["token"] for c in m] for m in want]
        np.testing.assert_allclose([[c["score"] for c in m] for m in got],
                                   [[c["score"] for c in m] for m in want], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("precision", ["int8", "fp16"])
def test_other_precisions_run(tiny_artifact: Path, precision: str) -> None:
    fm = FillMask(tiny_artifact, precision=precision)
    out = fm.fill(TEXTS, top_k=5)
    assert [len(x) for x in out] == [t.count("[MASK]") for t in TEXTS]


@pytest.mark.parametrize("bad, match", [
    ("吾輩は猫である。", "has no \\[MASK\\]"),
    ("", "is empty"),
    ("   ", "is empty"),
    (b"bytes[MASK]", "str"),
    (123, "str"),
    ([], "no texts"),
    (["ok[MASK]", 5], "text 1 must be a str"),
    ("猫" * 200 + "[MASK]", "at most 64"),
    ("\ud800[MASK]", "lone surrogate"),
])
def test_bad_input(fm: FillMask, bad: object, match: str) -> None:
    with pytest.raises(InputError, match=match):
        fm(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("top_k", [0, -1, 10**9, 2.5, True])
def test_bad_top_k(fm: FillMask, top_k: object) -> None:
    with pytest.raises(InputError, match="top_k must be an integer"):
        fm("吾輩は[MASK]", top_k=top_k)  # type: ignore[arg-type]


def test_precision_and_thread_errors(tiny_artifact: Path) -> None:
    with pytest.raises(InputError, match=r"unknown precision 'int4'; valid: \['fp32', 'int8', 'fp16'\]"):
        FillMask(tiny_artifact, precision="int4")
    for threads in (0, -2, 10**6, 1.5):
        with pytest.raises(InputError, match="threads must be"):
            FillMask(tiny_artifact, threads=threads)  # type: ignore[arg-type]
    assert FillMask(tiny_artifact, threads=1)("吾輩は[MASK]", top_k=1)


@pytest.mark.skipif("CUDAExecutionProvider" in ort.get_available_providers(), reason="has CUDA")
def test_cuda_unavailable_is_a_clear_error(tiny_artifact: Path) -> None:
    with pytest.raises(ProviderError, match=r"provider 'cuda' unavailable; available: \[.*CPUExecutionProvider"):
        FillMask(tiny_artifact, provider="cuda")
    auto = FillMask(tiny_artifact, provider="auto")
    assert auto.provider == "cpu" and "CUDA unavailable" in (auto.fallback_note or "")
    assert auto.providers == ["CPUExecutionProvider"]
    with pytest.raises(InputError, match=r"unknown provider 'tpu'; valid: \['cpu', 'cuda', 'auto'\]"):
        FillMask(tiny_artifact, provider="tpu")


def test_provider_that_does_not_attach(tiny_artifact: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If ORT lists CUDA but the session falls back to the CPU, we say so instead of running."""
    from albert_onnx.engine import session

    monkeypatch.setattr(session.ort, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    real = session.ort.InferenceSession

    def fake(path, sess_options=None, providers=None):  # type: ignore[no-untyped-def]
        return real(path, sess_options=sess_options, providers=["CPUExecutionProvider"])

    monkeypatch.setattr(session.ort, "InferenceSession", fake)
    with pytest.raises(ProviderError, match="did not attach"):
        FillMask(tiny_artifact, provider="cuda")


def test_io_binding_gives_the_same_answers(tiny_artifact: Path) -> None:
    plain = FillMask(tiny_artifact).fill(TEXTS, top_k=5)
    bound = FillMask(tiny_artifact, io_binding=True)
    assert bound.io_binding
    assert [[[c["token"] for c in m] for m in t] for t in bound.fill(TEXTS, top_k=5)] == \
        [[[c["token"] for c in m] for m in t] for t in plain]
