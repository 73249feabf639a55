"""The int8 weight form: stored as the export chose, given to ONNX Runtime in the form whose
products are exact and fastest on the CPU at hand (converted at load, exactly), or as asked."""

from __future__ import annotations

import io
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from albert_onnx import FillMask, pipeline
from albert_onnx.engine import cpu, int8_form
from albert_onnx.errors import InputError

from .conftest import NO_SHARED, SHARED_MODEL
from .int8_simulation import run_graph, simulated_graph

TEXT = "大学で[MASK]の研究をしています"
TEXTS = [TEXT, "吾輩は[MASK]である。", "[MASK]は猫である。名前はまだ無い。", "彼は[MASK]を読んだ。"]
ON_VNNI = not cpu.int8_weights_saturate()

# machine, flags -> (CPU class, best form, whether uint8 x int8 saturates)
CPU_TABLE = [
    ("x86_64", {"avx", "avx2", "fma"}, "AVX2", "uint8", True),
    ("x86_64", {"avx2", "avx512f", "avx512_vnni"}, "AVX-512 VNNI", "int8", False),
    ("x86_64", {"avx2", "avx_vnni"}, "AVX-VNNI", "int8", False),
    ("x86_64", {"avx2", "avx512_vnni", "amx_int8", "amx_bf16"}, "AMX", "int8", False),
    ("x86_64", {"sse4_2"}, "x86 without AVX2", "uint8", True),
    ("x86_64", set(), "x86 (flags unknown)", "uint8", True),  # unknown: the safe, exact form
    ("aarch64", {"asimd", "asimddp"}, "aarch64", "int8", False),
]


def fake_cpu(monkeypatch: pytest.MonkeyPatch, machine: str, flags: set[str]) -> None:
    monkeypatch.setattr(cpu.platform, "machine", lambda: machine)
    monkeypatch.setattr(cpu, "cpu_info", lambda: ("test cpu", frozenset(flags)))


def product_weights(graph: Path | bytes) -> dict[str, np.ndarray]:
    """The weights and zero points the int8 products read, as arrays."""
    onnx = pytest.importorskip("onnx", reason="onnx is not installed: pip install -e '.[export]'")
    from onnx import numpy_helper

    model = onnx.load_from_string(graph) if isinstance(graph, bytes) else onnx.load(str(graph))
    inits = {i.name: i for i in model.graph.initializer}
    slots = {"MatMulInteger": (1, 3), "QAttention": (1, 7)}
    names = {n.input[s] for n in model.graph.node if n.op_type in slots for s in slots[n.op_type]}
    return {name: numpy_helper.to_array(inits[name]) for name in names if name in inits}


def converted(graph: Path, form: str) -> bytes:
    data = graph.read_bytes()
    chunks, _ = int8_form.convert(data, int8_form.scan(data), form)
    out = io.BytesIO()
    int8_form.write_chunks(chunks, out)
    return out.getvalue()


