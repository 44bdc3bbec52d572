"""Execution settings that make training fast without changing the method.

One place for device, memory format, mixed precision and compilation, shared by the trainer and the
speed benchmark so that what is measured is what users run. The loss and the classifier head stay in
float32 under autocast (the normed-linear head's cosines are scaled by s=30 in LDAM; bf16 rounding
there would change the method) — the heads and losses cast up themselves.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from longtail.errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
ALLOCATORS = ("tuned", "system")

# ``runtime.compile: auto`` compiles only runs of at least this many training steps: compiling
# ResNet-32's training step costs ~35 s per distinct batch shape here (the last, smaller batch of an
# epoch is a second shape: ~65 s in all, a few seconds once inductor's on-disk cache is warm) and
# saves ~0.03 s per batch-128 step on the 2-core CPU (README "Speed"), so it repays itself after
# ~2,300 steps; 4,000 leaves a margin (CIFAR-10-LT's 200 epochs are ~19,400 steps).
COMPILE_AUTO_MIN_STEPS = 4000


@dataclass
class Accel:
    """How to run: ``device`` ("auto" = cuda if available else cpu), ``channels_last`` memory format
    for convolutional models, ``precision`` of the autocast region (fp32 = no autocast) and
    ``compile`` (torch.compile of the model). ``precision="auto"`` is bf16 where the hardware runs it
    natively (CPUs with AVX512-BF16 or AMX, CUDA devices that support bf16) and fp32 elsewhere."""

    device: str = "auto"
    channels_last: bool = True
    precision: str = "auto"
    compile: bool = False

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"runtime.precision={self.precision!r} is not one of {', '.join(PRECISIONS)}"
            )
        if not isinstance(self.compile, bool):
            raise ConfigError(
                f"Accel.compile must be true or false (resolve runtime.compile={self.compile!r} with "
                "resolve_compile first)"
            )

    @property
    def torch_device(self) -> torch.device:
        return resolve_device(self.device)

    @property
    def resolved_precision(self) -> str:
        """``precision`` with ``auto`` resolved for this device."""
        if self.precision != "auto":
            return self.precision
        return "bf16" if native_bf16(self.torch_device) else "fp32"

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[self.resolved_precision]


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 natively (emulated bf16 on an older CPU is slower than fp32)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type != "cpu":
        return False
    if isa_capped_below_bf16():
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set(cpu_flags()))


def cpu_flags() -> list[str]:
    """The CPU flags that decide the training speed (as ``lscpu`` lists them): vector width, FMA, bf16 and
    AMX; [] where ``/proc/cpuinfo`` is not readable. The one reader of it for the engine and the benchmarks."""
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            line = next((line for line in handle if line.startswith("flags")), "")
    except OSError:
        return []
    have = set(line.split(":", 1)[-1].split())
    return [flag for flag in wanted if flag in have]


# oneDNN ISAs below the first one with bf16 dot products (AVX512_CORE_BF16)
_ONEDNN_ISAS_WITHOUT_BF16 = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI")


def isa_capped_below_bf16(env: dict[str, str] | None = None) -> bool:
    """Whether the environment caps the kernels below native bf16 — ``ATEN_CPU_CAPABILITY=avx2`` (or
    ``default``) for ATen's kernels, ``ONEDNN_MAX_CPU_ISA`` (``DNNL_MAX_CPU_ISA``) below AVX512_CORE_BF16
    for oneDNN's — as when an AVX2-only machine is emulated on a newer one: bf16 there would be
    converted in software, so ``precision: auto`` is fp32 as on the real machine."""
    env = os.environ if env is None else env
    capability = env.get("ATEN_CPU_CAPABILITY", "").strip().lower()
    isa = (env.get("ONEDNN_MAX_CPU_ISA") or env.get("DNNL_MAX_CPU_ISA") or "").strip().upper()
    return capability in ("default", "avx2") or isa in _ONEDNN_ISAS_WITHOUT_BF16


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when present, else CPU; otherwise the named device, checked to exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"runtime.device={name!r} is not a device; use 'auto', 'cpu', 'cuda' or 'cuda:N'") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"runtime.device={name!r} but no CUDA device is available; use 'cpu' or 'auto'")
    return device


def prepare_model(model: torch.nn.Module, accel: Accel) -> torch.nn.Module:
    """Move the model to the device and memory format (in place); compilation is applied by
    :func:`maybe_compile` separately so that checkpoints keep plain parameter names."""
    model.to(accel.torch_device)
    if accel.channels_last and _is_conv_model(model):
        model.to(memory_format=torch.channels_last)
    return model


def maybe_compile(model: torch.nn.Module, accel: Accel) -> torch.nn.Module:
    """``torch.compile(model, dynamic=False)`` when ``accel.compile``: one static graph per batch
    shape. (With torch's automatic dynamic shapes the epoch's last, smaller batch would replace the
    batch-128 graph by a shape-generic one that trains 19% slower here: 1,046 → 853 img/s.)"""
    if not accel.compile:
        return model
    return torch.compile(model, dynamic=False)  # type: ignore[return-value]


def compiler_available(device: torch.device) -> tuple[bool, str]:
    """Whether torch.compile's default backend can generate code for ``device`` here, and why not:
    inductor needs a C++ compiler for CPU kernels and Triton for CUDA kernels."""
    if device.type == "cpu":
        try:
            from torch._inductor import config as inductor_config

            cxx = inductor_config.cpp.cxx
            names = list(cxx) if isinstance(cxx, (list, tuple)) else [cxx]
        except Exception:  # pragma: no cover - inductor missing from this torch build
            return False, "this torch build has no inductor"
        names = [n for n in names if n] or ["g++"]
        for name in names:
            if shutil.which(name):
                return True, f"C++ compiler {name} found"
        return False, f"no C++ compiler ({', '.join(names)}) on PATH"
    if device.type == "cuda":
        try:
            from torch.utils._triton import has_triton
        except ImportError:  # pragma: no cover
            return False, "this torch build has no Triton support"
        return (True, "Triton found") if has_triton() else (False, "Triton is not installed")
    return False, f"no compile backend chosen for device {device.type}"


def resolve_compile(setting: bool | str, device: torch.device, planned_steps: int) -> tuple[bool, str]:
    """``runtime.compile`` → (compile?, why). ``true``/``false`` are obeyed; ``auto`` compiles when
    the device has a code generator (:func:`compiler_available`) and the run has at least
    :data:`COMPILE_AUTO_MIN_STEPS` training steps to repay the compilation."""
    if isinstance(setting, bool):
        return setting, "runtime.compile=" + ("true" if setting else "false")
    if setting != "auto":
        raise ConfigError(f"runtime.compile={setting!r} must be true, false or auto")
    available, why = compiler_available(device)
    if not available:
        return False, f"auto: {why}"
    if planned_steps < COMPILE_AUTO_MIN_STEPS:
        return False, f"auto: {planned_steps:,} training steps < {COMPILE_AUTO_MIN_STEPS:,}, too few to repay compilation"
    return True, f"auto: {why}, {planned_steps:,} training steps"


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


@functools.lru_cache(maxsize=1)
def tune_allocator() -> bool:
    """Keep freed memory in the process rather than handing it back to the kernel (glibc).

    By default glibc serves allocations above an adaptive threshold (128 KiB at first) with a fresh
    ``mmap`` that is unmapped on free, and returns the top of its heap to the kernel once more than
    twice that threshold is free there. A training step allocates and frees tens of activation
    buffers of 0.5-4 MiB, so each step gets new memory that the kernel must fault in and zero page
    by page: ~3,000 page faults per ResNet-32 step in eager mode and ~35,000 under torch.compile.
    Fixing the mmap threshold at 32 MiB (glibc's own ceiling for the adaptive one; larger blocks such
    as whole data sets are still mapped and returned) and trimming the heap only above 128 MiB free
    turns them into reuse of the process's own pages: ×1.04 images/s eager and ×1.3 compiled on the
    2-core CPU (README "Speed"; 64 MiB brings the faults back under torch.compile). Peak memory
    grows by what the heap keeps fragmented: +50-100 MiB there.
    A no-op returning False where the C library is not glibc; applied once per process.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 - only glibc has it
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    mapped = mallopt(_M_MMAP_THRESHOLD, 32 << 20) == 1  # also stops the threshold adapting
    return bool(mallopt(_M_TRIM_THRESHOLD, 128 << 20) == 1 and mapped)


def apply_allocator(setting: str, device: torch.device) -> bool:
    """``runtime.allocator``: "tuned" (default) applies :func:`tune_allocator` for CPU runs (the
    activations live in host memory); "system" leaves the C library's defaults."""
    if setting not in ALLOCATORS:
        raise ConfigError(f"runtime.allocator={setting!r} is not one of {', '.join(ALLOCATORS)}")
    return setting == "tuned" and device.type == "cpu" and tune_allocator()


def prepare_input(x: torch.Tensor, accel: Accel) -> torch.Tensor:
    """Inputs of 4-d image batches follow the model's memory format."""
    x = x.to(accel.torch_device, non_blocking=True)
    if accel.channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


@contextlib.contextmanager
def autocast(accel: Accel) -> Iterator[None]:
    dtype = accel.autocast_dtype
    if dtype is None:
        yield
        return
    with torch.autocast(device_type=accel.torch_device.type, dtype=dtype):
        yield


def _is_conv_model(model: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.Conv2d) for m in model.modules())
