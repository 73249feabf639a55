"""Issue 4: fuzzing, concurrency, memory, interrupted exports, safe loading.

Bounded by default; `-m slow` runs the long forms (ALBERT_ONNX_SOAK=N scales them)."""

from __future__ import annotations

import os
import pickle
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from albert_onnx import ArtifactError, FillMask, InputError, Tokenizer

from .conftest import hf_folder

SOAK = int(os.environ.get("ALBERT_ONNX_SOAK", "1"))
PIECES = ["[MASK]", " [MASK] ", "[CLS]", "<unk>", "<pad>", "\u200d", "\u200b", "\u200f", "\u202e",
          "\u0301", "\u3099", "👨‍👩‍👧‍👦", "🇯🇵", "1️⃣", "👍🏽", "\ufeff", "\u3000", "  ", "\t", "\r\n",
          "ｶﾞ", "``", "''", "\x00", "\x1f", "\ud7ff", "\U0010ffff", "𠮷", "Σ", "İ"]
texts = st.lists(st.one_of(st.text(max_size=30), st.sampled_from(PIECES),
                           st.text(alphabet=st.sampled_from("あア亜a1 ­\u0300"), min_size=50, max_size=400)),
                 max_size=8).map("".join)
with_surrogates = st.text(alphabet=st.characters(codec=None, categories=["Cs", "Lo", "Mn"]), max_size=20)


@pytest.fixture(scope="module")
def pair(spm_albert: Path, folder_root: Path):  # type: ignore[no-untyped-def]
    transformers = pytest.importorskip("transformers",
                                       reason="transformers is not installed: pip install -e '.[export]'")
    folder = hf_folder(spm_albert, folder_root, keep_accents=True)
    return (Tokenizer.from_pretrained(folder, mask_fix=False),
            transformers.AlbertTokenizerFast.from_pretrained(str(folder)))


def _tokenizer_fuzz(pair, text: str) -> None:  # type: ignore[no-untyped-def]
    ours, ref = pair
    try:
        want = ref(text)["input_ids"]
    except Exception:  # the reference refuses it (e.g. lone surrogates): we must refuse cleanly
        with pytest.raises(InputError):
            ours.encode(text)
        return
    assert ours.encode(text) == want


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=st.one_of(texts, with_surrogates))
def test_tokenizer_fuzz(pair, text: str) -> None:  # type: ignore[no-untyped-def]
    _tokenizer_fuzz(pair, text)


@pytest.mark.slow
@settings(max_examples=3000 * SOAK, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=st.one_of(texts, with_surrogates))
def test_tokenizer_fuzz_long(pair, text: str) -> None:  # type: ignore[no-untyped-def]
    _tokenizer_fuzz(pair, text)


@pytest.fixture(scope="module")
def fm(tiny_artifact: Path) -> FillMask:
    return FillMask(tiny_artifact, precision="int8")


runtime_inputs = st.lists(st.one_of(st.sampled_from(["[MASK]", "[MASK]", "猫", "吾輩は", " ", "。"]), texts),
                          min_size=0, max_size=40).map("".join)


def _runtime_fuzz(fm: FillMask, text: str) -> None:
    try:
        out = fm.fill([text], top_k=3)
    except InputError as exc:
        assert any(s in str(exc) for s in ("no [MASK]", "empty", "tokens long", "surrogate")), exc
        return
    assert len(out[0]) == fm.tokenizer.encode(text).count(fm.tokenizer.mask_token_id)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=runtime_inputs)
def test_runtime_fuzz(fm: FillMask, text: str) -> None:
    _runtime_fuzz(fm, text)


@pytest.mark.slow
@settings(max_examples=2000 * SOAK, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=runtime_inputs)
def test_runtime_fuzz_long(fm: FillMask, text: str) -> None:
    _runtime_fuzz(fm, text)


def test_lengths_around_the_limit(fm: FillMask) -> None:
    limit = fm.max_length
    for n in range(limit - 3, limit + 3):
        ids = None
        text = "[MASK]" + "。" * (n - 3)
        ids = fm.tokenizer.encode(text)
        if len(ids) <= limit:
            assert len(fm.fill([text])[0]) == 1
        else:
            with pytest.raises(InputError, match=f"at most {limit}"):
                fm.fill([text])


CONCURRENT = ["吾輩は[MASK]である。", "大学で[MASK]の研究を[MASK]しています", "[MASK]は猫", "東京[MASK] 駅",
              "今日は楽しかった[MASK]😊", "ＡＢＣ[MASK]１２３", "ｶﾀｶﾅの[MASK]"]