@pytest.fixture(scope="module")
def uint8_weights_artifact(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An artifact whose file stores the other form, uint8 (the default of the version before)."""
    from albert_onnx.export import export_model

    out = tmp_path_factory.mktemp("uint8w") / "a"
    return export_model(str(tiny_model), out, quantize="int8", int8_weights="uint8", int8_min_agreement=0.0,
                        log=lambda s: None)


@pytest.fixture(scope="module")
def symmetric_int8_artifact(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An artifact quantized as earlier versions did with --int8-weights int8: symmetric int8 weights
    (zero points 0), its manifest without the stored form."""
    from albert_onnx.export import export_model
    from albert_onnx.export.quantize import DEFAULT_INT8

    out = tmp_path_factory.mktemp("symmetric") / "a"
    DEFAULT_INT8["quantized_as"] = "int8"
    try:
        export_model(str(tiny_model), out, quantize="int8", int8_min_agreement=0.0, log=lambda s: None)
    finally:
        DEFAULT_INT8["quantized_as"] = "uint8"
    manifest = json.loads((out / "manifest.json").read_text())
    for key in ("weight_type", "quantized_as"):
        manifest["graphs"]["int8"]["settings"].pop(key)
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


@pytest.fixture(scope="module")
def int8_weights_artifact(tiny_artifact: Path) -> Path:
    """The default export: the int8 form stored."""
    return tiny_artifact


def test_the_export_stores_int8_by_default_and_uint8_on_request(tiny_artifact: Path,
                                                                uint8_weights_artifact: Path) -> None:
    for art, form in ((tiny_artifact, "int8"), (uint8_weights_artifact, "uint8")):
        manifest = json.loads((art / "manifest.json").read_text())
        assert manifest["graphs"]["int8"]["settings"]["weight_type"] == form
        found = int8_form.scan((art / "model_int8.onnx").read_bytes())
        assert found.stored == form and found.refusal is None
        assert {str(a.dtype) for a in product_weights(art / "model_int8.onnx").values()} == {form}
        assert manifest["graphs"]["int8"]["validation"]["int8_kernel"].startswith("uint8 x ")


@pytest.mark.parametrize("stored", ["uint8", "int8"])
def test_conversion_is_exact_both_ways(stored: str, uint8_weights_artifact: Path, int8_weights_artifact: Path) -> None:
    graph = (uint8_weights_artifact if stored == "uint8" else int8_weights_artifact) / "model_int8.onnx"
    other = "int8" if stored == "uint8" else "uint8"
    before = product_weights(graph)
    there = converted(graph, other)
    after = product_weights(there)
    assert int8_form.scan(there).stored == other and set(after) == set(before)
    for name, values in before.items():
        assert str(after[name].dtype) == other
        # the same numbers: q - 128 (uint8 -> int8) or q + 128, bit for bit
        assert np.array_equal(values.astype(np.int16) + (-128 if stored == "uint8" else 128),
                              after[name].astype(np.int16)), name
    back = _write(graph, converted(_write(graph, there, ".there.onnx"), stored), ".back.onnx")
    again = product_weights(back)
    assert all(np.array_equal(again[n], before[n]) and again[n].dtype == before[n].dtype for n in before)
    # a second round trip writes the very same bytes
    assert converted(_write(graph, converted(back, other), ".there2.onnx"), stored) == back.read_bytes()
    # nothing to do when the file already holds the form asked for
    assert converted(graph, stored) == graph.read_bytes()


def _write(graph: Path, data: bytes, suffix: str) -> Path:
    path = Path(str(graph) + suffix)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("machine, flags, klass, best, saturates", CPU_TABLE)
def test_weight_form_chosen_per_cpu(monkeypatch: pytest.MonkeyPatch, machine: str, flags: set[str], klass: str,
                                    best: str, saturates: bool) -> None:
    fake_cpu(monkeypatch, machine, flags)
    assert cpu.cpu_class() == klass
    assert cpu.best_weight_form() == best
    assert cpu.int8_weights_saturate() is saturates
    assert cpu.int8_kernel(best).endswith(klass) and "saturating" not in cpu.int8_kernel(best)
    assert ("saturating" in cpu.int8_kernel("int8")) is saturates
    if machine == "x86_64":
        assert cpu.int8_kernel("uint8") == f"uint8 x uint8, exact 16-bit, {klass}"


@pytest.mark.parametrize("machine, flags, klass, best, saturates", CPU_TABLE)
def test_every_artifact_loads_in_the_best_form(monkeypatch: pytest.MonkeyPatch, uint8_weights_artifact: Path,
                                               int8_weights_artifact: Path, symmetric_int8_artifact: Path,
                                               machine: str, flags: set[str], klass: str, best: str,
                                               saturates: bool) -> None:
    """Artifacts of either form, old ones too, get the same treatment; what runs is the CPU's best form."""
    fake_cpu(monkeypatch, machine, flags)
    for art, stored in ((uint8_weights_artifact, "uint8"), (int8_weights_artifact, "int8"),
                        (symmetric_int8_artifact, "int8")):
        fm = FillMask(art, precision="int8")
        choice = fm.encoder.int8
        assert choice is not None and (choice.stored, choice.form) == (stored, best)
        assert (choice.converted > 0) is (stored != best)
        assert fm.int8_kernel == cpu.int8_kernel(best) and fm.int8_note is None
    assert FillMask(int8_weights_artifact, precision="fp32").int8_kernel is None


def test_both_forms_give_the_same_answers(uint8_weights_artifact: Path, int8_weights_artifact: Path,
                                          symmetric_int8_artifact: Path) -> None:
    """One artifact, any form: the same answers where the CPU's products are exact for both;
    and the two stored forms of one export are the same numbers."""
    if not ON_VNNI:
        pytest.skip(f"uint8 x int8 products saturate on this CPU ({cpu.cpu_class()}): only the uint8 form is exact")
    stored = [FillMask(a, precision="int8").fill(TEXTS, top_k=5) for a in (uint8_weights_artifact,
                                                                            int8_weights_artifact)]
    assert stored[0] == stored[1]
    for art in (uint8_weights_artifact, int8_weights_artifact, symmetric_int8_artifact):
        answers = {w: FillMask(art, precision="int8", int8_weights=w).fill(TEXTS, top_k=5)
                   for w in ("auto", "int8", "uint8")}
        assert answers["auto"] == answers["int8"] == answers["uint8"]


def _feed(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, 600, (1, n))
    ids[0, 0], ids[0, -1] = 2, 3
    return {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids),
            "mask_positions": np.arange(n), "top_k": np.array([5])}


