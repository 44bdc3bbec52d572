"""Classifier heads: a plain linear layer and the LDAM paper's normed (cosine) linear layer.

Both heads compute in float32 even when the backbone runs under ``torch.autocast`` in bfloat16:
the features are cast to float32 and autocast is disabled inside ``forward``, so the logits fed
to the losses (margins, temperatures, scales) are exact float32 values.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from longtail.errors import ConfigError

HeadName = Literal["linear", "normed-linear"]
HEADS: tuple[str, ...] = get_args(HeadName)


def default_linear_init_(
    weight: torch.Tensor, bias: torch.Tensor | None, generator: torch.Generator | None
) -> None:
    """PyTorch's ``nn.Linear`` default initialisation, drawn from ``generator``.

    w ~ U(−1/√fan_in, 1/√fan_in) (kaiming_uniform with a=√5), b ~ U(−1/√fan_in, 1/√fan_in).
    """
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
    if bias is not None:
        fan_in = weight.shape[1]
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        nn.init.uniform_(bias, -bound, bound, generator=generator)


class LinearHead(nn.Module):
    """Linear classifier z = W f + b, with W [C, D] and b [C] (ERM, CDT, RW, ...).

    ``init="default"`` is PyTorch's ``nn.Linear`` initialisation; ``init="kaiming-normal"`` draws
    W ~ N(0, 2/D) as the LDAM-DRW reference ResNet-32 does (its ``_weights_init`` also touches the
    final ``nn.Linear``); the bias keeps the default U(−1/√D, 1/√D) in both cases.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        init: str = "default",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if init not in ("default", "kaiming-normal"):
            raise ConfigError(f"unknown linear-head init {init!r}; use 'default' or 'kaiming-normal'")
        self.in_features = in_features
        self.num_classes = num_classes
        self.init = init
        self.weight = nn.Parameter(torch.empty(num_classes, in_features))
        self.bias = nn.Parameter(torch.empty(num_classes))
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Re-draw the weights (used by classifier re-training) from ``generator``."""
        with torch.no_grad():
            default_linear_init_(self.weight, self.bias, generator)
            if self.init == "kaiming-normal":
                nn.init.kaiming_normal_(self.weight, generator=generator)

    def class_weight_matrix(self) -> torch.Tensor:
        """The class weight vectors as rows, [C, D] (row c is w_c)."""
        return self.weight

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=features.device.type, enabled=False):
            return F.linear(features.float(), self.weight.float(), self.bias.float())

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, num_classes={self.num_classes}, init={self.init!r}"


class NormedLinearHead(nn.Module):
    """Cosine classifier of LDAM (Cao et al., NeurIPS 2019): z_c = (f/‖f‖)ᵀ (w_c/‖w_c‖), no bias.

    Stored as in the reference code (``NormedLinear`` in kaidic/LDAM-DRW): ``weight`` has shape
    [D, C] (one column per class), initialised ``uniform_(-1, 1).renorm_(2, 1, 1e-5).mul_(1e5)``
    (each column rescaled to norm at most 1e-5·1e5 = 1). The logits are cosines in [−1, 1]; the
    LDAM loss subtracts the margin and multiplies by its scale s. ``class_weight_matrix()`` returns
    the [C, D] view Wᵀ (rows w_c) for post-hoc rules and analysis; ``bias`` is ``None``.
    """

    def __init__(self, in_features: int, num_classes: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.in_features = in_features
        self.num_classes = num_classes
        self.weight = nn.Parameter(torch.empty(in_features, num_classes))
        self.register_parameter("bias", None)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Re-draw the weights as the reference code does, from ``generator``."""
        with torch.no_grad():
            self.weight.uniform_(-1.0, 1.0, generator=generator).renorm_(2, 1, 1e-5).mul_(1e5)

    def class_weight_matrix(self) -> torch.Tensor:
        """The class weight vectors as rows, [C, D] (row c is w_c, unnormalised)."""
        return self.weight.t()

    # Kept out of torch.compile's graph: with torch 2.13.0 on an AVX-512 CPU (AMD EPYC Zen 5), a
    # compiled fp32 channels-last ResNet-32 at batch 128 whose graph includes this head corrupts the
    # heap (glibc "malloc assertion failure" or SIGSEGV within the first steps; bf16, ERM's linear head,
    # contiguous NCHW, fewer blocks, smaller batches or inductor capped at AVX2 do not). The head is two
    # normalisations and a [B, 64] × [64, C] product: running it eagerly costs nothing measurable.
    # Regression test: tests/engine/test_accel.py::test_compiled_normed_head_trains_in_fp32.
    @torch.compiler.disable
    def forward(self, features: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=features.device.type, enabled=False):
            return F.normalize(features.float(), dim=1) @ F.normalize(self.weight.float(), dim=0)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, num_classes={self.num_classes}"


def make_head(
    head: str,
    in_features: int,
    num_classes: int,
    generator: torch.Generator | None = None,
    linear_init: str = "default",
) -> nn.Module:
    """Build the head named ``head`` ("linear" or "normed-linear")."""
    if head == "linear":
        return LinearHead(in_features, num_classes, init=linear_init, generator=generator)
    if head == "normed-linear":
        return NormedLinearHead(in_features, num_classes, generator=generator)
    raise ConfigError(f"unknown head {head!r}; use one of: {', '.join(HEADS)}")
