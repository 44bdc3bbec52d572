"""Base class of the post-hoc decision rules, head access, balanced accuracy and the grid search.

A rule is built with ``POSTHOC.create(name, **params)``, then
``rule.fit(train_features, train_labels, head, class_counts)`` and
``rule.scores(features, head) -> [N, C]`` decision values (prediction = argmax). ``head`` is the
trained model's classifier: anything with ``class_weight_matrix() -> [C, D]`` (rows w_c) and
``bias`` (a [C] tensor or ``None``), such as ``longtail.models.heads.LinearHead`` /
``NormedLinearHead``; a plain ``nn.Linear`` works too (its ``weight`` is already [C, D]).

The model's logits z are ``head(features)`` when the head is an ``nn.Module`` (so a normed-linear
head gives its cosines), and ``W f + b`` for a plain stand-in object.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from longtail.errors import ConfigError, DataError
from longtail.metrics import balanced_accuracy
from longtail.rebalance.weights import as_class_counts
from longtail.registry import POSTHOC
from longtail.selection import choose


def head_weight(head: Any) -> torch.Tensor:
    """The class weight rows [C, D] of a head (``class_weight_matrix()`` or an ``nn.Linear`` ``weight``)."""
    if hasattr(head, "class_weight_matrix"):
        weight = head.class_weight_matrix()
    elif isinstance(getattr(head, "weight", None), torch.Tensor):
        weight = head.weight
    else:
        raise ConfigError(
            f"post-hoc rule needs a classifier head with class_weight_matrix() or a [C, D] weight, got "
            f"{type(head).__name__}; pass model.head"
        )
    if weight.dim() != 2:
        raise ConfigError(f"head weight must be [C, D], got shape {tuple(weight.shape)}")
    return weight.detach()


def head_bias(head: Any) -> torch.Tensor | None:
    """The head's bias [C] (``None`` when it has none, e.g. a normed-linear head)."""
    bias = getattr(head, "bias", None)
    return None if bias is None else bias.detach()


def head_logits(features: torch.Tensor, head: Any) -> torch.Tensor:
    """The model's logits z for ``features``: ``head(features)`` for an ``nn.Module``, else W f + b."""
    with torch.no_grad():
        if isinstance(head, nn.Module):
            param = next(head.parameters(), None)
            dtype = features.dtype if param is None else param.dtype
            return head(features.to(dtype)).detach().to(features.dtype)
        weight = head_weight(head).to(features)
        logits = features @ weight.t()
        bias = head_bias(head)
        return logits if bias is None else logits + bias.to(features)


class PosthocRule:
    """A decision rule applied to frozen features after training (SPEC §4).

    Subclasses set ``param_name`` (the tuned parameter, or ``None``), ``default_grid`` and
    ``neutral_value`` (where the rule leaves the model's decision unchanged — the tie-break target
    of :func:`tune`) and implement :meth:`_fit` / :meth:`_scores`.
    """

    param_name: str | None = None
    default_grid: tuple[float, ...] = ()
    neutral_value: float = 0.0
    needs_head: bool = True  # False for rules that ignore the trained head (ncm, crt)

    def __init__(self) -> None:
        self.head: Any = None
        self.class_counts: torch.Tensor | None = None
        self.fitted = False

    def fit(
        self, train_features: torch.Tensor, train_labels: torch.Tensor, head: Any, class_counts: Any
    ) -> PosthocRule:
        """Store/learn what the rule needs from the training features, labels, head and class counts."""
        counts = as_class_counts(class_counts, positive=False)
        features, labels = _check_features(train_features, train_labels, counts.numel())
        if head is not None and self.needs_head:
            weight = head_weight(head)
            if weight.shape[0] != counts.numel():
                raise DataError(
                    f"head has {weight.shape[0]} classes but class_counts has {counts.numel()}; pass the counts "
                    "of the training set the head was trained on"
                )
            if weight.shape[1] != features.shape[1]:
                raise DataError(
                    f"head expects {weight.shape[1]}-d features, got {features.shape[1]}-d; pass model features"
                )
        elif self.needs_head:
            raise ConfigError(
                f"post-hoc rule {type(self).__name__} needs the model's head; pass head=model.head"
            )
        self.head = head
        self.class_counts = counts
        self._fit(features, labels, head, counts)
        self.fitted = True
        return self

    def scores(self, features: torch.Tensor, head: Any = None) -> torch.Tensor:
        """[N, C] decision values; the prediction is their argmax. ``head`` defaults to the fitted head."""
        if not self.fitted:
            raise ConfigError(f"{type(self).__name__}.scores() called before fit(); call fit(...) first")
        if (
            not isinstance(features, torch.Tensor)
            or features.dim() != 2
            or not features.dtype.is_floating_point
        ):
            raise DataError("features must be a float [N, D] tensor of penultimate-layer features")
        with torch.no_grad():
            return self._scores(features.detach(), self.head if head is None else head)

    def predict(self, features: torch.Tensor, head: Any = None) -> torch.Tensor:
        """argmax_c of :meth:`scores`, int64 [N]."""
        return self.scores(features, head).argmax(dim=1)

    def _fit(self, features: torch.Tensor, labels: torch.Tensor, head: Any, counts: torch.Tensor) -> None:
        pass

    def _scores(self, features: torch.Tensor, head: Any) -> torch.Tensor:
        raise NotImplementedError


