"""longtail: deep learning on class-imbalanced (long-tailed) data.

The methods of LDAM-DRW (Cao et al., NeurIPS 2019) and class-dependent temperatures (Ye et al.),
with every baseline they compare against, long-tailed data sets from real on-disk formats, a
training engine and the papers' analyses.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def create_loss(name: str, class_counts: Any, **params: Any) -> Any:
    """Build a registered loss from the training class counts: ``create_loss("ldam", counts, s=30)``.

    Returns a ``torch.nn.Module`` whose ``forward(logits, targets)`` returns the mean loss.
    """
    from longtail.losses import create_loss as _create

    return _create(name, class_counts, **params)


def create_model(name: str, **params: Any) -> Any:
    """Build a registered model; it returns ``(features, logits)``."""
    from longtail.models import create_model as _create

    return _create(name, **params)


__all__ = ["__version__", "create_loss", "create_model"]
