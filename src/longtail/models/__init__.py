"""Models: ResNet-32 (CIFAR), ResNet-18/50 (torchvision layout), BiLSTM (IMDB), and their heads.

Every model is a :class:`~longtail.models.base.Classifier`: ``forward(x) -> (features, logits)``
with attributes ``backbone``, ``head`` and ``feature_dim``; ``head`` is ``"linear"`` or
``"normed-linear"`` (the LDAM cosine classifier) on every model.
"""

from __future__ import annotations

from typing import Any

from torch import nn

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
    return MODELS.create(name, num_classes=num_classes, in_channels=in_channels, head=head, **kwargs)