@pytest.mark.parametrize("form", ["uint8", "int8"])
def test_each_form_equals_the_exact_integer_simulation(form: str, tiny_artifact: Path) -> None:
    """Logits equal a float simulation of the int8 graph with exact integer products: the uint8
    form everywhere; the int8 form where uint8 x int8 is exact (VNNI / AMX, non-x86)."""
    if form == "int8" and not ON_VNNI:
        pytest.skip(f"uint8 x int8 products saturate on this CPU ({cpu.cpu_class()}); nothing exact to compare")
    graph = tiny_artifact / "model_int8.onnx"
    reference = simulated_graph(graph)
    from albert_onnx.engine.session import create_int8_session

    session, choice = create_int8_session(graph, "cpu", 1, form)
    assert choice.form == form
    for n, seed in ((8, 0), (31, 1), (64, 2)):
        feed = _feed(n, seed)
        want = run_graph(reference, feed, "logits")
        got = session.run(["logits"], feed)[0]
        assert np.abs(got - want).max() <= 1e-5 * max(1.0, float(np.abs(want).max())), (form, n)


# run on the emulated CPU: each form's logits against the exact simulation, both on that CPU
_EMULATED = """
import json, sys
import numpy as np
import onnxruntime as ort
from albert_onnx.engine.session import create_int8_session
sim, graph, feeds, out = sys.argv[1:]
data = np.load(feeds)
feeds = [{k[2:]: data[k] for k in data.files if k.startswith(f"{n}_")} for n in range(int(data["count"]))]
reference = ort.InferenceSession(sim, providers=["CPUExecutionProvider"])
want = [reference.run(["logits"], f)[0] for f in feeds]
result = {}
for form in ("uint8", "int8"):
    session, _ = create_int8_session(graph, "cpu", 1, form)
    result[form] = [float(np.abs(session.run(["logits"], f)[0] - w).max()) for f, w in zip(feeds, want)]
json.dump(result, open(out, "w"))
"""
QEMU = shutil.which("qemu-x86_64")


