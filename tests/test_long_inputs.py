"""Inputs longer than the model takes: truncation=True (text classification, single texts and
pairs; feature extraction) and token classification's stride, against the pipelines with the
same options; without them, the clear error that names the limit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from albert_onnx import FeatureExtractor, InputError, TextClassifier, TokenClassifier

from .conftest import TINY, corpus_lines, head_artifact
from .test_tasks import assert_same

transformers = pytest.importorskip("transformers", reason="transformers is not installed: pip install -e '.[export]'")

LIMIT = TINY["max_position_embeddings"]
LINES = [x for x in corpus_lines() if "[" not in x and "<" not in x]
LONG = ["".join(LINES[k : k + 10]) for k in range(0, 40, 10)]  # each well over 64 tokens
SHORT = LINES[40:43]


def hf(task: str, folder: Path) -> Any:
    cls = {"text-classification": transformers.AlbertForSequenceClassification,
           "token-classification": transformers.AlbertForTokenClassification,
           "feature-extraction": transformers.AlbertModel}[task]
    tok = transformers.AlbertTokenizerFast.from_pretrained(str(folder), model_max_length=LIMIT)
    return transformers.pipeline(task, model=cls.from_pretrained(str(folder)), tokenizer=tok, device="cpu")


def test_text_classification_truncation_equals_the_pipeline(spm_albert: Path, heads_root: Path) -> None:
    folder, art = head_artifact("cls", spm_albert, heads_root)
    tc, ref = TextClassifier(art), hf("text-classification", folder)
    assert len(tc.tokenizer.encode(LONG[0])) > LIMIT
    texts = LONG + SHORT
    assert_same(tc(texts, top_k=None, truncation=True), ref(texts, top_k=None, truncation=True))
    pairs = [{"text": a, "text_pair": b} for a, b in zip(LONG + SHORT, SHORT + LONG)]
    pairs += [{"text": LONG[0], "text_pair": LONG[1][:200]}, {"text": SHORT[0], "text_pair": SHORT[1]}]
    assert_same(tc(pairs, top_k=None, truncation=True), ref(pairs, top_k=None, truncation=True))
    with pytest.raises(InputError, match=rf"input 0 is \d+ tokens long .*at most {LIMIT}; pass truncation=True"):
        tc(texts)
    for precision in ("fp32", "int8"):
        t8 = TextClassifier(art, precision=precision)
        assert t8(texts, truncation=True) == [t8(t, truncation=True)[0] for t in texts]
        assert t8(pairs, truncation=True) == [t8(p, truncation=True) for p in pairs]


def test_feature_extraction_truncation_equals_the_pipeline(spm_albert: Path, heads_root: Path) -> None:
    folder, art = head_artifact("encoder", spm_albert, heads_root)
    fe, ref = FeatureExtractor(art), hf("feature-extraction", folder)
    got = fe(LONG, pooling="none", truncation=True)
    for text, vectors in zip(LONG, got):
        want = np.asarray(ref(text, tokenize_kwargs={"truncation": True})[0], dtype=np.float32)
        assert vectors.shape == want.shape == (LIMIT, TINY["hidden_size"])
        np.testing.assert_allclose(vectors, want, atol=1e-4, rtol=0)
    with pytest.raises(InputError, match="pass truncation=True"):
        fe(LONG[0])


@pytest.mark.parametrize("strategy", ["simple", "first", "average", "max"])
@pytest.mark.parametrize("stride", [4, 16, 40])
def test_token_classification_stride_equals_the_pipeline(spm_albert: Path, heads_root: Path, strategy: str,
                                                         stride: int) -> None:
    folder, art = head_artifact("ner", spm_albert, heads_root)
    tc, ref = TokenClassifier(art), hf("token-classification", folder)
    texts = LONG + SHORT
    assert len(tc._windows(LONG[0], stride)) >= 3
    got = tc(texts, aggregation_strategy=strategy, stride=stride, ignore_labels=[])
    assert_same(got, ref(texts, aggregation_strategy=strategy, stride=stride, ignore_labels=[]))
    for precision in ("fp32", "int8"):
        t8 = TokenClassifier(art, precision=precision)
        alone = [t8(t, aggregation_strategy=strategy, stride=stride, ignore_labels=[]) for t in texts]
        assert t8(texts, aggregation_strategy=strategy, stride=stride, ignore_labels=[]) == alone


@pytest.mark.parametrize("kwargs, message", [
    ({"stride": 8}, r"stride needs an aggregation_strategy other than 'none'"),
    ({"stride": 62, "aggregation_strategy": "simple"}, r"stride=62 must be smaller than the 62 tokens a window holds"),
    ({"stride": 0, "aggregation_strategy": "simple"}, r"stride must be a positive integer"),
    ({}, r"is \d+ tokens long .*at most 64"),
])
def test_token_classification_long_input_errors(spm_albert: Path, heads_root: Path, kwargs: dict[str, Any],
                                                message: str) -> None:
    _, art = head_artifact("ner", spm_albert, heads_root)
    with pytest.raises(InputError, match=message):
        TokenClassifier(art)(LONG[0], **kwargs)
