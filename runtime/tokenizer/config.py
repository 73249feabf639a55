"""Tokenizer settings read from a Hugging Face model folder or an export artifact."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ArtifactError
from .spm_model import CONTROL, USER_DEFINED, SpmModel

SPECIAL_KEYS = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token",
                "mask_token")
ALBERT_DEFAULTS = {"bos_token": "[CLS]", "eos_token": "[SEP]", "unk_token": "<unk>",
                   "sep_token": "[SEP]", "pad_token": "<pad>", "cls_token": "[CLS]",
                   "mask_token": "[MASK]"}


@dataclass(frozen=True)
class AddedToken:
    id: int
    content: str
    lstrip: bool = False
    rstrip: bool = False
    special: bool = True


@dataclass
class TokenizerConfig:
    """Everything besides ``spiece.model`` that fixes how text becomes ids."""

    do_lower_case: bool = True
    keep_accents: bool = False
    remove_space: bool = True
    special_tokens: dict[str, str] = field(default_factory=lambda: dict(ALBERT_DEFAULTS))
    added_tokens: list[AddedToken] = field(default_factory=list)
    model_max_length: int | None = None
    clean_up_tokenization_spaces: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str) -> TokenizerConfig:
        try:
            return cls(
                do_lower_case=bool(data["do_lower_case"]),
                keep_accents=bool(data["keep_accents"]),
                remove_space=bool(data["remove_space"]),
                special_tokens=dict(data["special_tokens"]),
                added_tokens=[AddedToken(**t) for t in data["added_tokens"]],
                model_max_length=data.get("model_max_length"),
                clean_up_tokenization_spaces=bool(data.get("clean_up_tokenization_spaces", False)),
            )
        except (KeyError, TypeError) as exc:
            raise ArtifactError(f"{source}: tokenizer settings are incomplete ({exc})") from None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: cannot read JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ArtifactError(f"{path}: expected a JSON object")
    return data


def _token_content(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def config_from_hf_folder(folder: Path, spm: SpmModel, **overrides: bool | None) -> TokenizerConfig:
    """Build the settings ``AlbertTokenizerFast.from_pretrained(folder)`` would use."""
    tc = _read_json(folder / "tokenizer_config.json") if (folder / "tokenizer_config.json").exists() else {}
    stm = (_read_json(folder / "special_tokens_map.json")
           if (folder / "special_tokens_map.json").exists() else {})
    tj = _read_json(folder / "tokenizer.json") if (folder / "tokenizer.json").exists() else None

    cfg = TokenizerConfig(
        do_lower_case=bool(tc.get("do_lower_case", True)),
        keep_accents=bool(tc.get("keep_accents", False)),
        remove_space=bool(tc.get("remove_space", True)),
        clean_up_tokenization_spaces=bool(tc.get("clean_up_tokenization_spaces", False)),
    )
    mml = tc.get("model_max_length")
    cfg.model_max_length = int(mml) if isinstance(mml, (int, float)) and mml < 1e12 else None
    for key in SPECIAL_KEYS:
        content = _token_content(stm.get(key)) or _token_content(tc.get(key))
        if content is not None:
            cfg.special_tokens[key] = content
    if tj is not None:
        _settings_from_tokenizer_json(tj, cfg, folder / "tokenizer.json")
    for key, value in overrides.items():
        if value is not None:
            setattr(cfg, key, bool(value))
    cfg.added_tokens = _added_tokens(tc, tj, spm, cfg)
    return cfg


def _settings_from_tokenizer_json(tj: dict[str, Any], cfg: TokenizerConfig, path: Path) -> None:
    """A saved tokenizer.json fixes the normalizer: read the settings it was built with."""
    norm = tj.get("normalizer") or {}
    steps = norm.get("normalizers", [norm]) if norm.get("type") == "Sequence" else [norm]
    kinds = {s.get("type") for s in steps if isinstance(s, dict)}
    cfg.do_lower_case = "Lowercase" in kinds
    cfg.keep_accents = not ({"NFKD", "StripAccents"} <= kinds)
    model = tj.get("model") or {}
    if model.get("type") not in (None, "Unigram"):
        raise ArtifactError(f"{path}: model type {model.get('type')!r} is not supported; "
                            "only SentencePiece Unigram (ALBERT) tokenizers are")


def _added_tokens(tc: dict[str, Any], tj: dict[str, Any] | None, spm: SpmModel,
                  cfg: TokenizerConfig) -> list[AddedToken]:
    by_content: dict[str, AddedToken] = {}
    mask = cfg.special_tokens["mask_token"]

    def add(tok_id: int, content: str, lstrip: bool = False, rstrip: bool = False,
            special: bool = True, normalized: bool = False, single_word: bool = False) -> None:
        if normalized and not special:
            raise ArtifactError(f"added token {content!r} is matched after normalization; "
                                "only raw-text added tokens are supported")
        if single_word:
            raise ArtifactError(f"added token {content!r} uses single_word, which is not supported")
        if content not in by_content:
            by_content[content] = AddedToken(tok_id, content, lstrip or content == mask, rstrip,
                                             special)

    def add_entry(tok_id: int, t: dict[str, Any]) -> None:
        """An added token as tokenizer.json or tokenizer_config.json describes it."""
        add(tok_id, t["content"], bool(t.get("lstrip")), bool(t.get("rstrip")),
            bool(t.get("special", True)), bool(t.get("normalized")), bool(t.get("single_word")))

    for t in (tj or {}).get("added_tokens", []):
        add_entry(int(t["id"]), t)
    for tok_id, t in sorted((int(k), v) for k, v in (tc.get("added_tokens_decoder") or {}).items()):
        add_entry(tok_id, t)
    specials = set(cfg.special_tokens.values())
    for i, (piece, ptype) in enumerate(zip(spm.pieces, spm.types)):
        if ptype in (CONTROL, USER_DEFINED) or i == spm.unk_id:
            add(i, piece, special=ptype == CONTROL or piece in specials or i == spm.unk_id)
    vocab = {piece: i for i, piece in enumerate(spm.pieces)}
    next_id = max([len(spm.pieces) - 1] + [t.id for t in by_content.values()]) + 1
    for key in SPECIAL_KEYS:
        content = cfg.special_tokens[key]
        if content not in by_content:
            if content in vocab:
                add(vocab[content], content)
            else:
                add(next_id, content)
                next_id += 1
    return sorted(by_content.values(), key=lambda t: t.id)
