"""The normalizer chain that ``AlbertTokenizerFast`` builds from a slow ALBERT tokenizer.

Order: ``````/``''`` to ``"``; NFKD and strip accents unless ``keep_accents``; lowercase
when ``do_lower_case``; the spiece precompiled charsmap, applied per grapheme cluster as
``tokenizers`` applies it; runs of spaces collapsed to one.
"""

from __future__ import annotations

import array
import re
import struct
import sys
import unicodedata
from collections.abc import Sequence

from ..errors import ArtifactError
from . import _unicode_data as U
from .graphemes import clusters, may_join

_MULTI_SPACE = re.compile(" {2,}")


def _uint32_view(data: bytes) -> Sequence[int]:
    """Little-endian uint32 values of ``data`` as a compact read-only sequence."""
    if sys.byteorder == "little":
        return memoryview(data).cast("I")
    values = array.array("I", data)
    values.byteswap()
    return values


class PrecompiledCharsmap:
    """SentencePiece's precompiled normalization map: a double-array trie over UTF-8 bytes."""

    def __init__(self, blob: bytes, source: str = "<charsmap>") -> None:
        if len(blob) < 4:
            raise ArtifactError(f"{source}: precompiled charsmap is truncated")
        (trie_size,) = struct.unpack_from("<I", blob)
        if trie_size % 4 or 4 + trie_size > len(blob):
            raise ArtifactError(f"{source}: precompiled charsmap has a bad trie size {trie_size}")
        # 32-bit units read in place (a tuple of Python ints would take 1.5 MB for NFKC's map)
        self._units = _uint32_view(blob[4 : 4 + trie_size])
        self._strings = blob[4 + trie_size :]
        self._source = source
        self._table = _LazyTable(self._single)

    def transform(self, chunk: str) -> str | None:
        """Replacement for the shortest prefix of ``chunk`` found in the map, or None."""
        units = self._units
        n_units = len(units)
        if not n_units:
            return None
        u = units[0]
        pos = (u >> 10) << ((u & 0x200) >> 6)
        for byte in chunk.encode("utf-8"):
            pos ^= byte
            if pos >= n_units:
                return None
            u = units[pos]
            if (u & 0x800000FF) != byte:
                return None
            pos ^= (u >> 10) << ((u & 0x200) >> 6)
            if u & 0x100:
                if pos >= n_units:
                    raise ArtifactError(f"{self._source}: precompiled charsmap trie is corrupt")
                start = units[pos] & 0x7FFFFFFF
                end = self._strings.find(b"\0", start)
                if end < 0:
                    raise ArtifactError(f"{self._source}: precompiled charsmap string is unterminated")
                return self._strings[start:end].decode("utf-8", "replace")
        return None

    def _single(self, cp: int) -> str:
        c = chr(cp)
        r = self.transform(c)
        return c if r is None else r

    def apply(self, text: str) -> str:
        """Normalize ``text`` the way ``tokenizers``' ``Precompiled`` normalizer does."""
        if not may_join(text):
            return text.translate(self._table)
        out = []
        table = self._table
        for g in clusters(text):
            if len(g) > 1 and len(g.encode("utf-8")) < 6:
                r = self.transform(g)
                if r is not None:
                    out.append(r)
                    continue
            out.append(g.translate(table))
        return "".join(out)


class _LazyTable(dict):
    """A ``str.translate`` table filled on first sight of each code point."""

    def __init__(self, compute) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self._compute = compute

    def __missing__(self, cp: int):  # type: ignore[no-untyped-def]
        value = self._compute(cp)
        self[cp] = value
        return value


def _strip_value(cp: int) -> int | None:
    if cp in _COMBINING_ADD:
        return None
    if cp not in _COMBINING_REMOVE and unicodedata.category(chr(cp)).startswith("M"):
        return None
    return cp


