"""A pure-Python ALBERT tokenizer, token for token with ``AlbertTokenizerFast``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..artifact import MANIFEST_NAME, SPIECE_NAME, Artifact, load_artifact
from ..errors import ArtifactError, InputError
from .config import AddedToken, TokenizerConfig, config_from_hf_folder
from .encoding import Encoding
from .normalizer import Normalizer, PrecompiledCharsmap, Span, normalize_aligned
from .spm_model import SpmModel, load_spm_model
from .unigram import Unigram

_SPACE = "\u2581"
# Unicode White_Space, as Rust's char::is_whitespace (Python's str.isspace adds U+001C..U+001F).
_WHITE_SPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_SPLIT_WORDS = re.compile(f"(?={_SPACE})")
_CLEANUP = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
            (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))


TRUNCATION = ("longest_first", "only_first")


def truncated_lengths(lengths: Sequence[int], room: int, strategy: str) -> list[int]:
    """Token counts of one or two texts after truncation to ``room`` tokens (special tokens
    not counted), by the rules of ``tokenizers``."""
    if strategy not in TRUNCATION:
        raise InputError(f"unknown truncation strategy {strategy!r}; valid: {list(TRUNCATION)}")
    if room < len(lengths):
        raise InputError(f"{room + (2 if len(lengths) == 1 else 3)} tokens leave no room for the text")
    if sum(lengths) <= room:
        return list(lengths)
    if len(lengths) == 1:
        return [room]
    n1, n2 = lengths
    if strategy == "only_first":
        if n1 <= sum(lengths) - room:
            raise InputError(f"the second text is {n2} tokens long, which leaves no room for the first within "
                             f"{room + 3} tokens; truncation only_first cuts the first text only")
        return [room - n2, n2]
    swap = n1 > n2  # longest_first: n1 is the shorter from here on
    if swap:
        n1, n2 = n2, n1
    n2 = n1 if n1 > room else max(n1, room - n1)
    if n1 + n2 > room:
        n1 = room // 2
        n2 = n1 + room % 2
    return [n2, n1] if swap else [n1, n2]


def overflow_windows(total: int, room: int, stride: int) -> list[tuple[int, int]]:
    """``(start, stop)`` token ranges of the windows a text of ``total`` tokens overflows into,
    ``room`` tokens each and ``stride`` shared by consecutive ones (``tokenizers``' truncation
    with ``return_overflowing_tokens``); the caller checks ``stride < room`` where it must cut."""
    out = []
    for begin in range(0, total, room - stride):
        stop = min(begin + room, total)
        out.append((begin, stop))
        if stop == total:
            break
    return out


def _digit_comma(piece: str) -> bool:
    return len(piece) >= 2 and piece[-1] == "," and piece[-2].isdigit()


class Tokenizer:
    """ALBERT SentencePiece tokenizer that needs only the standard library and NumPy.

    With ``mask_fix=True`` (the default) text right after ``[MASK]`` continues the
    sentence instead of starting a new ``▁`` word, so the stray lone ``▁`` that
    ``AlbertTokenizerFast`` puts after every mask is not produced. With ``mask_fix=False``
    the output equals ``AlbertTokenizerFast`` exactly.
    """

    def __init__(self, spm: SpmModel, config: TokenizerConfig, *, mask_fix: bool = True,
                 source: str = "<memory>") -> None:
        if spm.model_type != 1:
            raise ArtifactError(f"{source}: SentencePiece model type {spm.model_type} is not "
                                "supported; only unigram (type 1, as ALBERT uses) is")
        self.config = config
        self.mask_fix = mask_fix
        self.spm = spm
        scores = [score - 100.0 if _digit_comma(piece) else score for piece, score in zip(spm.pieces, spm.scores)]
        self._unigram = Unigram(spm.pieces, scores, spm.unk_id)
        charsmap = (PrecompiledCharsmap(spm.precompiled_charsmap, source)
                    if spm.precompiled_charsmap else None)
        self._normalize = Normalizer(charsmap, do_lower_case=config.do_lower_case,
                                     keep_accents=config.keep_accents)
        self._id_to_token = list(spm.pieces)  # the same string objects as the unigram's keys
        self._added: dict[str, AddedToken] = {}
        for t in config.added_tokens:
            if t.id >= len(self._id_to_token):
                self._id_to_token.extend([""] * (t.id + 1 - len(self._id_to_token)))
            self._id_to_token[t.id] = t.content
            self._added[t.content] = t
        self._added_ids = {t.content: t.id for t in config.added_tokens}
        self._special_ids = frozenset(t.id for t in config.added_tokens if t.special)
        self._split_re = (re.compile("|".join(re.escape(c) for c in
                                               sorted(self._added, key=len, reverse=True)))
                          if self._added else None)
        st = config.special_tokens
        self.cls_token_id = self._special_id(st["cls_token"])
        self.sep_token_id = self._special_id(st["sep_token"])
        self.pad_token_id = self._special_id(st["pad_token"])
        self.mask_token_id = self._special_id(st["mask_token"])
        self.unk_token_id = self._special_id(st["unk_token"])
        self.mask_token = st["mask_token"]
        self.model_max_length = config.model_max_length

    def _special_id(self, content: str) -> int:
        i = self._id_of(content)
        if i is None:
            raise ArtifactError(f"special token {content!r} has no id in the vocabulary")
        return i

    def _id_of(self, token: str) -> int | None:
        """The id of a token string: an added token's own, else the lowest id whose string it is."""
        i = self._added_ids.get(token)
        if i is not None:
            return i
        i = self._unigram.piece_id(token)
        if i is not None and self._id_to_token[i] == token:
            return i
        if i is None and token:
            return None
        # a piece whose first id an added token took over, or the empty string: look along the table
        return next((n for n, t in enumerate(self._id_to_token) if t == token), None)

    @classmethod
    def from_pretrained(cls, path: str | Path, *, mask_fix: bool = True,
                        do_lower_case: bool | None = None, keep_accents: bool | None = None,
                        remove_space: bool | None = None) -> Tokenizer:
        """Load from a Hugging Face model folder or an albert-onnx export artifact.

        Args:
            path: folder holding ``spiece.model`` (plus ``tokenizer_config.json``,
                ``special_tokens_map.json``, ``tokenizer.json`` where present), or an artifact.
            mask_fix: drop the stray ``▁`` the fast tokenizer puts after ``[MASK]``.
            do_lower_case, keep_accents, remove_space: override the folder's settings.
        """
        folder = Path(path)
        if not folder.is_dir():
            raise ArtifactError(f"{folder}: not a folder; expected a Hugging Face model folder "
                                f"with {SPIECE_NAME} or an albert-onnx artifact folder")
        overrides = {"do_lower_case": do_lower_case, "keep_accents": keep_accents,
                     "remove_space": remove_space}
        if (folder / MANIFEST_NAME).exists():
            return cls.from_artifact(load_artifact(folder, verify=False), mask_fix=mask_fix,
                                     **overrides)
        spm = load_spm_model(folder / SPIECE_NAME)
        config = config_from_hf_folder(folder, spm, **overrides)
        return cls(spm, config, mask_fix=mask_fix, source=str(folder / SPIECE_NAME))

    @classmethod
    def from_artifact(cls, artifact: Artifact, *, mask_fix: bool = True,
                      **overrides: bool | None) -> Tokenizer:
        """The tokenizer of a loaded export artifact (settings from its manifest)."""
        spiece = artifact.folder / SPIECE_NAME
        config = TokenizerConfig.from_dict(artifact.manifest["tokenizer"],
                                           str(artifact.folder / MANIFEST_NAME))
        for key, value in overrides.items():
            if value is not None:
                setattr(config, key, bool(value))
        return cls(load_spm_model(spiece), config, mask_fix=mask_fix, source=str(spiece))

    # ------------------------------------------------------------------ encoding
    def __len__(self) -> int:
        return len(self._id_to_token)

    @property
    def vocab_size(self) -> int:
        """Size of the SentencePiece vocabulary (without added tokens), as HF reports it."""
        return len(self.spm.pieces)

    def _split_special(self, text: str) -> list[tuple[int, int, AddedToken | None]]:
        """Cut added tokens out of the raw text, leftmost-longest, honouring lstrip/rstrip:
        ``(start, end, token or None)`` spans covering the text in order."""
        if self._split_re is None:
            return [(0, len(text), None)] if text else []
        out: list[tuple[int, int, AddedToken | None]] = []
        last = 0
        for m in self._split_re.finditer(text):
            tok = self._added[m.group()]
            start, end = m.start(), m.end()
            if tok.lstrip:
                while start > last and text[start - 1] in _WHITE_SPACE:
                    start -= 1
            if tok.rstrip:
                while end < len(text) and text[end] in _WHITE_SPACE:
                    end += 1
            if start > last:
                out.append((last, start, None))
            out.append((start, end, tok))  # the span, stripped whitespace included
            last = end
        if last < len(text):
            out.append((last, len(text), None))
        return out

    @staticmethod
    def _check_text(text: str) -> None:
        if not isinstance(text, str):
            raise InputError(f"text must be a str, not {type(text).__name__}")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InputError(f"text has a lone surrogate {text[exc.start]!r} at position "
                             f"{exc.start}; text must be valid Unicode") from None

    def _words(self, norm: str, after_mask: bool) -> list[str]:
        """Metaspace: spaces become ``▁``, a ``▁`` in front (not after a mask with the fix),
        split before each ``▁``."""
        norm = norm.replace(" ", _SPACE)
        if norm[0] != _SPACE and not (after_mask and self.mask_fix):
            norm = _SPACE + norm
        if _SPACE not in norm[1:]:
            return [norm]
        return [w for w in _SPLIT_WORDS.split(norm) if w]

    def _encode_pieces(self, text: str) -> list[tuple[str, int]]:
        self._check_text(text)
        out: list[tuple[str, int]] = []
        after_mask = False
        encode_word = self._unigram.encode
        for start, end, tok in self._split_special(text):
            if tok is not None:
                out.append((text[start:end], tok.id))
                after_mask = tok.content == self.mask_token
                continue
            norm = self._normalize(text[start:end])
            if not norm:
                continue
            for word in self._words(norm, after_mask):
                out.extend(encode_word(word))
            after_mask = False
        return out

    def _encode_spans(self, text: str) -> list[tuple[str, int, Span, int]]:
        """Like ``_encode_pieces``, with each token's span of characters in ``text`` and the
        index of its word (``tokenizers``' pre-token: an added token, or a Metaspace word)."""
        self._check_text(text)
        out: list[tuple[str, int, Span, int]] = []
        after_mask = False
        encode_word = self._unigram.encode
        words = 0
        for start, end, tok in self._split_special(text):
            if tok is not None:
                out.append((text[start:end], tok.id, (start, end), words))
                words += 1
                after_mask = tok.content == self.mask_token
                continue
            norm, align = normalize_aligned(self._normalize, text[start:end])
            if not norm:
                continue
            if norm[0] != " " and not (after_mask and self.mask_fix):
                align = [align[0], *align]  # the prepended ▁ shares the first character's span
            at = 0
            for word in self._words(norm, after_mask):
                for piece, piece_id in encode_word(word):
                    first, last = align[at], align[at + len(piece) - 1]
                    out.append((piece, piece_id, (start + first[0], start + last[1]), words))
                    at += len(piece)
                words += 1
            after_mask = False
        return out

    def tokenize(self, text: str) -> list[str]:
        """Token strings, without ``[CLS]``/``[SEP]`` (unknown text keeps its characters)."""
        return [t for t, _ in self._encode_pieces(text)]

    def encode(self, text: str, add_special_tokens: bool = True, *, max_length: int | None = None,
               truncation: bool = False) -> list[int]:
        """Token ids of one text; ``[CLS] … [SEP]`` around it unless told otherwise.

        Raises:
            InputError: if the ids exceed ``max_length`` and ``truncation`` is False.
        """
        ids = [i for _, i in self._encode_pieces(text)]
        extra = 2 if add_special_tokens else 0
        if max_length is not None and len(ids) + extra > max_length:
            if not truncation:
                raise InputError(f"text is {len(ids) + extra} tokens long, more than max_length="
                                 f"{max_length}; shorten it or pass truncation=True")
            if max_length < extra:
                raise InputError(f"max_length={max_length} leaves no room for [CLS] and [SEP]")
            ids = ids[: max_length - extra]
        if add_special_tokens:
            ids = [self.cls_token_id, *ids, self.sep_token_id]
        return ids

    def encode_with_offsets(self, text: str, text_pair: str | None = None,
                            add_special_tokens: bool = True) -> Encoding:
        """Ids, type ids, character offsets and attention mask of a text or a pair, as
        ``AlbertTokenizerFast(text, text_pair, return_offsets_mapping=True)`` gives them
        (``[CLS] A [SEP] B [SEP]``; special tokens get the offsets ``(0, 0)``)."""
        parts = [self._encode_spans(text)] + ([] if text_pair is None else [self._encode_spans(text_pair)])
        return self.assemble(parts, add_special_tokens)

    def assemble(self, parts: Sequence[Sequence[tuple[str, int, Span, int]]],
                 add_special_tokens: bool = True) -> Encoding:
        """An :class:`Encoding` of one or two texts' tokens (``_encode_spans`` rows, cut as the
        caller likes: windows of a long text), with ``[CLS] A [SEP] B [SEP]`` around them."""
        cls = (self._id_to_token[self.cls_token_id], self.cls_token_id, (0, 0), None)
        sep = (self._id_to_token[self.sep_token_id], self.sep_token_id, (0, 0), None)
        rows: list[tuple[str, int, Span, int | None, int, int]] = [(*cls, 0, 1)] if add_special_tokens else []
        for type_id, part in enumerate(parts):  # (piece, id, span, word, type id, special)
            rows += [(*row, type_id, 0) for row in part]
            if add_special_tokens:
                rows.append((*sep, type_id, 1))
        return Encoding(ids=[r[1] for r in rows], type_ids=[r[4] for r in rows], offsets=[r[2] for r in rows],
                        attention_mask=[1] * len(rows), tokens=[r[0] for r in rows],
                        special_tokens_mask=[r[5] for r in rows], word_ids=[r[3] for r in rows])

    def encode_truncated(self, text: str, text_pair: str | None, max_length: int,
                         strategy: str = "longest_first", side: str = "right") -> Encoding:
        """``encode_with_offsets`` cut to ``max_length`` tokens, as ``AlbertTokenizerFast(...,
        truncation=strategy, max_length=max_length)`` cuts: ``longest_first`` (a pair loses tokens
        from its longer text) or ``only_first``; a single text loses its end (``side="left"``:
        its start, as the tokenizer's ``truncation_side="left"``)."""
        parts = [self._encode_spans(text)] + ([] if text_pair is None else [self._encode_spans(text_pair)])
        return self._cut(parts, max_length, strategy, side)

    def _cut(self, parts: Sequence[Sequence[tuple[str, int, Span, int]]], max_length: int,
             strategy: str, side: str = "right") -> Encoding:
        room = max_length - (2 if len(parts) == 1 else 3)
        lengths = truncated_lengths([len(p) for p in parts], room, strategy)
        if side == "left":
            return self.assemble([p[len(p) - n :] for p, n in zip(parts, lengths)])
        return self.assemble([p[:n] for p, n in zip(parts, lengths)])

    def encode_pairs(self, text: str, pairs: Sequence[str], max_length: int | None = None,
                     strategy: str = "longest_first") -> list[Encoding]:
        """``encode_with_offsets(text, pair)`` for each pair (``encode_truncated`` with
        ``max_length``), ``text`` tokenized once: a question with its choices, a premise with
        its hypotheses."""
        first = self._encode_spans(text)
        out = []
        for pair in pairs:
            parts = [first, self._encode_spans(pair)]
            try:
                out.append(self.assemble(parts) if max_length is None else self._cut(parts, max_length, strategy))
            except InputError as exc:
                raise InputError(f"paired with {pair!r}: {exc}") from None
        return out

    def encode_batch(self, texts: Sequence[str], *, max_length: int | None = None,
                     truncation: bool = False, pad_to: int | None = None) -> dict[str, np.ndarray]:
        """Encode texts to padded int64 arrays ``input_ids``, ``attention_mask``, ``token_type_ids``.

        The batch is padded to its longest member, or to ``pad_to`` when given.
        """
        if isinstance(texts, str):
            raise InputError("encode_batch takes a list of texts; use encode() for one text")
        rows = [self.encode(t, max_length=max_length, truncation=truncation) for t in texts]
        return self.pad(rows, pad_to=pad_to)

    __call__ = encode_batch

    def pad(self, rows: Sequence[Sequence[int]], pad_to: int | None = None,
            type_ids: Sequence[Sequence[int]] | None = None) -> dict[str, np.ndarray]:
        """Stack id lists (and their type ids, zeros by default) into right-padded arrays."""
        width = max((len(r) for r in rows), default=0)
        if pad_to is not None:
            if pad_to < width:
                raise InputError(f"pad_to={pad_to} is shorter than the longest text ({width} tokens)")
            width = pad_to
        ids = np.full((len(rows), width), self.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        types = np.zeros((len(rows), width), dtype=np.int64)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = r
            mask[i, : len(r)] = 1
            if type_ids is not None:
                types[i, : len(r)] = type_ids[i]
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}

    # ------------------------------------------------------------------ decoding
    def convert_ids_to_tokens(self, ids: int | Sequence[int]) -> str | list[str]:
        """Token strings of ids (unknown text is ``<unk>``), as the reference returns them."""
        if isinstance(ids, (int, np.integer)):
            return self._id_to_token[self._check_id(ids)]
        return [self._id_to_token[self._check_id(i)] for i in ids]

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> int | list[int]:
        """Ids of token strings; strings outside the vocabulary give the unknown id."""
        if isinstance(tokens, str):
            i = self._id_of(tokens)
            return self.unk_token_id if i is None else i
        return [self.unk_token_id if (i := self._id_of(t)) is None else i for t in tokens]

    def _check_id(self, i: int) -> int:
        i = int(i)
        if not 0 <= i < len(self._id_to_token) or (self._id_to_token[i] == "" and i >= len(self.spm.pieces)):
            raise InputError(f"token id {i} is outside the vocabulary (valid: 0..{len(self) - 1})")
        return i

    def convert_tokens_to_string(self, tokens: Sequence[str]) -> str:
        """Join token strings as the fast tokenizer's Metaspace decoder does: ``▁`` becomes a
        space, and the first token loses its ``▁``."""
        if not tokens:
            return ""
        return tokens[0].replace(_SPACE, "") + "".join(tokens[1:]).replace(_SPACE, " ")

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        """Text of ids, as ``AlbertTokenizerFast.decode`` gives it."""
        tokens = [self._id_to_token[self._check_id(i)] for i in ids
                  if not (skip_special_tokens and int(i) in self._special_ids)]
        text = self.convert_tokens_to_string(tokens)
        if self.config.clean_up_tokenization_spaces:
            for a, b in _CLEANUP:
                text = text.replace(a, b)
        return text
