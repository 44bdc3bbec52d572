"""Execution settings that make training fast without changing the method.

One place for device, memory format, mixed precision and compilation, shared by the trainer and the
speed benchmark so that what is measured is what users run. The loss and the classifier head stay in
float32 under autocast (the normed-linear head's cosines are scaled by s=30 in LDAM; bf16 rounding
there would change the method) — the heads and losses cast up themselves.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from longtail.errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


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
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags = next((line for line in cpuinfo if line.startswith("flags")), "")
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when present, else CPU; otherwise the named device, checked to exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
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
    return torch.compile(model) if accel.compile else model  # type: ignore[return-value]


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
