"""Distributed glue: process-group setup from torchrun's environment, rank helpers, reductions.

``torchrun --nproc_per_node=N -m longtail train ...`` sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``,
``MASTER_ADDR`` and ``MASTER_PORT``; :func:`setup` joins the group (gloo on CPU, NCCL on CUDA). A
single process (no ``WORLD_SIZE`` or ``WORLD_SIZE=1``) runs without a group. Only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from longtail.errors import ConfigError, LongtailError


class DistributedFault(LongtailError):
    """Another rank of the job died or stopped answering; this rank stops instead of waiting."""


@dataclass
class DistInfo:
    """This process's place in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup(device: torch.device, timeout_seconds: float | None = None) -> DistInfo:
    """Join the process group described by the environment (or the one already initialised).

    ``timeout_seconds`` bounds every collective: a rank whose peer died or hangs gets an error
    after at most that long (a dead peer's closed connection is usually noticed at once)."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank())))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    if not dist.is_available():  # pragma: no cover
        raise ConfigError("WORLD_SIZE > 1 but this torch build has no torch.distributed; run one process")
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
        backend = "nccl"
    else:
        backend = "gloo"
    timeout = datetime.timedelta(seconds=timeout_seconds) if timeout_seconds else None
    dist.init_process_group(backend=backend, timeout=timeout)
    return DistInfo(rank, world_size, local_rank)


_PEER_FAILURE = re.compile(
    r"gloo|nccl|connection (reset|closed|refused)|broken pipe|timed out|timeout|socket", re.IGNORECASE
)


def is_peer_failure(error: BaseException) -> bool:
    """An error of the communication layer (a rank died, hung, or the network failed), not of our code:
    torch's ``DistError`` family, or a RuntimeError raised by the gloo/NCCL transport."""
    if isinstance(error, getattr(dist, "DistError", ())):
        return True
    return isinstance(error, RuntimeError) and bool(_PEER_FAILURE.search(str(error).split("\n")[0]))


@contextlib.contextmanager
def peer_failures_as_errors(timeout_seconds: float | None = None) -> Iterator[None]:
    """Turn a communication failure of a distributed run into one :class:`DistributedFault` line
    (which the CLI prints, exit status 2) instead of a transport traceback; other errors pass."""
    try:
        yield
    except Exception as error:  # noqa: BLE001 - re-raised unless it is a communication failure
        if not (dist.is_available() and dist.is_initialized() and is_peer_failure(error)):
            raise
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        reason = re.sub(r"^\[[^\]]*\]\s*", "", first)  # drop the transport's source location
        reason = reason.split(". ")[0].rstrip(".")[:200]
        rank = dist.get_rank()
        limit = f" (collectives wait at most runtime.dist_timeout={timeout_seconds:g} s)" if timeout_seconds else ""
        raise DistributedFault(
            f"rank {rank}: another rank of this job died or stopped answering ({reason}){limit}; "
            "stopped — check the other ranks' logs, then continue with `longtail train --resume DIR`"
        ) from None


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        dist.all_reduce(tensor)
    return tensor


def all_reduce_min(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
    return tensor


def all_gather_object(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` in one process)."""
    if not info.enabled:
        return [obj]
    gathered: list[Any] = [None] * info.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def shard_indices(n: int, info: DistInfo) -> torch.Tensor:
    """This rank's positions ``rank, rank + W, ...`` of ``0..n-1``: disjoint, no padding, union = all."""
    return torch.arange(info.rank, n, info.world_size, dtype=torch.int64)


class _AllReduceSum(torch.autograd.Function):
    """y = Σ_ranks x, differentiable: each rank's objective depends on every rank's x, so the
    gradient of Σ_k L_k with respect to x_r is Σ_k ∂L_k/∂y_k — an all-reduce of the gradients."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        out = tensor.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        out = grad.contiguous().clone()
        dist.all_reduce(out)
        return out


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch normalisation over the GLOBAL batch of all ranks (a SyncBatchNorm that also runs on CPU).

    Training: μ = Σ_ranks Σ x / n, σ² = Σ_ranks Σ (x − μ)² / n with n the global count (two
    all-reduces, differentiable), y = (x − μ)/√(σ² + ε)·γ + β; running stats updated with the
    unbiased σ²·n/(n − 1), exactly as one process with the whole batch. Evaluation: running stats.
    (``torch.nn.SyncBatchNorm`` needs CUDA; on CUDA the engine uses it instead.)
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {input.dim()}-D")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(input)
        dims = [0, *range(2, input.dim())]
        shape = [1, -1] + [1] * (input.dim() - 2)
        count_local = torch.tensor([input.numel() / input.shape[1]], dtype=input.dtype, device=input.device)
        sums = _AllReduceSum.apply(torch.cat([input.sum(dims), count_local]))
        n = sums[-1].detach()
        mean = sums[:-1] / n
        centred = input - mean.view(shape)
        var = _AllReduceSum.apply((centred * centred).sum(dims)) / n
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                assert self.num_batches_tracked is not None
                self.num_batches_tracked.add_(1)
                momentum = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                unbiased = var.detach() * n / (n - 1).clamp_min(1)
                self.running_mean.mul_(1 - momentum).add_(mean.detach(), alpha=momentum)
                self.running_var.mul_(1 - momentum).add_(unbiased, alpha=momentum)
        return out


def convert_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """Make every BatchNorm layer normalise over the global batch (in place, same parameters)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for module in model.modules():
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
            module.__class__ = GlobalBatchNorm
    return model
