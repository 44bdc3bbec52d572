"""The training engine: ``fit(config, out_dir)`` and its parts (optimiser, checkpoints, evaluation)."""

from __future__ import annotations

from typing import Any

__all__ = ["TrainingDiverged", "fit"]


def __getattr__(name: str) -> Any:  # lazy: importing longtail.engine.accel stays light
    if name in __all__:
        from longtail.engine import trainer

        return getattr(trainer, name)
    raise AttributeError(name)
