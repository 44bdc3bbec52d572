"""A finished run loaded in one call for predict/export: :func:`load_trained_run`.

It is :meth:`longtail.engine.run.Run.load_trained` in fp32 (whatever the run's training precision, so
that ``predict`` and an exported model compute the same numbers) plus what using the model needs:
the input geometry and normalisation, and split outputs computed once (a decision may read the
training and held-out outputs several times).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch


@dataclass
class TrainedRun:
    """A run's last checkpoint with its data and model (eval mode, fp32), ready to use."""

    base: Any  # longtail.engine.run.TrainedRun
    batch_size: int = 128  # of the split outputs below
    _outputs: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = field(default_factory=dict, repr=False)

    def __getattr__(self, name: str) -> Any:  # config, data, model, accel, checkpoint, epoch, class_counts
        if name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)

    @property
    def run_dir(self) -> Path:
        return Path(self.base.run.root)

    @property
    def classes(self) -> list[str]:
        return list(self.base.data.classes)

    @property
    def num_classes(self) -> int:
        return len(self.base.class_counts)

    @property
    def info(self) -> Any:
        return self.base.data.info

    @property
    def has_heldout(self) -> bool:
        return self.base.data.heldout is not None and len(self.base.data.heldout) > 0

    @property
    def channels(self) -> int:
        return int(self.base.data.channels or 3)

    @property
    def image_size(self) -> int:
        """Side of the network input: the stored images' side for in-memory sets, else the data set's."""
        images = self.base.data.data.train.images
        return int(images.shape[-1]) if images is not None else int(self.info.image_size)

    @property
    def mean(self) -> list[float]:
        return [float(v) for v in self.info.mean]

    @property
    def std(self) -> list[float]:
        return [float(v) for v in self.info.std]

    def outputs(self, split: str, batch_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(features, logits, labels)`` of ``"train"``, ``"heldout"`` or ``"test"`` (computed once, in batches of
        ``batch_size``, default :attr:`batch_size`)."""
        if split not in self._outputs:
            self._outputs[split] = self.base.outputs(split, batch_size or self.batch_size)
        return self._outputs[split]


def load_trained_run(run_dir: str | Path, device: str | None = "cpu", *, with_test: bool | None = None,
                     batch_size: int = 128) -> TrainedRun:
    """``Run.load_trained(run_dir)`` in fp32 on ``device`` (None: the run's ``runtime.device``; the subset
    fingerprint checked there); ``with_test=False`` does not load the test split (a held-out run that only
    chooses)."""
    from longtail.engine.run import Run

    return TrainedRun(Run.load_trained(run_dir, device=device, precision="fp32", with_test=with_test), batch_size)
