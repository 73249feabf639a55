"""The shipped Unicode tables are what the generator makes from the installed libraries."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

import pytest

from albert_onnx.tokenizer import _unicode_data
from albert_onnx.tokenizer.graphemes import clusters, may_join

ROOT = Path(__file__).resolve().parents[1]


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen_unicode_tables", ROOT / "tools" / "gen_unicode_tables.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_tables_regenerate_identically() -> None:
    pytest.importorskip("regex", reason="regex is not installed: pip install -e '.[test]'")
    tokenizers = pytest.importorskip("tokenizers", reason="tokenizers is not installed: pip install -e '.[export]'")
    if tokenizers.__version__ != _unicode_data.VERSIONS["tokenizers"]:
        pytest.skip(f"tables were made with tokenizers {_unicode_data.VERSIONS['tokenizers']}")
    gen = _generator()
    shipped = ROOT / "runtime" / "tokenizer" / "_unicode_data.py"
    assert gen.render(gen.build_tables()) == shipped.read_text(encoding="utf-8")


def test_clusters_agree_with_regex_module_on_common_scripts() -> None:
    regex = pytest.importorskip("regex", reason="regex is not installed: pip install -e '.[test]'")
    rng = random.Random(1)
    pool = [chr(c) for c in [*range(0x20, 0x250), *range(0x300, 0x370), *range(0x3040, 0x30FF),
                             *range(0x1100, 0x1200), *range(0xAC00, 0xAC40), *range(0x1F1E6, 0x1F200),
                             *range(0x1F300, 0x1F320), 0x200D, 0xD, 0xA, 0xFE0F, 0x1F3FB, 0x3099,
                             0xFF9E, 0xFF76]]
    for _ in range(5000):
        s = "".join(rng.choice(pool) for _ in range(rng.randint(1, 12)))
        assert clusters(s) == regex.findall(r"\X", s), repr(s)
        if not may_join(s):
            assert clusters(s) == list(s)
