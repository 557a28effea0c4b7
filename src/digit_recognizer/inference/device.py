"""The device and precision policy: what this machine's CPU and PyTorch build can do, and which arithmetic
(fp32, bf16, int8) a forward pass uses. Asked in ways that work on every supported PyTorch release.

PyTorch's own CPU-feature probes (`torch.cpu._is_vnni_supported` and friends) are private and come and go
between releases, so each one is used only when present, with the kernel's CPU flags as the fallback.
"""
from __future__ import annotations

import contextlib
import functools
import platform
from pathlib import Path
from typing import Sequence

from ..errors import DigitsError

ENGINE = "x86"  # PyTorch's quantized engine for int8 (oneDNN/FBGEMM, VNNI where the CPU has it)

# Our name for a CPU feature -> (PyTorch's private probe, the Linux /proc/cpuinfo flags that mean it).
CPU_FEATURES = {
    "avx512_bf16": ("_is_avx512_bf16_supported", ("avx512_bf16",)),
    "amx_tile": ("_is_amx_tile_supported", ("amx_tile",)),
    "vnni": ("_is_vnni_supported", ("avx512_vnni",)),
}
CPUINFO = Path("/proc/cpuinfo")


@functools.lru_cache(maxsize=None)
def cpuinfo_flags() -> frozenset[str]:
    """The CPU flags the Linux kernel reports (empty elsewhere, or when unreadable)."""
    if platform.system() != "Linux":
        return frozenset()
    try:
        text = CPUINFO.read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def cpu_has(feature: str) -> bool:
    """Whether the CPU has `feature` (a key of CPU_FEATURES): PyTorch's probe where this release has it."""
    import torch

    probe, flags = CPU_FEATURES[feature]
    fn = getattr(getattr(torch, "cpu", None), probe, None)
    if callable(fn):
        try:
            return bool(fn())
        except (RuntimeError, OSError):
            pass  # a probe that exists but cannot answer here: fall back to the kernel's flags
    return any(f in cpuinfo_flags() for f in flags)


@functools.lru_cache(maxsize=None)
def cpu_bf16_is_native() -> bool:
    """Whether bf16 convolutions run natively on this CPU (oneDNN with AVX512-BF16 or AMX).

    On an AVX2-only CPU, bf16 autocast is emulated and about 7x slower than fp32 (measured). This is about
    the CPU only: a CUDA build or a GPU in the machine does not change it.
    """
    import torch

    return torch.backends.mkldnn.is_available() and (cpu_has("avx512_bf16") or cpu_has("amx_tile"))


@functools.lru_cache(maxsize=None)
def int8_is_available() -> bool:
    """Whether PyTorch's x86 quantized engine is in use and its FX graph-mode quantization is importable
    (the int8 precision setting needs both; later PyTorch releases move it to the torchao package)."""
    import torch

    try:
        import torch.ao.quantization.quantize_fx  # noqa: F401
    except ImportError:
        return False
    return ENGINE in torch.backends.quantized.supported_engines and torch.backends.quantized.engine == ENGINE


@functools.lru_cache(maxsize=None)
def int8_is_fast() -> bool:
    """Whether int8 runs on VNNI dot products here. Without VNNI the kernels fall back to 16-bit
    intermediate sums, which can saturate with full-range (8-bit) activations like ours."""
    return int8_is_available() and cpu_has("vnni")


# Below this many images, bf16 casts and int8 quantizing cost more than they save
# (one image: 0.49 ms in bf16, 0.51 ms in int8, 0.31 ms in fp32).
BF16_MIN_BATCH = 64

TRAIN_PRECISIONS = ("auto", "fp32", "bf16")
PRECISIONS = (*TRAIN_PRECISIONS, "int8")  # int8 is inference only, for models that carry int8 ranges


def check_precision(precision: str, choices: Sequence[str] = PRECISIONS) -> str:
    if precision not in choices:
        raise DigitsError(f"unknown precision '{precision}' (choose from {', '.join(choices)})")
    return precision


def use_bf16(precision: str) -> bool:
    """Resolve a training precision ('auto' = bf16 where it is fast) to whether to autocast to bf16."""
    check_precision(precision, TRAIN_PRECISIONS)
    return precision == "bf16" or (precision == "auto" and cpu_bf16_is_native())


def engine(precision: str, rows: int, has_int8: bool) -> str:
    """The arithmetic for a forward pass of `rows` images: "fp32", "bf16" or "int8".

    "auto": fp32 below BF16_MIN_BATCH images; above, int8 when the model carries int8 ranges and the CPU has
    PyTorch's x86 quantized engine with VNNI, else bf16 where the CPU runs it natively, else fp32.
    """
    check_precision(precision)
    if precision == "int8" and not has_int8:
        raise DigitsError("this model carries no int8 ranges (models trained before int8 support do not); "
                          "retrain it, or use precision auto, fp32 or bf16")
    if precision == "int8" and not int8_is_available():
        raise DigitsError("int8 needs PyTorch's x86 quantized engine, which this PyTorch build lacks")
    if precision != "auto":
        return precision
    if rows < BF16_MIN_BATCH:
        return "fp32"
    if has_int8 and int8_is_fast():
        return "int8"
    return "bf16" if cpu_bf16_is_native() else "fp32"


def autocast(enabled: bool):
    import torch

    return torch.autocast("cpu", dtype=torch.bfloat16) if enabled else contextlib.nullcontext()
