"""Extended grapheme clusters (UAX #29) from the tables shipped in ``_unicode_data``."""

from __future__ import annotations

import re
from functools import lru_cache

from . import _unicode_data as U


def _cls(ranges: list[tuple[int, int]]) -> str:
    out = []
    for lo, hi in ranges:
        out.append(re.escape(chr(lo)) if lo == hi else f"{re.escape(chr(lo))}-{re.escape(chr(hi))}")
    return "".join(out)


@lru_cache(maxsize=1)
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    g = {k: _cls(v) for k, v in U.GCB.items()}
    incb = {k: _cls(v) for k, v in U.INCB.items()}
    pict = _cls(U.EXT_PICT)
    control = f"[{g['Control']}{g['CR']}{g['LF']}]"
    hangul = (
        f"[{g['L']}]*(?:[{g['V']}]+|[{g['LV']}][{g['V']}]*|[{g['LVT']}])[{g['T']}]*"
        f"|[{g['L']}]+|[{g['T']}]+"
    )
    ri = f"[{g['Regional_Indicator']}]{{2}}"
    xpicto = f"[{pict}](?:[{g['Extend']}]*[{g['ZWJ']}][{pict}])*"
    link = f"[{incb['Extend']}{incb['Linker']}]"
    conjunct = f"[{incb['Consonant']}](?:{link}*[{incb['Linker']}]{link}*[{incb['Consonant']}])+"
    core = f"(?:{hangul}|{ri}|{xpicto}|{conjunct}|[^{g['Control']}{g['CR']}{g['LF']}])"
    post = f"[{g['Extend']}{g['ZWJ']}{g['SpacingMark']}]"
    cluster = (
        f"{g['CR'] and '[' + g['CR'] + ']'}[{g['LF']}]|{control}"
        f"|[{g['Prepend']}]*{core}{post}*|[{g['Prepend']}]+|."
    )
    # Characters that can join a neighbour into a multi-code-point cluster. A text without
    # any of them is one cluster per code point, the common case, handled without the regex.
    joiners = (
        f"[{g['Extend']}{g['ZWJ']}{g['SpacingMark']}{g['Prepend']}{g['CR']}{g['L']}{g['V']}"
        f"{g['T']}{g['LV']}{g['LVT']}{g['Regional_Indicator']}]"
    )
    return re.compile(cluster, re.DOTALL), re.compile(joiners)


class _JoinerTable(dict):  # type: ignore[type-arg]
    """Code point -> may it join a neighbour, filled on first sight of each code point
    (one dictionary lookup per character instead of a large character class per text)."""

    def __missing__(self, c: str) -> bool:
        value = _patterns()[1].match(c) is not None
        self[c] = value
        return value


_JOINERS = _JoinerTable()


def may_join(text: str) -> bool:
    """False when every code point of ``text`` is certainly a cluster of its own."""
    joiners = _JOINERS
    return any(joiners[c] for c in text)


def clusters(text: str) -> list[str]:
    """Split ``text`` into extended grapheme clusters."""
    return _patterns()[0].findall(text)
