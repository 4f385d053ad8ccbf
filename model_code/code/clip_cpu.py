"""The CPU's bf16 and the ``CLIP_PRECISION`` setting: which precision a CPU engine may serve, decided at start.

Ships next to inference.py in code/ (standard library only). bf16 is only worth serving where the CPU
multiplies it in hardware: Intel's AMX (``amx_bf16``), or AVX-512's bf16 dot products (``avx512_bf16``,
measured here at 1.6-2.2x OpenVINO's fp32 on a ViT-B-32; docs/PERFORMANCE.md). Anywhere else a bf16 graph
is emulated or quietly run in fp32, so ``auto`` stays fp32 there and an explicit ``bf16`` is refused at start,
naming the missing feature, rather than served slowly.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

if __package__:  # see inference.py: a package in the repository, top-level modules under the toolkit
    from .clip_env import ConfigError, env_choice, env_float
else:
    from clip_env import ConfigError, env_choice, env_float

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
NATIVE_BF16 = ("amx_bf16", "avx512_bf16")  # either multiplies bf16 in hardware (x86 /proc/cpuinfo names)
MIN_COSINE = 0.9999  # the fidelity bar bf16 must meet against fp32 at load (CLIP_BF16_MIN_COSINE)
CPUINFO = Path("/proc/cpuinfo")


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The first CPU's feature flags from /proc/cpuinfo; empty where there is none (not Linux, not x86)."""
    try:
        with CPUINFO.open(encoding="ascii", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "flags":
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


def native_bf16(flags: frozenset[str] | None = None) -> str | None:
    """The flag that makes bf16 native here (AMX first), or None."""
    found = cpu_flags() if flags is None else flags
    return next((flag for flag in NATIVE_BF16 if flag in found), None)


def bf16_flags(flags: frozenset[str] | None = None) -> list[str]:
    """The bf16-related flags this CPU has, as /health reports them."""
    found = cpu_flags() if flags is None else flags
    return [flag for flag in (*NATIVE_BF16, "amx_tile", "avx512f", "avx2") if flag in found]


def precision_setting() -> str:
    """``CLIP_PRECISION``: auto (the default), fp32, fp16 or bf16; anything else is a ConfigError."""
    return env_choice(os.environ, "CLIP_PRECISION", "auto", PRECISIONS)


def min_cosine() -> float:
    """``CLIP_BF16_MIN_COSINE``: the cosine every probe vector must reach for bf16 to be kept (above 1: never)."""
    return env_float(os.environ, "CLIP_BF16_MIN_COSINE", MIN_COSINE, minimum=0.0)


def require_native_bf16(what: str) -> str:
    """The native flag, or a ConfigError saying which CPU features ``what`` (e.g. CLIP_PRECISION=bf16) lacks."""
    flag = native_bf16()
    if flag is None:
        raise ConfigError(
            f"{what} needs a CPU that multiplies bf16 natively, and this one has neither amx_bf16 nor avx512_bf16 "
            f"(/proc/cpuinfo flags: {', '.join(bf16_flags()) or 'none of them'}): bf16 would be emulated; "
            "use CLIP_PRECISION=auto or fp32"
        )
    return flag


def for_cpu(engine: str) -> str:
    """``CLIP_PRECISION`` on the CPU for ``engine``: fp32, bf16 (asked for, native), or auto (bf16 if proved).

    fp16 has no fast CPU path here and ONNX Runtime serves fp32 only: both are refused at start rather than
    served as something else.
    """
    wanted = precision_setting()
    if wanted == "fp16":
        raise ConfigError("CLIP_PRECISION=fp16 is a GPU precision: on the CPU use auto, fp32 or bf16")
    if wanted == "bf16":
        if engine == "onnxruntime":
            raise ConfigError(
                "CLIP_PRECISION=bf16 with CLIP_ENGINE=onnxruntime: ONNX Runtime serves fp32 only on the CPU; "
                "bf16 runs on OpenVINO (CLIP_ENGINE=auto or openvino)"
            )
        require_native_bf16("CLIP_PRECISION=bf16")
    if wanted == "auto" and (engine != "openvino" or native_bf16() is None):
        return "fp32"  # auto proves bf16 on OpenVINO only; torch on the CPU takes bf16 when asked for
    return wanted
