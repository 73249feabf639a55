"""Our tokenizer against AlbertTokenizerFast, line by line, for every settings combination."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from albert_onnx import Tokenizer

from .conftest import NO_SHARED, SETTINGS, SHARED, SHARED_MODEL, corpus_lines, hf_folder, settings_id

transformers = pytest.importorskip("transformers", reason="transformers is not installed: pip install -e '.[export]'")

RANGES = [(0x20, 0x7E), (0xA0, 0x24F), (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF),
          (0x900, 0x97F), (0x1100, 0x11FF), (0x2000, 0x206F), (0x2100, 0x21FF),
          (0x2460, 0x24FF), (0x3000, 0x30FF), (0x3200, 0x33FF), (0x4E00, 0x4FFF),
          (0xAC00, 0xAC7F), (0xFE00, 0xFE0F), (0xFF00, 0xFFEF), (0x1F1E6, 0x1F1FF),
          (0x1F300, 0x1F64F), (0x1F3FB, 0x1F3FF), (0x20000, 0x2007F), (0x0, 0x1F)]
EXTRA = ["[MASK]", " [MASK]", "[CLS]", "<unk>", "<pad>", "\u200d", "``", "''", "  ", "\u3000",
         "12,", "3,000"]


def random_texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 25)):
            if rng.random() < 0.1:
                parts.append(rng.choice(EXTRA))
            else:
                lo, hi = rng.choice(RANGES)
                parts.append(chr(rng.randint(lo, hi)))
        out.append("".join(parts))
    return out


def assert_parity(ours: Tokenizer, ref, texts: list[str]) -> None:  # type: ignore[no-untyped-def]
    mismatches = []
    for text in texts:
        want = ref(text)["input_ids"]
        got = ours.encode(text)
        if got != want or ours.tokenize(text) != ref.tokenize(text):
            mismatches.append((text, ref.tokenize(text), ours.tokenize(text)))
            continue
        if ours.decode(got) != ref.decode(want):
            mismatches.append((text, ref.decode(want), ours.decode(got)))
        elif ours.convert_ids_to_tokens(got) != ref.convert_ids_to_tokens(want):
            mismatches.append((text, ref.convert_ids_to_tokens(want), ours.convert_ids_to_tokens(got)))
    assert not mismatches, f"{len(mismatches)}/{len(texts)} differ; first: {mismatches[:3]}"


def load_pair(folder: Path) -> tuple[Tokenizer, Any]:
    ref = transformers.AlbertTokenizerFast.from_pretrained(str(folder))
    return Tokenizer.from_pretrained(folder, mask_fix=False), ref


@pytest.mark.parametrize("settings", SETTINGS, ids=settings_id)
@pytest.mark.parametrize("model", ["spm_albert", "spm_plain"])
def test_corpus_and_random_parity(model: str, settings: dict[str, bool], folder_root: Path,
                                  request: pytest.FixtureRequest) -> None:
    folder = hf_folder(request.getfixturevalue(model), folder_root, **settings)
    ours, ref = load_pair(folder)
    assert len(ours) == len(ref)
    assert_parity(ours, ref, corpus_lines())
    assert_parity(ours, ref, random_texts(300, seed=hash(settings_id(settings)) & 0xFFFF))


@pytest.mark.parametrize("model", ["spm_albert", "spm_plain"])
def test_special_token_ids_match_reference(model: str, folder_root: Path,
                                           request: pytest.FixtureRequest) -> None:
    ours, ref = load_pair(hf_folder(request.getfixturevalue(model), folder_root))
    for name in ("cls_token", "sep_token", "pad_token", "mask_token", "unk_token"):
        assert getattr(ours, f"{name}_id") == getattr(ref, f"{name}_id"), name


def test_saved_fast_tokenizer_folder(spm_plain: Path, tmp_path: Path) -> None:
    """A folder that carries tokenizer.json (as the fast tokenizer saves it) loads the same."""
    ref = transformers.AlbertTokenizerFast(vocab_file=str(spm_plain), do_lower_case=False,
                                           keep_accents=True)
    ref.save_pretrained(str(tmp_path))
    assert (tmp_path / "tokenizer.json").exists()
    ours = Tokenizer.from_pretrained(tmp_path, mask_fix=False)
    assert not ours.config.do_lower_case and ours.config.keep_accents
    assert_parity(ours, transformers.AlbertTokenizerFast.from_pretrained(str(tmp_path)),
                  corpus_lines()[:150])


@pytest.mark.skipif(not SHARED_MODEL.exists(), reason=NO_SHARED)
@pytest.mark.parametrize("settings", SETTINGS, ids=settings_id)
def test_shared_model_on_novel(settings: dict[str, bool]) -> None:
    novel = SHARED / "corpus" / "wagahaiwa_nekodearu.txt"
    if not novel.exists():
        pytest.skip("../shared/corpus is absent")
    lines = [x for x in novel.read_text(encoding="utf-8").split("\n") if x]
    ref = transformers.AlbertTokenizerFast.from_pretrained(str(SHARED_MODEL), **settings)
    ours = Tokenizer.from_pretrained(SHARED_MODEL, mask_fix=False, **settings)
    own = {"do_lower_case": False, "keep_accents": True, "remove_space": True}
    step = 1 if settings == own else 7  # the model's own settings: every line
    assert_parity(ours, ref, lines[::step] + corpus_lines())


@pytest.mark.skipif(not (SHARED / "corpus" / "test_ja_model.model").exists(),
                    reason=NO_SHARED)
def test_sentencepiece_test_model_added_tokens(folder_root: Path) -> None:
    folder = hf_folder(SHARED / "corpus" / "test_ja_model.model", folder_root)
    ours, ref = load_pair(folder)
    assert ours.mask_token_id == ref.mask_token_id >= ours.vocab_size
    assert_parity(ours, ref, corpus_lines() + random_texts(200, seed=7))


def test_batch_equals_one_at_a_time(spm_albert: Path, folder_root: Path) -> None:
    tok = Tokenizer.from_pretrained(hf_folder(spm_albert, folder_root))
    lines = corpus_lines()[:64]
    batch = tok.encode_batch(lines)
    width = batch["input_ids"].shape[1]
    for i, line in enumerate(lines):
        ids = tok.encode(line)
        assert batch["input_ids"][i, : len(ids)].tolist() == ids
        assert (batch["input_ids"][i, len(ids):] == tok.pad_token_id).all()
        assert batch["attention_mask"][i].tolist() == [1] * len(ids) + [0] * (width - len(ids))
    assert not batch["token_type_ids"].any()
    fixed = tok.encode_batch(lines[:3], pad_to=width + 5)
    assert fixed["input_ids"].shape == (3, width + 5)


def test_truncation_only_when_asked(spm_albert: Path, folder_root: Path) -> None:
    from albert_onnx import InputError

    folder = hf_folder(spm_albert, folder_root)
    ours = Tokenizer.from_pretrained(folder, mask_fix=False)
    ref = transformers.AlbertTokenizerFast.from_pretrained(str(folder))
    text = corpus_lines()[0] * 3
    with pytest.raises(InputError, match="more than max_length=10"):
        ours.encode(text, max_length=10)
    assert ours.encode(text, max_length=10, truncation=True) == \
        ref(text, max_length=10, truncation=True)["input_ids"]
    assert len(ours.encode(text, add_special_tokens=False, max_length=7, truncation=True)) == 7


def test_input_errors_name_the_problem(spm_albert: Path, folder_root: Path, tmp_path: Path) -> None:
    from albert_onnx import ArtifactError, InputError

    ours = Tokenizer.from_pretrained(hf_folder(spm_albert, folder_root))
    with pytest.raises(InputError, match="text must be a str, not int"):
        ours.encode(5)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="lone surrogate"):
        ours.encode("a\udc80b")
    with pytest.raises(InputError, match=r"token id 99999 is outside the vocabulary \(valid: 0\.\."):
        ours.decode([5, 99999])
    with pytest.raises(InputError, match="list of texts"):
        ours.encode_batch("one text")  # type: ignore[arg-type]
    with pytest.raises(ArtifactError, match="not a folder"):
        Tokenizer.from_pretrained(tmp_path / "missing")
    with pytest.raises(ArtifactError, match="SentencePiece model file not found"):
        Tokenizer.from_pretrained(tmp_path)
