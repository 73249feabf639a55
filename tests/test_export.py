"""Export: fused graph, validation against PyTorch, manifest, atomic folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from albert_onnx import FillMask
from albert_onnx.artifact import load_artifact

from .conftest import TINY, head_artifact

torch = pytest.importorskip("torch", reason="torch is not installed: pip install -e '.[export]'")
transformers = pytest.importorskip("transformers", reason="transformers is not installed: pip install -e '.[export]'")


def test_manifest_records_everything(tiny_artifact: Path) -> None:
    art = load_artifact(tiny_artifact)
    m = art.manifest
    assert set(m["files"]) == {"model.onnx", "model_int8.onnx", "model_fp16.onnx", "spiece.model"}
    assert m["graphs"]["fp32"]["validation"]["max_abs_diff"] <= 1e-4
    assert m["graph_info"]["fusions"]["Attention"] == TINY["num_hidden_layers"]
    assert m["graph_info"]["fusions"]["SkipLayerNormalization"] == 2 * TINY["num_hidden_layers"]
    # stored split (Add + LayerNormalization): ONNX Runtime >= 1.30's fused kernel is the slower one
    assert m["graph_info"]["skip_layer_norms_split"] == 2 * TINY["num_hidden_layers"]
    import onnx

    for name in ("model.onnx", "model_int8.onnx"):
        ops = [n.op_type for n in onnx.load(str(tiny_artifact / name)).graph.node]
        assert "SkipLayerNormalization" not in ops and ops.count("LayerNormalization") >= 2 * TINY["num_hidden_layers"]
    assert m["graphs"]["int8"]["validation"]["masks"] > 50
    assert m["graphs"]["int8"]["embedding_lookup"] == {"int8_lookup": True, "tied_decoder": True,
                                                       "float_bytes_removed": m["model"]["vocab_size"]
                                                       * m["model"]["embedding_size"] * 4}
    fp16 = m["graphs"]["fp16"]["validation_cpu"]  # ONNX Runtime runs the fp16 graph on the CPU
    assert isinstance(fp16, dict) and fp16["top1_agreement"] >= 0.9, fp16
    assert m["tokenizer"]["special_tokens"]["mask_token"] == "[MASK]"
    ref = transformers.AlbertTokenizerFast.from_pretrained(m["source"]["model"])
    assert m["tokenizer"]["special_token_ids"]["mask_token"] == ref.mask_token_id
    assert m["tokenizer"]["special_token_ids"]["pad_token"] == ref.pad_token_id
    assert m["tools"]["torch"] and m["tools"]["onnxruntime"]
    assert m["model"]["max_position_embeddings"] == TINY["max_position_embeddings"]
    for name, info in m["files"].items():
        assert (tiny_artifact / name).stat().st_size == info["bytes"]


def test_shared_layer_weights_are_stored_once(tiny_artifact: Path) -> None:
    onnx = pytest.importorskip("onnx", reason="onnx is not installed: pip install -e '.[export]'")
    from onnx import numpy_helper

    model = onnx.load(str(tiny_artifact / "model.onnx"))
    seen = set()
    for init in model.graph.initializer:
        digest = numpy_helper.to_array(init).tobytes()
        assert (init.data_type, tuple(init.dims), digest) not in seen, init.name
        seen.add((init.data_type, tuple(init.dims), digest))
    params = sum(p.numel() for p in transformers.AlbertForMaskedLM.from_pretrained(
        str(Path(load_artifact(tiny_artifact).manifest["source"]["model"]))).parameters())
    # the tied decoder weight is the embedding matrix itself: no second copy
    assert load_artifact(tiny_artifact).manifest["graphs"]["fp32"]["tensor_bytes"] <= 4 * params + 4096


def test_runtime_logits_equal_pytorch(tiny_model: Path, tiny_artifact: Path) -> None:
    fm = FillMask(tiny_artifact)
    model = transformers.AlbertForMaskedLM.from_pretrained(str(tiny_model)).eval()
    texts = ["吾輩は[MASK]である。", "大学で[MASK]の研究を[MASK]しています", "[MASK]"]
    rows = [fm.tokenizer.encode(t) for t in texts]
    feed = fm.tokenizer.pad(rows)
    width = feed["input_ids"].shape[1]
    flat = np.arange(len(rows) * width, dtype=np.int64)
    logits = fm.session.run(["logits"], {**feed, "mask_positions": flat,
                                         "top_k": np.array([3], dtype=np.int64)})[0]
    with torch.no_grad():
        ref = model(**{k: torch.from_numpy(v) for k, v in feed.items()}).logits.numpy()
    ref = ref.reshape(-1, ref.shape[-1])
    real = feed["attention_mask"].reshape(-1) == 1
    np.testing.assert_allclose(logits[real], ref[real], atol=2e-5, rtol=0)


def test_model_card_recipe_gives_the_same_top5(tiny_model: Path, tiny_artifact: Path) -> None:
    """Where the model card's recipe is right (a lone ▁ after the one mask), we agree with it."""
    fm = FillMask(tiny_artifact)
    tok = transformers.AlbertTokenizerFast.from_pretrained(str(tiny_model))
    model = transformers.AlbertForMaskedLM.from_pretrained(str(tiny_model)).eval()
    checked = 0
    lines = (Path(__file__).parent / "data" / "corpus_ja.txt").read_text(encoding="utf-8").split("\n")
    for line in lines[:120]:
        for cut in (2, len(line) // 2):
            text = line[:cut] + "[MASK]" + line[cut:]
            tokens = tok.tokenize(text)
            if tokens.count("[MASK]") != 1 or tokens.index("[MASK]") + 1 >= len(tokens) \
                    or tokens[tokens.index("[MASK]") + 1] != "\u2581":
                continue
            del tokens[tokens.index(tok.mask_token) + 1]
            ids = torch.tensor([tok.convert_tokens_to_ids(["[CLS]", *tokens, "[SEP]"])])
            with torch.no_grad():
                out = model(input_ids=ids).logits[0, tokens.index("[MASK]") + 1]
            want = out.topk(5).indices.tolist()
            got = [c["token"] for c in fm(text, top_k=5)]
            assert got == want, text
            checked += 1
    assert checked >= 50


def test_failed_validation_leaves_no_folder(tiny_model: Path, tmp_path: Path) -> None:
    from albert_onnx.export import ExportError, export_model

    out = tmp_path / "never"
    with pytest.raises(ExportError, match="differs from PyTorch"):
        export_model(str(tiny_model), out, atol=0.0, log=lambda s: None)
    assert list(tmp_path.iterdir()) == []


def test_existing_output_is_not_overwritten(tiny_artifact: Path, tiny_model: Path) -> None:
    from albert_onnx.export import ExportError, export_model

    before = (tiny_artifact / "manifest.json").read_bytes()
    with pytest.raises(ExportError, match="already exists"):
        export_model(str(tiny_model), tiny_artifact, log=lambda s: None)
    assert (tiny_artifact / "manifest.json").read_bytes() == before


@pytest.mark.parametrize("source, match", [
    ("/nonexistent/model", "neither a model folder nor a hub id"),
    ("no-such-org/no-such-model-xyz", "cannot load an ALBERT config"),
])
def test_bad_sources(source: str, match: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from albert_onnx.export import ExportError, export_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ExportError, match=match):
        export_model(source, tmp_path / "out", log=lambda s: None)
    assert not (tmp_path / "out").exists()


def test_unreachable_hub_reads_the_cache_alone_and_fails_at_once(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A hub whose name does not resolve: no half minute of retries, the cache alone, one clear error."""
    import transformers

    from albert_onnx.export import ExportError, export_model
    from albert_onnx.export import source as source_module

    asked: list[dict[str, object]] = []
    real_config = transformers.AlbertConfig.from_pretrained.__func__  # type: ignore[attr-defined]

    def fake_config(cls, source, **kw):  # type: ignore[no-untyped-def]
        asked.append(kw)
        return real_config(cls, source, **kw)

    monkeypatch.setenv("HF_ENDPOINT", "https://no-such-host.invalid")
    monkeypatch.setattr(transformers.AlbertConfig, "from_pretrained", classmethod(fake_config))
    assert source_module._hub_unreachable() is not None
    with pytest.raises(ExportError, match=r"hub id 'some-org/some-albert': the hub is out of reach "
                                          r"\(no-such-host\.invalid: .*\) and the model is not in the local hub "
                                          r"cache; offline\? pass a local model folder"):
        export_model("some-org/some-albert", tmp_path / "out", log=lambda s: None)
    assert asked and asked[0].get("local_files_only") is True
    assert not (tmp_path / "out").exists()


def test_a_head_the_checkpoint_lacks_is_refused(spm_albert: Path, heads_root: Path, tmp_path: Path) -> None:
    """--task question-answering on a classifier would export random qa_outputs: refused, naming the valid tasks."""
    from albert_onnx.export import ExportError, export_model

    folder, _ = head_artifact("cls", spm_albert, heads_root)
    with pytest.raises(ExportError, match=r"has no question-answering head .*qa_outputs\.bias, qa_outputs\.weight "
                                          r"would be random weights\); valid --task for it: "
                                          r"\['feature-extraction', 'text-classification'\]"):
        export_model(str(folder), tmp_path / "qa", task="question-answering", log=lambda s: None)
    assert not (tmp_path / "qa").exists()


def test_not_albert_is_refused(tmp_path: Path) -> None:
    from albert_onnx.export import ExportError, export_model

    cfg = transformers.BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1,
                                  num_attention_heads=2, intermediate_size=8)
    transformers.BertForMaskedLM(cfg).save_pretrained(str(tmp_path / "bert"))
    with pytest.raises(ExportError, match="only ALBERT"):
        export_model(str(tmp_path / "bert"), tmp_path / "out", log=lambda s: None)


def test_export_prints_its_check(tiny_model: Path, tmp_path: Path) -> None:
    from albert_onnx.export import export_model

    lines: list[str] = []
    export_model(str(tiny_model), tmp_path / "a", log=lines.append)
    check = [x for x in lines if x.startswith("fp32 check against PyTorch: max|Δ| = ")]
    assert check and "atol 0.0001" in check[0]
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert "int8" not in manifest["graphs"]


def test_full_logits_equal_pytorch(tiny_model: Path, tiny_artifact: Path) -> None:
    fm = FillMask(tiny_artifact)
    model = transformers.AlbertForMaskedLM.from_pretrained(str(tiny_model)).eval()
    texts = ["吾輩は猫である。", "大学で[MASK]の研究をしています。名前はまだ無い。", "a"]
    for text, got in zip(texts, fm.logits(texts)):
        ids = fm.tokenizer.encode(text)
        with torch.no_grad():
            want = model(input_ids=torch.tensor([ids])).logits[0].numpy()
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=2e-5, rtol=0)


def test_tokenizer_from_artifact_equals_from_model_folder(tiny_model: Path, tiny_artifact: Path) -> None:
    from albert_onnx import Tokenizer

    a, b = Tokenizer.from_pretrained(tiny_artifact), Tokenizer.from_pretrained(tiny_model)
    lines = (Path(__file__).parent / "data" / "corpus_ja.txt").read_text(encoding="utf-8").split("\n")
    assert all(a.encode(x) == b.encode(x) for x in lines)


def test_hub_id_path(tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hub id goes through from_pretrained and hf_hub_download (stood in for offline here),
    and the resolved commit is recorded as the revision."""
    import huggingface_hub
    from huggingface_hub.utils import EntryNotFoundError

    from albert_onnx.export import export_model
    from albert_onnx.export import source as export_source

    repo = "test-org/tiny-albert"
    real_config = transformers.AlbertConfig.from_pretrained.__func__
    real_model = transformers.AlbertForMaskedLM.from_pretrained.__func__
    asked: list[tuple[str, str | None]] = []

    def fake_config(cls, source, **kw):  # type: ignore[no-untyped-def]
        if source != repo:  # transformers' own inner calls, on the local folder
            return real_config(cls, source, **kw)
        assert kw.get("revision") == "v1"
        config = real_config(cls, str(tiny_model))
        config._commit_hash = "0123abcd"
        return config

    def fake_model(cls, source, **kw):  # type: ignore[no-untyped-def]
        assert source == repo
        kw.pop("revision", None)
        return real_model(cls, str(tiny_model), **kw)

    def fake_download(repo_id, filename, revision=None, local_files_only=False):  # type: ignore[no-untyped-def]
        assert not local_files_only  # the hub is reachable here
        asked.append((filename, revision))
        if not (tiny_model / filename).exists():
            raise EntryNotFoundError(f"{filename} not in {repo_id}")
        return str(tiny_model / filename)

    monkeypatch.setattr(transformers.AlbertConfig, "from_pretrained", classmethod(fake_config))
    monkeypatch.setattr(transformers.AlbertForMaskedLM, "from_pretrained", classmethod(fake_model))
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    monkeypatch.setattr(export_source, "_hub_unreachable", lambda: None)
    out = export_model(repo, tmp_path / "hub", revision="v1", log=lambda s: None)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source"] == {"model": repo, "revision": "v1", "commit": "0123abcd",
                                  "architecture": "AlbertForMaskedLM", "exported_as": "AlbertForMaskedLM"}
    assert ("spiece.model", "v1") in asked
    assert FillMask(out)("吾輩は[MASK]", top_k=1)
