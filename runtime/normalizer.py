"""The normalizer chain that ``AlbertTokenizerFast`` builds from a slow ALBERT tokenizer.

Order: ``````/``''`` to ``"``; NFKD and strip accents unless ``keep_accents``; lowercase
when ``do_lower_case``; the spiece precompiled charsmap, applied per grapheme cluster as
``tokenizers`` applies it; runs of spaces collapsed to one.
"""

from __future__ import annotations

import re
import struct
import unicodedata

from . import _unicode_data as U
from .errors import ArtifactError
from .graphemes import clusters, may_join

_MULTI_SPACE = re.compile(" {2,}")


class PrecompiledCharsmap:
    """SentencePiece's precompiled normalization map: a double-array trie over UTF-8 bytes."""

    def __init__(self, blob: bytes, source: str = "<charsmap>") -> None:
        if len(blob) < 4:
            raise ArtifactError(f"{source}: precompiled charsmap is truncated")
        (trie_size,) = struct.unpack_from("<I", blob)
        if trie_size % 4 or 4 + trie_size > len(blob):
            raise ArtifactError(f"{source}: precompiled charsmap has a bad trie size {trie_size}")
        self._units = struct.unpack_from(f"<{trie_size // 4}I", blob, 4)
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
