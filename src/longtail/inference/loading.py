"""A finished run loaded in one call: :func:`load_trained_run` (config, rebuilt data, model, outputs).

The one place :mod:`longtail.inference` reloads a run (so it can move onto the run layer's
``Run.load_trained()`` without touching predict/export). The model runs in fp32 on the CPU (or the
given device) in eval mode, whatever the run's training precision, so that ``predict`` and an exported
model compute the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from longtail.errors import LongtailError


@dataclass
class TrainedRun:
    """A run directory's last checkpoint with its data and model, ready to use."""

    run_dir: Path
    config: Any
    data: Any  # longtail.engine.data.TrainData
    model: torch.nn.Module
    accel: Any
    checkpoint: Path
    epoch: int
    class_counts: list[int]
    _outputs: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = field(default_factory=dict, repr=False)

    @property
    def classes(self) -> list[str]:
        return list(self.data.classes)

    @property
    def num_classes(self) -> int:
        return len(self.class_counts)

    @property
    def info(self) -> Any:
        return self.data.info

    @property
    def has_heldout(self) -> bool:
        return self.data.heldout is not None and len(self.data.heldout) > 0

    @property
    def channels(self) -> int:
        return int(self.data.channels or 3)

    @property
    def image_size(self) -> int:
        """Side of the network input: the stored images' side for in-memory sets, else the data set's."""
        images = self.data.data.train.images
        return int(images.shape[-1]) if images is not None else int(self.info.image_size)

    @property
    def mean(self) -> list[float]:
        return [float(v) for v in self.info.mean]

    @property
    def std(self) -> list[float]:
        return [float(v) for v in self.info.std]

    def outputs(self, split: str, batch_size: int = 128) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(features, logits, labels)`` of ``"train"``, ``"heldout"`` or ``"test"`` (computed once)."""
        from longtail.engine.evaluate import extract

        if split not in self._outputs:
            source = {"train": self.data.train_eval, "heldout": self.data.heldout, "test": self.data.test}[split]
            if source is None or len(source) == 0:
                raise LongtailError(f"run {self.run_dir} has no {split} split")
            self._outputs[split] = extract(self.model, source, self.accel, batch_size)
        return self._outputs[split]


def load_trained_run(run_dir: str | Path, device: str = "cpu") -> TrainedRun:
    """Load ``run_dir`` (written by ``longtail train``): its config, the data it was trained on (the
    subset fingerprint is checked), and the model of its last checkpoint in fp32 eval mode."""
    from longtail.config import load_config
    from longtail.engine.accel import Accel, prepare_model
    from longtail.engine.checkpoint import latest_checkpoint, load_checkpoint
    from longtail.engine.data import TrainData
    from longtail.engine.distributed import DistInfo
    from longtail.engine.trainer import build_model

    run_dir = Path(run_dir)
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise LongtailError(f"{run_dir} has no config.yaml; give a directory written by `longtail train`")
    ckpt_path = latest_checkpoint(run_dir / "checkpoints")
    if ckpt_path is None:
        raise LongtailError(f"{run_dir} has no checkpoint in checkpoints/; train it first (or --resume it)")
    config = load_config(config_path)
    state = load_checkpoint(ckpt_path)
    accel = Accel(device=device, channels_last=False, precision="fp32")
    data = TrainData(config, DistInfo(), accel.torch_device)
    if data.fingerprint != state["fingerprint"]:
        raise LongtailError(
            f"the data built from {config_path} (subset {data.fingerprint}) is not what {ckpt_path} was trained "
            f"on ({state['fingerprint']}); check data.root"
        )
    model = build_model(config, data)
    model.load_state_dict(state["model"])
    prepare_model(model, accel)
    model.eval()
    return TrainedRun(run_dir, config, data, model, accel, ckpt_path, int(state["epoch"]), list(state["class_counts"]))
