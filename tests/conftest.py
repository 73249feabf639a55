"""Test-time fixtures: SentencePiece models trained on the project's corpus and HF folders."""

from __future__ import annotations

import itertools
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Local Spark and Ray clusters of the tests stay on the loopback interface.
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # Spark's Python workers: this venv's interpreter
# Ray's one local node takes the loopback address, not the machine's outward one (Ray reads this
# when it is imported; it means "not a multi-machine cluster")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

DATA = Path(__file__).parent / "data"
CORPUS = DATA / "corpus_ja.txt"
SHARED = Path(__file__).resolve().parents[2] / "shared"
SHARED_MODEL = SHARED / "models" / "albert-ja-mini-wagahai"
NO_SHARED = ("needs ../shared beside the checkout (the pretrained mini models and JGLUE of this workplace; "
             "elsewhere these tests skip)")
SETTINGS = [dict(zip(("do_lower_case", "keep_accents", "remove_space"), combo))
            for combo in itertools.product([False, True], repeat=3)]


def json_lines(text: str) -> list[Any]:
    """What ``--json`` prints: one JSON value a line."""
    import json

    return [json.loads(line) for line in text.splitlines()]


def corpus_lines() -> list[str]:
    return [line for line in CORPUS.read_text(encoding="utf-8").split("\n") if line]


def settings_id(s: dict[str, bool]) -> str:
    return "-".join(f"{k}={int(v)}" for k, v in s.items())


def _train(out: Path, **kwargs: object) -> Path:
    spm = pytest.importorskip("sentencepiece", reason="sentencepiece is not installed: pip install -e '.[export]'")
    spm.SentencePieceTrainer.train(
        input=str(CORPUS), model_prefix=str(out), vocab_size=700, model_type="unigram",
        character_coverage=0.995, hard_vocab_limit=False, num_threads=1,
        minloglevel=2, **kwargs)
    return out.with_suffix(".model")


@pytest.fixture(scope="session")
def spm_albert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ALBERT's recipe: pad=0, unk=1, control symbols [CLS], [SEP], [MASK]."""
    return _train(tmp_path_factory.mktemp("spm") / "albert", pad_id=0, unk_id=1, bos_id=-1,
                  eos_id=-1, control_symbols="[CLS],[SEP],[MASK]")