@pytest.mark.slow
@pytest.mark.skipif(not (cpu.is_x86() and QEMU), reason="needs an x86 machine and qemu-user (qemu-x86_64)")
def test_avx2_kernels_on_an_emulated_haswell(tiny_artifact: Path, tmp_path: Path) -> None:
    """ONNX Runtime's own AVX2 kernels, on an emulated Haswell (AVX2 and FMA, no VNNI, no
    AVX-512), whatever this machine's class: the uint8 form, which the runtime gives such a CPU,
    equals the exact simulation run on the same CPU; the int8 form does not (its products
    saturate), which is why the runtime never gives it to such a CPU."""
    sim = tmp_path / "simulated.onnx"
    sim.write_bytes(simulated_graph(tiny_artifact / "model_int8.onnx"))
    feeds = [_feed(n, seed) for n, seed in ((8, 0), (31, 1), (64, 2))]
    arrays: dict[str, np.ndarray] = {f"{n}_{k}": v for n, f in enumerate(feeds) for k, v in f.items()}
    np.savez(tmp_path / "feeds.npz", count=np.array(len(feeds)), **arrays)  # type: ignore[arg-type]
    out = tmp_path / "result.json"
    assert QEMU is not None
    done = subprocess.run([QEMU, "-cpu", "Haswell-v4", sys.executable, "-c", _EMULATED, str(sim),
                           str(tiny_artifact / "model_int8.onnx"), str(tmp_path / "feeds.npz"), str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["uint8"] == [0.0] * len(feeds), result
    assert max(result["int8"]) > 1e-3, result


def test_int8_weights_option_is_checked(tiny_artifact: Path, capsys: pytest.CaptureFixture) -> None:
    from albert_onnx.cli import main

    with pytest.raises(InputError, match=r"unknown int8_weights 'int4'; valid: \['auto', 'int8', 'uint8'\]"):
        FillMask(tiny_artifact, precision="int8", int8_weights="int4")
    assert main(["fill-mask", str(tiny_artifact), TEXT, "--precision", "int8", "--int8-weights", "int4"]) == 2
    assert "invalid choice: 'int4'" in capsys.readouterr().err
    for verb in ("fill-mask", "predict", "score"):
        text = TEXT if verb != "score" else "吾輩は猫である。"
        assert main([verb, str(tiny_artifact), text, "--precision", "int8", "--int8-weights", "uint8", "--json"]) == 0
    capsys.readouterr()


def test_unknown_stored_weight_type_is_refused_at_export(tiny_model: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    from albert_onnx.cli import main
    from albert_onnx.export import ExportError, export_model

    with pytest.raises(ExportError, match=r"unknown int8 weight type 'int4'; valid: \['int8', 'uint8'\]"):
        export_model(str(tiny_model), tmp_path / "x", quantize="int8", int8_weights="int4")
    assert main(["export", str(tiny_model), "-o", str(tmp_path / "y"), "--quantize", "int8",
                 "--int8-weights", "int4"]) == 2
    assert "invalid choice: 'int4'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


@pytest.mark.parametrize("saturates", [True, False])
def test_warning_only_where_products_saturate(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
                                              tiny_artifact: Path, saturates: bool) -> None:
    """auto never saturates; int8 forced on an x86 CPU without VNNI says so, once."""
    fake_cpu(monkeypatch, "x86_64", {"avx2"} if saturates else {"avx2", "avx512_vnni"})
    with caplog.at_level(logging.WARNING, logger="albert_onnx"):
        assert FillMask(tiny_artifact, precision="int8").int8_note is None
        forced = FillMask(tiny_artifact, precision="int8", int8_weights="int8")
        assert (forced.int8_note is not None) is saturates
    notes = [r.getMessage() for r in caplog.records if "saturat" in r.getMessage()]
    assert len(notes) == (1 if saturates else 0)
    if saturates:
        assert forced.int8_kernel == "uint8 x int8, saturating 16-bit, AVX2"
        assert "int8_weights='auto'" in notes[0]


def test_a_graph_that_cannot_be_converted_keeps_its_form(tiny_artifact: Path, tmp_path: Path) -> None:
    """A product weight read by another op: auto keeps the stored form; a forced other form is
    a clear error, not a silently wrong graph."""
    onnx = pytest.importorskip("onnx", reason="onnx is not installed: pip install -e '.[export]'")
    from onnx import helper

    model = onnx.load(str(tiny_artifact / "model_int8.onnx"))
    weight = next(n.input[1] for n in model.graph.node if n.op_type == "MatMulInteger")
    model.graph.node.append(helper.make_node("Identity", [weight], ["extra_reader"]))
    path = tmp_path / "g.onnx"
    onnx.save(model, str(path))
    found = int8_form.scan(path.read_bytes())
    assert found.refusal is not None and "Identity" in found.refusal
    from albert_onnx.engine.session import create_int8_session

    _, choice = create_int8_session(path, "cpu", 1, "auto")
    assert (choice.form, choice.converted) == ("int8", 0)
    with pytest.raises(InputError, match=r"int8_weights='uint8' needs a weight conversion this graph does not allow"):
        create_int8_session(path, "cpu", 1, "uint8")


def test_bench_names_the_cpu_class_and_kernel(tiny_artifact: Path) -> None:
    from albert_onnx.bench import markdown, run_bench

    report = run_bench(str(tiny_artifact), precisions=["int8"], lengths=[8], batch=2, calls=3, rounds=1,
                       cold=False, progress=False, int8_weights="uint8")
    assert report["machine"]["cpu_class"] == cpu.cpu_class()
    assert report["int8_kernel"] == {"int8": cpu.int8_kernel("uint8")}
    text = markdown(report)
    assert f"CPU class {cpu.cpu_class()}" in text and f"int8 products: {cpu.int8_kernel('uint8')}." in text


def test_batch_equals_one_at_a_time_in_each_form(tiny_artifact: Path) -> None:
    forms = ("auto", "int8", "uint8") if ON_VNNI else ("auto", "uint8")
    for form in forms:
        fm = pipeline(tiny_artifact, precision="int8", int8_weights=form)
        assert fm(TEXTS) == [fm(t) for t in TEXTS]


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_MODEL.is_dir(), reason=NO_SHARED)
def test_shared_model_int8_top1_on_heldout_masks(tmp_path: Path) -> None:
    """The accuracy bar: int8 top-1 >= 0.97 against fp32 at every held-out mask, on whatever CPU
    runs the test, in the form the runtime picks there (and in the other, where it is exact)."""
    from albert_onnx.engine.session import create_int8_session, create_session
    from albert_onnx.export import export_model
    from albert_onnx.export.validate import agreement, masked_rows, top_k_of
    from albert_onnx.tokenizer import Tokenizer

    art = export_model(str(SHARED_MODEL), tmp_path / "a", quantize="int8", log=lambda s: None)
    tok = Tokenizer.from_pretrained(art)
    heldout = [x for x in (SHARED_MODEL / "heldout_sentences.txt").read_text(encoding="utf-8").split("\n") if x]
    rows = [r for r in masked_rows(tok, heldout) if len(r) <= 128]
    ref = top_k_of(create_session(art / "model.onnx", "cpu", None), tok, rows)
    results = {}
    for form in ("auto", "int8", "uint8") if ON_VNNI else ("auto", "uint8"):
        session, _ = create_int8_session(art / "model_int8.onnx", "cpu", None, form)
        results[form] = agreement(ref, top_k_of(session, tok, rows))
        assert results[form]["masks"] > 5000 and results[form]["top1_agreement"] >= 0.97, (form, results[form])
    assert all(r == results["auto"] for r in results.values())
