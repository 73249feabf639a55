"""spiece.model reading: parity with sentencepiece's own view, clear errors on bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from albert_onnx import ArtifactError
from albert_onnx.tokenizer.spm_model import CONTROL, load_spm_model, parse_spm_model


def test_fields_match_sentencepiece(spm_albert: Path) -> None:
    spm = pytest.importorskip("sentencepiece", reason="sentencepiece is not installed: pip install -e '.[export]'")
    sp = spm.SentencePieceProcessor(model_file=str(spm_albert))
    ours = load_spm_model(spm_albert)
    assert len(ours.pieces) == sp.get_piece_size()
    assert len(ours.scores) == len(ours.types) == len(ours.pieces)
    for i in range(len(ours.pieces)):
        p = ours.piece(i)
        assert p.piece == sp.id_to_piece(i)
        assert p.score == pytest.approx(sp.get_score(i), abs=0)
        assert (p.type == CONTROL) == sp.is_control(i)
    assert (ours.unk_id, ours.pad_id, ours.bos_id, ours.eos_id) == (1, 0, -1, -1)
    assert ours.precompiled_charsmap and ours.add_dummy_prefix


@pytest.mark.parametrize("cut", [1, 7, 100, 5000, -3])
def test_truncated_file_is_a_clear_error(spm_albert: Path, tmp_path: Path, cut: int) -> None:
    bad = tmp_path / "spiece.model"
    bad.write_bytes(spm_albert.read_bytes()[:cut])
    with pytest.raises(ArtifactError, match="spiece.model"):
        load_spm_model(bad)


def test_garbage_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="not found"):
        load_spm_model(tmp_path / "nope.model")
    bad = tmp_path / "x.model"
    bad.write_bytes(b"\xff" * 64)
    with pytest.raises(ArtifactError, match="x.model"):
        load_spm_model(bad)
    with pytest.raises(ArtifactError, match="no pieces"):
        parse_spm_model(b"")
