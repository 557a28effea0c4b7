"""What this machine's CPU and PyTorch build can do, asked in ways that work on every supported PyTorch.

PyTorch's own CPU-feature probes (`torch.cpu._is_vnni_supported` and friends) are private and come and go
between releases, so each one is used only when present, with the kernel's CPU flags as the fallback.
"""
from __future__ import annotations

import functools
import platform
from pathlib import Path

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