@pytest.fixture(scope="session")
def spm_plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sentencepiece defaults: the ALBERT special tokens become added tokens after the vocab."""
    return _train(tmp_path_factory.mktemp("spm") / "plain")


_FOLDERS: dict[tuple[str, tuple[tuple[str, bool], ...]], Path] = {}


def hf_folder(spm_model: Path, tmp_root: Path, **settings: bool) -> Path:
    """A Hugging Face tokenizer folder as AlbertTokenizer.save_pretrained writes it."""
    key = (str(spm_model), tuple(sorted(settings.items())))
    if key not in _FOLDERS:
        from transformers import AlbertTokenizer

        out = tmp_root / f"{spm_model.stem}-{len(_FOLDERS)}"
        options: dict[str, Any] = dict(settings)
        AlbertTokenizer(vocab_file=str(spm_model), **options).save_pretrained(str(out))
        _FOLDERS[key] = out
    return _FOLDERS[key]


@pytest.fixture(scope="session")
def folder_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hf")


TINY: dict[str, Any] = dict(embedding_size=16, hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
                            intermediate_size=48, max_position_embeddings=64, hidden_act="gelu_new")


def make_model_folder(spm_model: Path, out: Path, seed: int = 0, **config: object) -> Path:
    """A random-weight AlbertForMaskedLM with the given tokenizer, saved in HF format."""
    import torch
    from transformers import AlbertConfig, AlbertForMaskedLM, AlbertTokenizer

    tok = AlbertTokenizer(vocab_file=str(spm_model))
    tok.save_pretrained(str(out))
    torch.manual_seed(seed)
    cfg = AlbertConfig(vocab_size=len(tok), pad_token_id=tok.pad_token_id, **{**TINY, **config})
    model = AlbertForMaskedLM(cfg).eval()
    with torch.no_grad():  # HF initialises biases and LayerNorm to constants: make them vary
        for name, p in model.named_parameters():
            if name.endswith("bias") or "LayerNorm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(str(out))
    return out


@pytest.fixture(scope="session")
def tiny_model(spm_albert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch", reason="torch is not installed: pip install -e '.[export]'")
    return make_model_folder(spm_albert, tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def tiny_artifact(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from albert_onnx.export import export_model

    out = tmp_path_factory.mktemp("artifact") / "tiny"
    export_model(str(tiny_model), out, quantize="int8", fp16=True, log=lambda s: None)
    return out


HEADS = {
    # name: (transformers class, config overrides)
    "cls": ("AlbertForSequenceClassification", dict(num_labels=3, id2label={0: "neg", 1: "neu", 2: "pos"},
                                                    label2id={"neg": 0, "neu": 1, "pos": 2})),
    "multilabel": ("AlbertForSequenceClassification", dict(num_labels=4, problem_type="multi_label_classification")),
    "regression": ("AlbertForSequenceClassification", dict(num_labels=1, problem_type="regression")),
    "ner": ("AlbertForTokenClassification", dict(num_labels=5, id2label=dict(enumerate(
        ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"])), label2id={})),
    "encoder": ("AlbertModel", {}),
    "qa": ("AlbertForQuestionAnswering", {}),
    "mc": ("AlbertForMultipleChoice", {}),
    "nli": ("AlbertForSequenceClassification", dict(num_labels=3, id2label={0: "entailment", 1: "neutral",
                                                                            2: "contradiction"},
                                                    label2id={"entailment": 0, "neutral": 1, "contradiction": 2})),
}


def make_head_folder(spm_model: Path, out: Path, head: str, seed: int = 1) -> Path:
    """A random-weight ALBERT with the given head (see HEADS), saved in HF format."""
    import torch
    import transformers
    from transformers import AlbertConfig, AlbertTokenizer

    cls_name, overrides = HEADS[head]
    tok = AlbertTokenizer(vocab_file=str(spm_model))
    tok.save_pretrained(str(out))
    torch.manual_seed(seed)
    cfg = AlbertConfig(vocab_size=len(tok), pad_token_id=tok.pad_token_id, **{**TINY, **overrides})
    model = getattr(transformers, cls_name)(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or "LayerNorm" in name:
                p.add_(torch.randn_like(p) * 0.1)
            if "classifier" in name or "qa_outputs" in name:  # make the scores differ clearly
                p.mul_(20.0)
    model.save_pretrained(str(out))
    return out


_HEAD_ARTIFACTS: dict[str, tuple[Path, Path]] = {}


def head_artifact(head: str, spm_model: Path, root: Path) -> tuple[Path, Path]:
    """(model folder, artifact with fp32 and int8) for a head, built once per session."""
    if head not in _HEAD_ARTIFACTS:
        from albert_onnx.export import export_model

        folder = make_head_folder(spm_model, root / f"{head}-model", head)
        art = export_model(str(folder), root / f"{head}-artifact", quantize="int8",
                           int8_min_agreement=0.0, log=lambda s: None)
        _HEAD_ARTIFACTS[head] = (folder, Path(art))
    return _HEAD_ARTIFACTS[head]


@pytest.fixture(scope="session")
def heads_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch", reason="torch is not installed: pip install -e '.[export]'")
    return tmp_path_factory.mktemp("heads")


@pytest.fixture()
def servers() -> Iterator[list[Any]]:
    """Servers a test starts (``tests/serving.py``), stopped after it."""
    started: list[Any] = []
    yield started
    for s in started:
        s.stop()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# headless Chromium on a closed network: no background connections, no first-run work
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def launch_chromium(playwright: Any) -> Any:
    """Debian's chromium through Playwright (tests that need it skip without it)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
