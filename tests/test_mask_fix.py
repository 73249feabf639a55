"""The [MASK] fix: no stray ``▁`` after a mask, and right where the model card's recipe is not."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from albert_onnx import Tokenizer

from .conftest import NO_SHARED, SHARED_MODEL, hf_folder

transformers = pytest.importorskip("transformers", reason="transformers is not installed: pip install -e '.[export]'")

CASES = [
    "大学で[MASK]の研究をしています",            # one mask
    "吾輩は[MASK]である。名前は[MASK]無い。",      # several masks
    "吾輩は[MASK][MASK]である",                   # adjacent masks
    "[MASK]は猫である",                           # mask first
    "吾輩は猫で[MASK]",                           # mask last
    "吾輩は [MASK] である",                        # spaces around the mask
    "吾輩は　[MASK]　である",                      # full-width spaces around the mask
    "ＡＢＣ株式会社の[MASK]は１２０％でした",         # full-width text
    "ｶﾀｶﾅの[MASK]はﾃﾞｰﾀ入力で使う",               # half-width text
    "価格は[MASK]1,980円です",                     # digits after the mask
    "彼は[MASK]New Yorkに住んでいた",              # Latin word after the mask
    "今日は楽しかった[MASK]😊また遊ぼう",            # emoji after the mask
    "今日は楽しかった。",                          # no mask
    "[MASK]",                                      # nothing but a mask
    "東京[MASK] 駅",                               # the text itself has a space after the mask
]


def reference_tokens(ref, text: str) -> list[str]:  # type: ignore[no-untyped-def]
    """What the fix must give, built from the reference's own parts: each stretch of text
    after a mask is normalized and segmented without the ``▁`` the pre-tokenizer would add."""
    backend = ref.backend_tokenizer
    out: list[str] = []
    pieces = re.split(r"\s*\[MASK\]", text)
    for i, piece in enumerate(pieces):
        if i:
            out.append("[MASK]")
        if not piece:
            continue
        norm = backend.normalizer.normalize_str(piece).replace(" ", "\u2581")
        if i == 0 or not norm or norm.startswith("\u2581"):
            out += ref.tokenize(piece)
            continue
        for word in re.split("(?=\u2581)", norm):
            if word:
                out += [t.value for t in backend.model.tokenize(word)]
    return out


def model_card_recipe(ref, text: str) -> list[str] | None:  # type: ignore[no-untyped-def]
    """The model card's workaround, or None where it raises."""
    tokens = ref.tokenize(text)
    try:
        del tokens[tokens.index(ref.mask_token) + 1]
    except (ValueError, IndexError):
        return None
    return tokens


@pytest.fixture(scope="module", params=["spm_albert", "spm_plain"])
def pair(request: pytest.FixtureRequest, folder_root: Path):  # type: ignore[no-untyped-def]
    folder = hf_folder(request.getfixturevalue(request.param), folder_root)
    ref = transformers.AlbertTokenizerFast.from_pretrained(str(folder))
    return Tokenizer.from_pretrained(folder), ref


@pytest.mark.parametrize("text", CASES)
def test_fix_matches_reference_parts(pair, text: str) -> None:  # type: ignore[no-untyped-def]
    ours, ref = pair
    got = [t.strip() if t.strip() == "[MASK]" else t for t in ours.tokenize(text)]
    assert got == reference_tokens(ref, text)
    ids = ours.encode(text)
    assert ids.count(ours.mask_token_id) == text.count("[MASK]")
    for i, tok_id in enumerate(ids[:-1]):
        if tok_id == ours.mask_token_id:
            assert ours.convert_ids_to_tokens(ids[i + 1]) != "\u2581" or text[
                text.index("[MASK]") + 6 :].startswith((" ", "\u3000"))


@pytest.mark.parametrize("text", CASES)
def test_equals_model_card_recipe_where_it_is_right(pair, text: str) -> None:  # type: ignore[no-untyped-def]
    ours, ref = pair
    fast = ref.tokenize(text)
    if "[MASK]" not in fast:  # " [MASK]": the recipe's index() raises on lstripped masks
        pytest.skip("the model card's recipe cannot run on this text (no [MASK] token left to find)")
    if text.count("[MASK]") != 1 or fast.index("[MASK]") + 1 >= len(fast) \
            or fast[fast.index("[MASK]") + 1] != "\u2581" or re.search(r"\[MASK\]\s", text):
        pytest.skip("the model card's recipe is right only for one [MASK] followed by its stray '▁' and no "
                    "space; this text is another case, covered by the other tests")
    assert ours.tokenize(text) == model_card_recipe(ref, text)


def test_recipe_failures_are_handled(pair) -> None:  # type: ignore[no-untyped-def]
    ours, ref = pair
    two = "吾輩は[MASK][MASK]である"
    assert ours.tokenize(two).count("[MASK]") == 2
    recipe = model_card_recipe(ref, two)
    assert recipe is not None and recipe.count("[MASK]") == 1  # the recipe deletes a mask
    assert ours.tokenize("吾輩は猫で[MASK]")[-1] == "[MASK]"
    assert model_card_recipe(ref, "吾輩は猫で[MASK]") is None  # IndexError in the recipe


def test_mask_fix_off_is_the_fast_tokenizer(pair) -> None:  # type: ignore[no-untyped-def]
    ours, ref = pair
    plain = Tokenizer(ours.spm, ours.config, mask_fix=False)
    for text in CASES:
        assert plain.encode(text) == ref(text)["input_ids"]


@pytest.mark.skipif(not SHARED_MODEL.exists(), reason=NO_SHARED)
def test_model_card_example_on_pretrained_model() -> None:
    tok = Tokenizer.from_pretrained(SHARED_MODEL)
    assert tok.tokenize("大学で[MASK]の研究をしています") == [
        "\u2581", "大学", "で", "[MASK]", "の", "研究を", "して", "います"]
    ref = transformers.AlbertTokenizerFast.from_pretrained(str(SHARED_MODEL))
    assert ref.tokenize("大学で[MASK]の研究をしています")[4] == "\u2581"
