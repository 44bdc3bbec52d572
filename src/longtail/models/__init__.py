"""Models: ResNet-32 (CIFAR), ResNet-18/50 (torchvision layout), BiLSTM (IMDB), and their heads.

Every model is a :class:`~longtail.models.base.Classifier`: ``forward(x) -> (features, logits)``
with attributes ``backbone``, ``head`` and ``feature_dim``; ``head`` is ``"linear"`` or
``"normed-linear"`` (the LDAM cosine classifier) on every model.
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any

from torch import nn

from longtail.errors import ConfigError
from longtail.models import resnet, resnet_cifar, text  # noqa: F401  (registers the models)
from longtail.models.base import Classifier, count_parameters
from longtail.models.heads import HEADS, LinearHead, NormedLinearHead, make_head
from longtail.registry import MODELS

__all__ = [
    "HEADS",
    "Classifier",
    "LinearHead",
    "NormedLinearHead",
    "count_parameters",
    "create_model",
    "make_head",
]


def create_model(
    name: str, num_classes: int, in_channels: int = 3, head: str = "linear", **kwargs: Any
) -> nn.Module:
    """Build the registered model ``name`` with a ``head`` classifier over ``num_classes`` classes.

    Extra keyword arguments go to the model's factory (e.g. ``stem`` for ResNet-18/50,
    ``vocab_size``/``hidden_dim`` for ``bilstm``, ``seed`` for the initialisation draw, default 0).
    Raises ``ConfigError`` for an unknown name, head or option, or a bad class count.
    """
    factory = MODELS.get(name)
    if head not in HEADS:
        raise ConfigError(f"unknown head {head!r} for model {name!r}; use one of: {', '.join(HEADS)}")
    if int(num_classes) < 1:
        raise ConfigError(f"model {name!r} needs num_classes >= 1, got {num_classes}")
    if int(in_channels) < 1:
        raise ConfigError(f"model {name!r} needs in_channels >= 1, got {in_channels}")
    parameters = inspect.signature(factory).parameters
    for key in kwargs:
        if key not in parameters:
            options = [p for p in parameters if p not in ("num_classes", "in_channels", "head")]
            close = difflib.get_close_matches(key, options, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"model {name!r} has no option {key!r}{hint} (options: {', '.join(options)})")
    return factory(num_classes=int(num_classes), in_channels=int(in_channels), head=head, **kwargs)