def _lower_value(cp: int) -> str:
    exc = U.LOWER_EXCEPTIONS.get(cp)
    return chr(cp).lower() if exc is None else exc


_COMBINING_ADD = frozenset(U.COMBINING_ADD)
_COMBINING_REMOVE = frozenset(U.COMBINING_REMOVE)
_NFKD_EXC_RE = re.compile("[" + "".join(re.escape(chr(c)) for c in U.NFKD_EXCEPTIONS) + "]")
_STRIP_TABLE = _LazyTable(_strip_value)
_LOWER_TABLE = _LazyTable(_lower_value)


def nfkd(text: str) -> str:
    """NFKD with the decomposition tables of ``tokenizers`` where they differ from Python's."""
    if _NFKD_EXC_RE.search(text) is None:
        return unicodedata.normalize("NFKD", text)
    out = []
    last = 0
    for m in _NFKD_EXC_RE.finditer(text):
        out.append(unicodedata.normalize("NFKD", text[last : m.start()]))
        out.append(U.NFKD_EXCEPTIONS[ord(m.group())])
        last = m.end()
    out.append(unicodedata.normalize("NFKD", text[last:]))
    return "".join(out)


class Normalizer:
    """The fast ALBERT tokenizer's normalizer for one set of settings."""

    def __init__(self, charsmap: PrecompiledCharsmap | None, *, do_lower_case: bool,
                 keep_accents: bool) -> None:
        self.charsmap = charsmap
        self.do_lower_case = do_lower_case
        self.keep_accents = keep_accents

    def __call__(self, text: str) -> str:
        if "``" in text:
            text = text.replace("``", '"')
        if "''" in text:
            text = text.replace("''", '"')
        if not self.keep_accents:
            text = nfkd(text).translate(_STRIP_TABLE)
        if self.do_lower_case:
            text = text.translate(_LOWER_TABLE)
        if self.charsmap is not None:
            text = self.charsmap.apply(text)
        if "  " in text:
            text = _MULTI_SPACE.sub(" ", text)
        return text


# ---------------------------------------------------------------------- alignments
# The same chain again, tracking for every normalized character the span of original
# characters it came from, with the rules of ``tokenizers``' NormalizedString: a transform
# is a list of (char, change), change 0 replacing the next old character, 1 inserting a
# character that shares the previous one's span, -n replacing one and dropping n more.
# The offsets of ``Tokenizer.encode_with_offsets`` come from here; plain encoding keeps the
# faster chain above (a test checks that both give the same text).

Span = tuple[int, int]


def transform(align: list[Span], dest: list[tuple[str, int]], initial_offset: int = 0) -> tuple[str, list[Span]]:
    """Apply ``dest`` to a string whose characters have the spans ``align``."""
    pos = initial_offset
    last = len(align) - 1
    chars: list[str] = []
    spans: list[Span] = []
    for c, change in dest:
        if change > 0:
            span = align[min(pos, last + 1) - 1] if pos >= 1 else (0, 0)
        else:
            span = align[min(pos, last)] if last >= 0 else (0, 0)
            pos += 1 - change
        chars.append(c)
        spans.append(span)
    return "".join(chars), spans


def _replace_all(text: str, align: list[Span], old: str, new: str) -> tuple[str, list[Span]]:
    """``NormalizedString.replace`` of a literal: each match is removed and ``new`` inserted."""
    if old not in text:
        return text, align
    out_text, out_align = [], []
    last = 0
    start = text.find(old)
    while start >= 0:
        out_text.append(text[last:start])
        out_align.extend(align[last:start])
        end = start + len(old)
        out_text.append(new)
        out_align.extend([align[end - 1]] * len(new))
        last = end
        start = text.find(old, end)
    out_text.append(text[last:])
    out_align.extend(align[last:])
    return "".join(out_text), out_align


