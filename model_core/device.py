"""Device and numeric-precision choices shared by training and inference."""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import warnings
from pathlib import Path

import torch


def pick_device(name: str | torch.device | None = None) -> torch.device:
    """``name`` as a device; None picks CUDA when present, else the CPU."""
    if name is None or str(name) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {str(name)!r}: use cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device {str(name)!r} is not supported: use cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("CUDA was asked for but no CUDA device is available")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"there is no {device}: {torch.cuda.device_count()} CUDA device(s)")
    return device


@functools.lru_cache(maxsize=1)
def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_has_bf16() -> bool:
    """Whether this CPU has native bf16 matrix instructions (AVX512-BF16 or AMX)."""
    flags = _cpuinfo()
    return "avx512_bf16" in flags or "amx_bf16" in flags


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    for line in _cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def resolve_precision(precision: str, device: torch.device) -> str:
    """Resolve ``auto`` to ``bf16`` where the hardware runs it natively, else ``fp32``."""
    if precision not in ("fp32", "bf16", "auto"):
        raise ValueError(f"precision must be fp32, bf16 or auto, not {precision!r}")
    if precision == "bf16" and device.type == "cpu" and not cpu_has_bf16():
        warnings.warn(
            "bf16 was asked for, but this CPU has no native bf16 instructions (AVX512-BF16 or AMX): "
            "PyTorch emulates it, several times slower than fp32 (7x for a training step on an "
            "AVX2-only EPYC); use --precision fp32 or auto",
            RuntimeWarning, stacklevel=2)
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_bf16() else "fp32"


def autocast_context(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Autocast for ``bf16``; a no-op context for ``fp32``."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


# Working memory one CPU tile may use. With the image-sized arrays of a run (input, blend
# accumulators, result: ~16 bytes a pixel each) this keeps a 12-megapixel run under 3 GB.
CPU_TILE_BUDGET = 1 << 30
# Share of the free GPU memory one tile may use; the rest is headroom for the allocator.
CUDA_TILE_SHARE = 0.5


def physical_cores() -> int:
    """Physical CPU cores (logical ones when the count is unknown)."""
    try:
        import psutil

        count = psutil.cpu_count(logical=False)
    except ImportError:  # pragma: no cover - psutil is a dependency
        count = None
    return count or os.cpu_count() or 1


def configure_cpu_threads() -> int:
    """Cap torch's intra-op threads at the physical cores; returns the count in use.

    Hyper-threads share a core's matrix units, so threads beyond the physical cores only add
    synchronisation. A lower count set by the caller (e.g. ``--threads 1``) is kept.
    """
    cores = physical_cores()
    if torch.get_num_threads() > cores:
        torch.set_num_threads(cores)
    return torch.get_num_threads()


def tile_bytes_per_pixel(embed_dim: int, num_blocks: int, device: torch.device, precision: str) -> int:
    """Peak working memory of one tile per pixel, from the network's width.

    On CPU the inference path holds about seven feature maps of the tile plus the keep-maps
    (measured ~1.6 kB/pixel for the paper's network at 512x512); on CUDA the per-window
    attention path holds about twenty, halved under bf16 autocast.
    """
    maps = 7 if device.type == "cpu" else 20
    width = 2 if device.type == "cuda" and precision == "bf16" else 4
    return maps * embed_dim * width + 4 * num_blocks


def max_tile_pixels(bytes_per_pixel: int, device: torch.device) -> int:
    """Largest tile area (pixels) whose working memory fits this device's budget.

    CPU: :data:`CPU_TILE_BUDGET`. CUDA: :data:`CUDA_TILE_SHARE` of the memory free right now,
    so big GPUs get big tiles (fewer overlaps) and busy ones smaller tiles.
    """
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        budget = int(free * CUDA_TILE_SHARE)
    else:
        budget = CPU_TILE_BUDGET
    return max(1, budget // bytes_per_pixel)
