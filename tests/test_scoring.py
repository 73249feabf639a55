"""Masked-LM scoring: pseudo-log-likelihood against a PyTorch reference, batching, errors, CLI."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from albert_onnx import FillMask, InputError
from albert_onnx.cli import main

from .conftest import NO_SHARED, SHARED_MODEL, corpus_lines, json_lines

torch = pytest.importorskip("torch", reason="torch is not installed: pip install -e '.[export]'")
transformers = pytest.importorskip("transformers", reason="transformers is not installed: pip install -e '.[export]'")

TEXTS = [t for t in corpus_lines() if "[MASK]" not in t and "<" not in t][:40]


def reference_pll(model, tokenizer, text: str) -> list[float]:  # type: ignore[no-untyped-def]
    """PyTorch: all masked copies of ``text`` in one batch through AlbertForMaskedLM."""
    ids = tokenizer(text)["input_ids"]
    copies = torch.tensor([ids[:j] + [tokenizer.mask_token_id] + ids[j + 1 :] for j in range(1, len(ids) - 1)])
    with torch.no_grad():
        logits = model(input_ids=copies).logits.double()
    logp = torch.log_softmax(logits, dim=-1)
    return [float(logp[k, j, ids[j]]) for k, j in enumerate(range(1, len(ids) - 1))]


def spearman(a: list[float], b: list[float]) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def test_pll_equals_pytorch(tiny_model: Path, tiny_artifact: Path) -> None:
    fm = FillMask(tiny_artifact)
    model = transformers.AlbertForMaskedLM.from_pretrained(str(tiny_model)).eval()
    ref_tok = transformers.AlbertTokenizerFast.from_pretrained(str(tiny_model))
    fits = [t for t in TEXTS if len(ref_tok(t)["input_ids"]) <= 64]
    scores = fm.score(fits)
    per_token = fm.score(fits, per_token=True)
    for text, total, tokens in zip(fits, scores, per_token):
        want = reference_pll(model, ref_tok, text)
        assert abs(total - sum(want)) <= 1e-3, text
        assert [t for t, _ in tokens] == ref_tok.tokenize(text)  # unknown text keeps its characters
        np.testing.assert_allclose([lp for _, lp in tokens], want, atol=1e-4)
    ppl = fm.pseudo_perplexity(fits)
    for total, tokens, p in zip(scores, per_token, ppl):
        assert math.isclose(p, math.exp(-total / len(tokens)), rel_tol=1e-9)
    assert isinstance(fm.score(fits[0]), float) and isinstance(fm.pseudo_perplexity(fits[0]), float)


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_list_equals_one_at_a_time(tiny_artifact: Path, precision: str) -> None:
    batched = FillMask(tiny_artifact, precision=precision, max_batch_size=8).score(TEXTS[:12], per_token=True)
    single = FillMask(tiny_artifact, precision=precision, max_batch_size=1)
    for text, got in zip(TEXTS[:12], batched):
        want = single.score(text, per_token=True)
        assert [t for t, _ in got] == [t for t, _ in want]
        np.testing.assert_allclose([lp for _, lp in got], [lp for _, lp in want], atol=1e-5, rtol=0)


def test_long_inputs_are_chunked(tiny_artifact: Path) -> None:
    fm = FillMask(tiny_artifact, max_batch_size=2)  # 64 copies in flight at most
    texts = ["吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。"] * 5
    per_token = fm.score(texts, per_token=True)
    assert len({len(r) for r in per_token}) == 1 and sum(len(r) for r in per_token) > 64
    np.testing.assert_allclose(fm.score(texts), fm.score(texts[0]), atol=1e-4)


@pytest.mark.parametrize("bad, match", [
    ("吾輩は[MASK]である", "contains \\[MASK\\]: scoring masks each token in turn itself"),
    ("", "is empty"),
    (7, "must be a str"),
    ([], "no texts"),
    ("猫" * 200, "at most 64"),
    ("\u0301", "no tokens to score"),  # a lone accent: stripped by the normalizer
])
def test_bad_input(tiny_artifact: Path, bad: object, match: str) -> None:
    with pytest.raises(InputError, match=match):
        FillMask(tiny_artifact).score(bad)  # type: ignore[arg-type]


def test_cli_score(tiny_artifact: Path, capsys: pytest.CaptureFixture[str]) -> None:
    texts = ["吾輩は猫である。", "猫は吾輩である。"]
    assert main(["score", str(tiny_artifact), *texts, "--json"]) == 0
    doc = json_lines(capsys.readouterr().out)
    want = FillMask(tiny_artifact).score(texts)
    assert [round(d["pll"], 6) for d in doc] == [round(w, 6) for w in want]
    assert main(["score", str(tiny_artifact), texts[0], "--per-token", "--json"]) == 0
    assert [d["token"] for d in json_lines(capsys.readouterr().out)[0]] == FillMask(tiny_artifact).tokenizer.tokenize(
        texts[0])
    assert main(["score", str(tiny_artifact), *texts, "--per-token"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("吾輩は猫である。  PLL") and out[0].index("PLL") == out[
        1 + len(FillMask(tiny_artifact).tokenizer.tokenize(texts[0]))].index("PLL")
    assert main(["score", str(tiny_artifact), "x[MASK]"]) == 2
    assert "scoring masks each token" in capsys.readouterr().err


@pytest.mark.skipif(not SHARED_MODEL.is_dir(), reason=NO_SHARED)
def test_shared_model_pll_and_int8_ranking(tmp_path: Path) -> None:
    from albert_onnx.export import export_model

    art = export_model(str(SHARED_MODEL), tmp_path / "a", quantize="int8", log=lambda s: None)
    sentences = [s for s in (SHARED_MODEL / "heldout_sentences.txt").read_text(encoding="utf-8").split("\n")
                 if s.strip()][:100]
    model = transformers.AlbertForMaskedLM.from_pretrained(str(SHARED_MODEL)).eval()
    ref_tok = transformers.AlbertTokenizerFast.from_pretrained(str(SHARED_MODEL))
    fp32 = FillMask(art).score(sentences)
    for text, got in zip(sentences, fp32):
        assert abs(got - sum(reference_pll(model, ref_tok, text))) <= 1e-3, text
    int8 = FillMask(art, precision="int8")
    assert spearman(fp32, int8.score(sentences)) >= 0.99
    # int8 fill-mask: a list gives every text the answer it gets alone (dynamic scales per text)
    masked = [s[: len(s) // 2] + "[MASK]" + s[len(s) // 2 + 1 :] for s in sentences[:64]]
    for text, (probs, ids) in zip(masked, int8.predict_ids(masked)):
        alone_probs, alone_ids = int8.predict_ids([text])[0]
        assert np.array_equal(ids, alone_ids)
        np.testing.assert_allclose(probs, alone_probs, atol=1e-5, rtol=0)