def _concurrency(fm: FillMask, calls_per_thread: int) -> None:
    want = {t: fm.fill([t], top_k=5) for t in CONCURRENT}
    errors: list[str] = []

    def worker(k: int) -> None:
        for i in range(calls_per_thread):
            t = CONCURRENT[(i + k) % len(CONCURRENT)]
            got = fm.fill([t], top_k=5)
            if [[c["token"] for c in m] for m in got[0]] != [[c["token"] for c in m] for m in want[t][0]]:
                errors.append(t)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, f"{len(errors)} answers differ from the single-threaded ones"


def test_eight_threads_share_one_model(fm: FillMask) -> None:
    _concurrency(fm, 60)


@pytest.mark.slow
def test_eight_threads_thousands_of_calls(fm: FillMask) -> None:
    _concurrency(fm, 500 * SOAK)  # 4,000 calls


def _memory(fm: FillMask, calls: int) -> float:
    psutil = pytest.importorskip("psutil", reason="psutil is not installed: pip install -e '.[test]'")
    proc = psutil.Process()
    for i in range(500):
        fm.fill([CONCURRENT[i % len(CONCURRENT)]])
    start = proc.memory_info().rss
    for i in range(calls):
        fm.fill([CONCURRENT[i % len(CONCURRENT)]])
    return (proc.memory_info().rss - start) / 2**20


def test_memory_is_stable(fm: FillMask) -> None:
    assert _memory(fm, 2000) < 8


@pytest.mark.slow
def test_memory_is_stable_long(fm: FillMask) -> None:
    growth = _memory(fm, 30000 * SOAK)
    print(f"RSS growth over {30000 * SOAK} calls: {growth:.2f} MiB")
    assert growth < 4


def test_interrupted_export_leaves_nothing(tiny_model: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from albert_onnx.export import export_model, exporter

    def boom(*a, **k):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    monkeypatch.setattr(exporter, "quantize_int8", boom)
    with pytest.raises(KeyboardInterrupt):
        export_model(str(tiny_model), tmp_path / "out", quantize="int8", log=lambda s: None)
    assert list(tmp_path.iterdir()) == []


def test_partial_folder_is_not_an_artifact(tiny_artifact: Path, tmp_path: Path) -> None:
    """The manifest is written last: a folder killed before it is never taken for an artifact."""
    import shutil

    part = tmp_path / ".x.partial-1"
    shutil.copytree(tiny_artifact, part)
    (part / "manifest.json").unlink()
    with pytest.raises(ArtifactError, match="not an albert-onnx artifact"):
        FillMask(part)


def test_runtime_unpickles_nothing(tiny_artifact: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*a, **k):  # type: ignore[no-untyped-def]
        raise AssertionError("the runtime must not unpickle")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    assert FillMask(tiny_artifact)("吾輩は[MASK]", top_k=1)
    src = "".join(p.read_text() for p in (Path(__file__).parents[1] / "runtime").rglob("*.py"))
    assert "pickle" not in src and "allow_pickle" not in src


def test_export_refuses_pickled_code(tiny_model: Path, tmp_path: Path) -> None:
    """A pytorch_model.bin that would run code when unpickled is refused (weights_only)."""
    import shutil

    from albert_onnx.export import ExportError, export_model

    folder = tmp_path / "evil"
    shutil.copytree(tiny_model, folder)
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (open, (str(marker), "w"))

    with open(folder / "pytorch_model.bin", "wb") as f:
        pickle.dump({"x": Evil()}, f)
    with pytest.raises(ExportError):
        export_model(str(folder), tmp_path / "out", log=lambda s: None)
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_external_data_outside_the_folder(tiny_artifact: Path, tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx", reason="onnx is not installed: pip install -e '.[export]'")
    import json
    import shutil

    from albert_onnx.artifact import sha256_file

    art = tmp_path / "art"
    shutil.copytree(tiny_artifact, art)
    model = onnx.load(str(art / "model.onnx"))
    onnx.save(model, str(art / "model.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="weights.bin", size_threshold=0)
    model = onnx.load(str(art / "model.onnx"), load_external_data=False)
    for init in model.graph.initializer:
        for entry in init.external_data:
            if entry.key == "location":
                entry.value = "../../outside.bin"
    onnx.save(model, str(art / "model.onnx"))
    manifest = json.loads((art / "manifest.json").read_text())
    for name in ("model.onnx", "weights.bin"):
        manifest["files"][name] = {"sha256": sha256_file(art / name), "bytes": (art / name).stat().st_size}
    (art / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="points outside the artifact folder"):
        FillMask(art)