def _collapse_spaces(text: str, align: list[Span]) -> tuple[str, list[Span]]:
    if "  " not in text:
        return text, align
    out_text, out_align = [], []
    last = 0
    for m in _MULTI_SPACE.finditer(text):
        out_text.append(text[last : m.start()])
        out_align.extend(align[last : m.start()])
        out_text.append(" ")
        out_align.append(align[m.end() - 1])
        last = m.end()
    out_text.append(text[last:])
    out_align.extend(align[last:])
    return "".join(out_text), out_align


def _nfkd_dest(text: str) -> list[tuple[str, int]]:
    """Per character decomposition (first piece replaces, the rest are inserted), then the
    canonical reordering of combining marks across character boundaries."""
    dest: list[tuple[str, int]] = []
    for c in text:
        exc = U.NFKD_EXCEPTIONS.get(ord(c))
        d = exc if exc is not None else unicodedata.normalize("NFKD", c)
        dest.extend((x, 0 if k == 0 else 1) for k, x in enumerate(d))
    out: list[tuple[str, int]] = []
    run: list[tuple[str, int]] = []
    for item in dest:
        if unicodedata.combining(item[0]):
            run.append(item)
            continue
        if run:
            out.extend(sorted(run, key=lambda it: unicodedata.combining(it[0])))
            run = []
        out.append(item)
    if run:
        out.extend(sorted(run, key=lambda it: unicodedata.combining(it[0])))
    return out


def _filter_dest(text: str, keep) -> tuple[list[tuple[str, int]], int]:  # type: ignore[no-untyped-def]
    """``NormalizedString.filter``: kept characters, each carrying the removals after it."""
    dest: list[tuple[str, int]] = []
    removed = removed_start = 0
    last: str | None = None
    for c in text:
        if keep(c):
            if last is not None:
                dest.append((last, -removed))
            else:
                removed_start = removed
            last = c
            removed = 0
        else:
            removed += 1
    if last is not None:
        dest.append((last, -removed))
    return dest, removed_start


def _charsmap_dest(charsmap: PrecompiledCharsmap, text: str) -> list[tuple[str, int]] | None:
    """The Precompiled normalizer's transform list, or None when it changes nothing."""
    dest: list[tuple[str, int]] = []
    modified = False

    def replace(old: str, new: str) -> None:
        dest.extend((c, 0) for c in new)
        diff = len(new) - len(old)
        if diff > 0:
            for k in range(len(dest) - diff, len(dest)):
                dest[k] = (dest[k][0], 1)
        elif diff < 0 and dest:
            dest[-1] = (dest[-1][0], dest[-1][1] + diff)

    for g in (clusters(text) if may_join(text) else text):
        if len(g.encode("utf-8")) < 6:
            r = charsmap.transform(g)
            if r is not None:
                modified = True
                replace(g, r)
                continue
        for c in g:
            r = charsmap.transform(c)
            if r is not None:
                modified = True
                replace(c, r)
            else:
                dest.append((c, 0))
    return dest if modified else None


def _strip_keep(c: str) -> bool:
    return _strip_value(ord(c)) is not None


def normalize_aligned(norm: Normalizer, text: str) -> tuple[str, list[Span]]:
    """``norm(text)`` and, per normalized character, its span of characters in ``text``."""
    align: list[Span] = [(i, i + 1) for i in range(len(text))]
    text, align = _replace_all(text, align, "``", '"')
    text, align = _replace_all(text, align, "''", '"')
    if not norm.keep_accents:
        text, align = transform(align, _nfkd_dest(text))
        dest, start = _filter_dest(text, _strip_keep)
        text, align = transform(align, dest, start)
    if norm.do_lower_case:
        dest = [(x, 0 if k == 0 else 1) for c in text for k, x in enumerate(_lower_value(ord(c)))]
        text, align = transform(align, dest)
    if norm.charsmap is not None:
        cdest = _charsmap_dest(norm.charsmap, text)
        if cdest is not None:
            text, align = transform(align, cdest)
    return _collapse_spaces(text, align)
