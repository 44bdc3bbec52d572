"""``ClassCountLoss``: the base of every loss built from the training class counts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from longtail.errors import ConfigError, LongtailError
from longtail.rebalance.weights import as_class_counts
from longtail.registry import bind_arguments

__all__ = ["ClassCountLoss"]


class ClassCountLoss(nn.Module):
    """Base class: a loss that knows the training class counts n_j and accepts per-class weights.

    - ``class_counts``: float64 buffer [C] (saved in the state dict).
    - ``class_weights``: float32 buffer [C] or None (uniform); set by a re-balancing schedule
      with :meth:`set_class_weights`. They enter as Σ_i w_{y_i} ℓ_i / Σ_i w_{y_i}. A loss with its
      own per-class weights (``weighted-ce``, ``class-balanced``) multiplies them with these.
    - Hyper-parameters named in ``param_names`` can be changed during training with
      :meth:`set_params` (e.g. CDT ``gamma`` for deferred CDT); they are saved in the state dict.
    - ``forward(logits, targets)`` casts the logits to float32 and runs with autocast disabled,
      so the loss is computed in fp32 whatever the model's precision; it returns the mean loss.

    Subclasses declare their parameters' types in ``__init__`` (checked by the registry, and by
    :meth:`set_params`), set ``param_names``, assign those attributes before calling
    :meth:`_refresh`, and implement :meth:`loss` (fp32 logits → scalar) and, if they hold derived
    constants, :meth:`_refresh` (recompute non-persistent buffers).
    """

    requires_normed_head: ClassVar[bool] = False
    param_names: ClassVar[tuple[str, ...]] = ()
    # parameter values that reduce the loss to its plain form (CE, or the plain hinge); parameters not
    # named here are neutral at 0 — `longtail tune` breaks ties toward them (longtail.selection)
    neutral_params: ClassVar[dict[str, float]] = {}

    class_counts: torch.Tensor
    class_weights: torch.Tensor | None

    def __init__(self, class_counts: Sequence[float] | torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("class_counts", as_class_counts(class_counts))
        self.register_buffer("class_weights", None)

    # --- public API ---------------------------------------------------------------------------

    @property
    def num_classes(self) -> int:
        return int(self.class_counts.numel())

    @property
    def params(self) -> dict[str, Any]:
        """The current hyper-parameters, ``{name: value}`` for each name in ``param_names``."""
        return {name: getattr(self, name) for name in self.param_names}

    def set_class_weights(self, weights: Sequence[float] | torch.Tensor | None) -> None:
        """Set per-class weights w [C] (non-negative, not all zero), or None for uniform weights."""
        if weights is None:
            self.class_weights = None
            return
        w = torch.as_tensor(weights, dtype=torch.float32).detach().clone()
        if w.shape != (self.num_classes,):
            raise ConfigError(
                f"class weights must have one entry per class ({self.num_classes}), got shape {tuple(w.shape)}"
            )
        if not torch.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
            raise ConfigError(f"class weights must be finite, >= 0 and not all 0, got {w.tolist()}")
        self.class_weights = w.to(self.class_counts.device)

    @classmethod
    def check_settable(cls, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` checked as :meth:`set_params` takes them (names in ``param_names``, values of
        their declared types), without a loss built: the engine checks a schedule's ``loss_params``
        with it before any data is read. Returns the checked values; raises ConfigError."""
        for name in params:
            if name not in cls.param_names:
                known = ", ".join(cls.param_names) or "none"
                raise ConfigError(
                    f"loss {cls.__name__} has no parameter {name!r} to set (known: {known}); "
                    "check the loss / schedule pairing (e.g. deferred-cdt needs the cdt loss)"
                )
        return bind_arguments(cls, f"loss {cls.__name__}", params, ("class_counts",))

    def set_params(self, **params: Any) -> None:
        """Change hyper-parameters (those in ``param_names``) and recompute what depends on them."""
        for name, value in self.check_settable(params).items():
            setattr(self, name, value)
        self._refresh()

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if logits.ndim != 2 or logits.shape[1] != self.num_classes:
            raise LongtailError(
                f"{type(self).__name__} expects logits of shape [batch, {self.num_classes}], "
                f"got {tuple(logits.shape)}"
            )
        if targets.shape != logits.shape[:1] or targets.dtype not in (torch.int64, torch.int32, torch.uint8):
            raise LongtailError(
                f"{type(self).__name__} expects integer targets of shape [{logits.shape[0]}], "
                f"got {targets.dtype} {tuple(targets.shape)}"
            )
        with torch.autocast(device_type=logits.device.type, enabled=False):
            return self.loss(logits.float(), targets.long())

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The mean loss for fp32 ``logits`` [B, C] and int64 ``targets`` [B]."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.params.items())

    # --- helpers for subclasses -----------------------------------------------------------------

    def _refresh(self) -> None:
        """Recompute the buffers derived from the hyper-parameters (no-op by default)."""

    def _weights_on(self, device: torch.device) -> torch.Tensor | None:
        return None if self.class_weights is None else self.class_weights.to(device)

    # --- state dict: class_weights may be None, hyper-parameters ride as extra state ----------

    def get_extra_state(self) -> dict[str, Any]:
        return self.params

    def set_extra_state(self, state: Any) -> None:
        if state:
            self.set_params(**state)
        else:
            self._refresh()

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        # A None buffer is invisible to nn.Module loading: make class_weights match the saved state
        # (present → a tensor the loader copies into, absent → uniform) before the generic load.
        key = prefix + "class_weights"
        if key in state_dict and state_dict[key] is not None:
            saved = state_dict[key]
            self.class_weights = torch.empty(
                saved.shape, dtype=torch.float32, device=self.class_counts.device
            )
        else:
            self.class_weights = None
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
