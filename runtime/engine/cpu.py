"""What the CPU offers that changes int8 speed and answers: its model name, vector extensions
and class, and which int8 weight form ONNX Runtime multiplies exactly and fastest on it."""

from __future__ import annotations

import platform
from functools import lru_cache
from pathlib import Path

# x86 extensions with an int8 dot product that sums u8 x s8 pairs straight into 32 bits.
VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})
X86_MACHINES = ("x86_64", "amd64", "i686", "x86")
WEIGHT_FORMS = ("int8", "uint8")


@lru_cache(maxsize=1)
def cpu_info() -> tuple[str, frozenset[str]]:
    """The CPU's model name and its feature flags (empty where /proc/cpuinfo is unreadable)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    name = next((x.split(":", 1)[1].strip() for x in lines if x.startswith("model name")), None)
    flags = next((x for x in lines if x.startswith("flags")), "").partition(":")[2].split()
    # platform.processor() runs `uname -p` on Linux (milliseconds): only where cpuinfo has no name
    return name or platform.processor() or platform.machine(), frozenset(flags)


def is_x86() -> bool:
    return platform.machine().lower() in X86_MACHINES


def cpu_class() -> str:
    """The class that decides ONNX Runtime's int8 kernels: ``AMX``, ``AVX-512 VNNI``,
    ``AVX-VNNI``, ``AVX2``, ``x86 (flags unknown)``, ``x86 without AVX2``, or the machine name
    of a non-x86 CPU (``aarch64``, ...)."""
    if not is_x86():
        return platform.machine() or "unknown"
    _, flags = cpu_info()
    if not flags:
        return "x86 (flags unknown)"
    for flag, name in (("amx_int8", "AMX"), ("avx512_vnni", "AVX-512 VNNI"), ("avx_vnni", "AVX-VNNI"),
                       ("avx2", "AVX2")):
        if flag in flags:
            return name
    return "x86 without AVX2"


def int8_weights_saturate() -> bool:
    """True where ONNX Runtime's uint8 x int8 products may saturate: an x86 CPU without VNNI.

    Without VNNI the kernels add pairs of u8 x s8 products into 16 bits (``vpmaddubsw``),
    which clips at 32767: with full-range int8 weights, answers drift from fp32. uint8 weights
    take an exact 16-bit path on every x86 CPU. Where the flags cannot be read, an x86 CPU is
    taken to saturate (the safe side).
    """
    if not is_x86():
        return False
    _, flags = cpu_info()
    return not flags & VNNI_FLAGS


def best_weight_form() -> str:
    """The int8 weight form whose products are exact and fastest here: ``int8`` where uint8 x
    int8 products are exact (VNNI, AVX-VNNI, AMX, any non-x86 CPU), else ``uint8``."""
    return "uint8" if int8_weights_saturate() else "int8"


def int8_kernel(form: str) -> str:
    """Which int8 product path ONNX Runtime takes for weights of ``form`` on this CPU, in words."""
    where = cpu_class()
    if form == "uint8":
        return f"uint8 x uint8, exact 16-bit, {where}" if is_x86() else f"uint8 x uint8, {where}"
    if int8_weights_saturate():
        return f"uint8 x int8, saturating 16-bit, {where}"
    return f"uint8 x int8, {where}"