def _check_features(
    features: torch.Tensor, labels: torch.Tensor, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(features, torch.Tensor) or features.dim() != 2 or not features.dtype.is_floating_point:
        raise DataError("train_features must be a float [N, D] tensor of penultimate-layer features")
    labels = torch.as_tensor(labels)
    if labels.dim() != 1 or labels.numel() != features.shape[0]:
        raise DataError(
            f"train_labels must be [N] with N = {features.shape[0]} (the number of feature rows), got "
            f"shape {tuple(labels.shape)}"
        )
    labels = labels.long().to(features.device)
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise DataError(f"train_labels must lie in 0..{num_classes - 1} (one per class count)")
    return features.detach(), labels


def tau_grid(stop: float, step: float) -> tuple[float, ...]:
    """0, step, 2·step, …, stop — rounded so that the values print and compare cleanly."""
    n = int(round(stop / step))
    return tuple(round(i * step, 10) for i in range(n + 1))


def tune(
    name: str,
    grid: Sequence[float] | None,
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    head: Any,
    class_counts: Any,
    heldout_features: torch.Tensor,
    heldout_labels: torch.Tensor,
    **params: Any,
) -> tuple[float, list[dict[str, float]]]:
    """Grid-search the rule's parameter by balanced accuracy on a held-out split (CDT appendix B.6).

    For each value v of ``grid`` (the rule's ``default_grid`` when ``None``) the rule
    ``POSTHOC.create(name, **{param_name: v}, **params)`` is fitted on the training features and
    scored on the held-out features. Returns ``(best_value, table)``; ``table`` has one row per
    value in grid order: ``{"param", "balanced_accuracy", "accuracy"}``. Ties in balanced accuracy
    (within 1e-12) go to the value closest to the rule's neutral value (0 for τ: the unmodified
    classifier), then to the smaller value — :func:`longtail.selection.choose`, the rule every tuned
    number in longtail follows.
    """
    rule_cls = POSTHOC.get(name)
    param_name = getattr(rule_cls, "param_name", None)
    if param_name is None:
        raise ConfigError(
            f"post-hoc rule {name!r} has no parameter to tune; call fit() and scores() directly"
        )
    values = list(rule_cls.default_grid if grid is None else grid)
    if not values:
        raise ConfigError(f"empty grid for post-hoc rule {name!r}; give at least one {param_name} value")
    heldout_labels = torch.as_tensor(heldout_labels).long()
    if (
        heldout_labels.dim() != 1
        or heldout_labels.numel() != heldout_features.shape[0]
        or heldout_labels.numel() == 0
    ):
        raise DataError("heldout_labels must be a non-empty [N] tensor matching heldout_features")
    table: list[dict[str, float]] = []
    for value in values:
        rule = POSTHOC.create(name, **{param_name: value}, **params)
        rule.fit(train_features, train_labels, head, class_counts)
        predictions = rule.predict(heldout_features, head)
        table.append(
            {
                "param": float(value),
                "balanced_accuracy": balanced_accuracy(heldout_labels, predictions),
                "accuracy": float((predictions.cpu() == heldout_labels).double().mean()),
            }
        )
    index = choose([((row["param"],), row["balanced_accuracy"]) for row in table], (float(rule_cls.neutral_value),))
    return table[index]["param"], table
