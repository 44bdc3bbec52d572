"""In float64 the 2-process step (global batch norm + the weighted-mean loss correction + DDP
gradient averaging) equals the 1-process step on the whole batch to rounding (1e-12 on the
float64 backbone; the head computes in float32 by design): the mechanism is exact, not approximate."""

from __future__ import annotations

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

pytestmark = pytest.mark.slow


def _batch():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(12, 1, 8, 8, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (12,), generator=g)
    return x, y


def _step(model, x, y, rank=0, world=1):
    from longtail.engine.distributed import DistInfo
    from longtail.engine.trainer import distributed_loss_scale
    from longtail.losses import create_loss

    loss_fn = create_loss("ce", [1] * 10)
    loss_fn.set_class_weights(torch.arange(1.0, 11.0))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=2e-4)
    _, logits = model(x)
    loss = loss_fn(logits, y)
    if world > 1:
        scale, _ = distributed_loss_scale(loss_fn, y, DistInfo(rank, world))
        loss = loss * scale
    loss.backward()
    optimizer.step()


def _worker(rank, path, out):
    import torch.distributed as dist

    from longtail.engine.distributed import convert_batchnorm
    from longtail.models import create_model

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{path}", rank=rank, world_size=2)
    model = convert_batchnorm(create_model("resnet32", num_classes=10, in_channels=1).double(), torch.device("cpu"))
    ddp = nn.parallel.DistributedDataParallel(model)
    x, y = _batch()
    # Uneven shards (7 and 5 examples) on purpose: the weight sums differ between ranks.
    part = slice(0, 7) if rank == 0 else slice(7, 12)
    _step(ddp, x[part], y[part], rank, 2)
    if rank == 0:
        torch.save({k: v.clone() for k, v in model.state_dict().items()}, out)
    dist.destroy_process_group()


def test_two_process_step_equals_one_in_float64(tmp_path):
    from longtail.models import create_model

    mp.spawn(_worker, args=(str(tmp_path / "rendezvous"), str(tmp_path / "two.pt")), nprocs=2, join=True)
    model = create_model("resnet32", num_classes=10, in_channels=1).double()
    x, y = _batch()
    _step(model, x, y)
    two = torch.load(tmp_path / "two.pt", weights_only=True)
    for key, value in model.state_dict().items():
        # The classifier head and the loss compute in float32 by design (models.base.Classifier).
        atol = 1e-6 if key.startswith("head.") else 1e-12
        torch.testing.assert_close(two[key], value, rtol=0, atol=atol, msg=key)
