"""What the CPU offers that changes int8 answers: its model name and vector extensions."""

from __future__ import annotations

import platform
from functools import lru_cache
from pathlib import Path

# x86 extensions with an int8 dot product that sums u8 x s8 pairs straight into 32 bits.
VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})


@lru_cache(maxsize=1)
def cpu_info() -> tuple[str, frozenset[str]]:
    """The CPU's model name and its feature flags (empty where /proc/cpuinfo is unreadable)."""
    name = platform.processor() or platform.machine()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return name, frozenset()
    lines = text.splitlines()
    name = next((x.split(":", 1)[1].strip() for x in lines if x.startswith("model name")), name)
    flags = next((x for x in lines if x.startswith("flags")), "").partition(":")[2].split()
    return name, frozenset(flags)


def int8_weights_saturate() -> bool:
    """True where ONNX Runtime's uint8 x int8 products saturate: an x86 CPU known to lack VNNI.

    Without VNNI the kernels add pairs of u8 x s8 products into 16 bits (``vpmaddubsw``),
    which clips at 32767: with full-range int8 weights, answers drift from fp32. uint8 weights
    take an exact 16-bit path on every CPU. False where the flags cannot be read.
    """
    if platform.machine().lower() not in ("x86_64", "amd64", "i686", "x86"):
        return False
    _, flags = cpu_info()
    return bool(flags) and "avx2" in flags and not flags & VNNI_FLAGS
