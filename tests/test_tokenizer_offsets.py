"""encode_with_offsets against AlbertTokenizerFast(text, text_pair, return_offsets_mapping=True),
line by line, for every settings combination, plus the [MASK]-fixed case: ids, type ids, offsets,
masks, word ids and sequence ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from albert_onnx import Tokenizer

from .conftest import NO_SHARED, SETTINGS, SHARED_MODEL, corpus_lines, hf_folder, settings_id
from .test_tokenizer_parity import random_texts

transformers = pytest.importorskip("transformers", reason="transformers is not installed: pip install -e '.[export]'")

NORMALIZING = ["ｶﾞｷﾞ ㍿　abc  d``x''", "\u200b猫", " x", "a\u0301\u0323b", "İstanbul ǅ ß ﬁ", "①②",
               "Ａｌｂｅｒｔ　ＡＬＢＥＲＴ", "吾輩は [MASK] である ", "x [SEP] y<pad>", "\t\n改行\r\n"]


def assert_offsets(ours: Tokenizer, ref, texts: list[str], pairs: list[tuple[str, str]]) -> None:  # type: ignore[no-untyped-def]
    bad: list[tuple[Any, ...]] = []
    for text, pair in [(t, None) for t in texts] + list(pairs):
        want = ref(text, pair, return_offsets_mapping=True, return_special_tokens_mask=True)
        got = ours.encode_with_offsets(text, pair)
        expected = (want["input_ids"], want["token_type_ids"], [tuple(o) for o in want["offset_mapping"]],
                    want["attention_mask"], want["special_tokens_mask"], want.word_ids(), want.sequence_ids())
        if (got.ids, got.type_ids, got.offsets, got.attention_mask, got.special_tokens_mask, got.word_ids,
                got.sequence_ids()) != expected:
            bad.append((text, pair, list(zip(ref.convert_ids_to_tokens(want["input_ids"]),
                                             want["offset_mapping"])), list(zip(got.tokens, got.offsets))))
        elif got.ids != ours.encode(text) and pair is None:
            bad.append((text, "fast path differs"))
    assert not bad, f"{len(bad)} differ; first: {bad[:2]}"


@pytest.mark.parametrize("settings", SETTINGS, ids=settings_id)
def test_offsets_every_setting(spm_albert: Path, folder_root: Path, settings: dict[str, bool]) -> None:
    folder = hf_folder(spm_albert, folder_root, **settings)
    ref = transformers.AlbertTokenizerFast.from_pretrained(str(folder))
    ours = Tokenizer.from_pretrained(folder, mask_fix=False)
    lines = corpus_lines()
    texts = lines + NORMALIZING + random_texts(150, seed=11)
    assert_offsets(ours, ref, texts, list(zip(lines[::5], lines[2::5])))


def test_offsets_added_special_tokens(spm_plain: Path, folder_root: Path) -> None:
    """A vocabulary without the ALBERT specials: they are added tokens after the vocabulary."""
    folder = hf_folder(spm_plain, folder_root, do_lower_case=True, keep_accents=False)
    ref = transformers.AlbertTokenizerFast.from_pretrained(str(folder))
    assert_offsets(Tokenizer.from_pretrained(folder, mask_fix=False), ref, corpus_lines()[:150] + NORMALIZING, [])


@pytest.mark.skipif(not SHARED_MODEL.is_dir(), reason=NO_SHARED)
def test_offsets_shared_model() -> None:
    ref = transformers.AlbertTokenizerFast.from_pretrained(str(SHARED_MODEL))
    lines = corpus_lines()
    assert_offsets(Tokenizer.from_pretrained(SHARED_MODEL, mask_fix=False), ref, lines + NORMALIZING,
                   list(zip(lines[::3], lines[1::3])))


def test_offsets_with_the_mask_fix(spm_albert: Path, folder_root: Path) -> None:
    """With the fix, the stray ▁ after [MASK] is gone; every other token keeps the reference's
    span, and the text after the mask maps onto itself."""
    folder = hf_folder(spm_albert, folder_root, do_lower_case=False, keep_accents=True)
    ref = transformers.AlbertTokenizerFast.from_pretrained(str(folder))
    ours = Tokenizer.from_pretrained(folder)
    text = "大学で[MASK]の研究をしています"
    enc = ours.encode_with_offsets(text)
    assert enc.ids == ours.encode(text) and "\u2581" not in enc.tokens[enc.tokens.index("[MASK]") + 1]
    want = ref(text, return_offsets_mapping=True)
    mask_at = enc.tokens.index("[MASK]")
    assert enc.offsets[: mask_at + 1] == [tuple(o) for o in want["offset_mapping"][: mask_at + 1]]
    assert enc.offsets[mask_at] == (3, 9)
    for line in corpus_lines()[:120]:
        masked = line[: len(line) // 2] + "[MASK]" + line[len(line) // 2 :]
        enc = ours.encode_with_offsets(masked)
        assert enc.ids == ours.encode(masked)
        starts = [s for (s, e), sp in zip(enc.offsets, enc.special_tokens_mask) if not sp]
        assert starts == sorted(starts)
        for (s, e), tok, sp in zip(enc.offsets, enc.tokens, enc.special_tokens_mask):
            assert sp or 0 <= s <= e <= len(masked)


def test_encode_pairs_is_each_pair_encoded(spm_albert: Path, folder_root: Path) -> None:
    """A text paired with several (a question and its choices, a premise and its hypotheses),
    tokenized once: each encoding equals the reference's for that pair, truncated or not."""
    folder = hf_folder(spm_albert, folder_root, do_lower_case=False, keep_accents=True)
    ref = transformers.AlbertTokenizerFast.from_pretrained(str(folder))
    ours = Tokenizer.from_pretrained(folder, mask_fix=False)
    lines = corpus_lines()
    hypotheses = ["猫の話。", "これは犬の話です。", "x"]
    bad: list[tuple[Any, ...]] = []
    for n, text in enumerate(lines[:60]):
        for pairs, options in ((lines[n + 1 : n + 6], {}), (lines[n + 1 : n + 6], {"max_length": 24}),
                               (hypotheses, {"max_length": 20, "strategy": "only_first"})):
            got = ours.encode_pairs(text, pairs, **options)  # type: ignore[arg-type]
            for pair, enc in zip(pairs, got, strict=True):
                kwargs = {} if not options else {"max_length": options["max_length"],
                                                 "truncation": options.get("strategy", "longest_first")}
                want = ref(text, pair, return_offsets_mapping=True, **kwargs)
                if (enc.ids, enc.type_ids, enc.offsets) != (want["input_ids"], want["token_type_ids"],
                                                            [tuple(o) for o in want["offset_mapping"]]):
                    bad.append((text, pair, options))
    assert not bad, f"{len(bad)} differ; first: {bad[:2]}"
