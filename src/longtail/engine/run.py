"""A run directory (:class:`Run`: ``fit`` writes through it) and reloading a finished run: everything
that reads a run back (eval, reproduce, analyze) calls :meth:`Run.load_trained` → :class:`TrainedRun`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from longtail.engine.checkpoint import latest_checkpoint, load_checkpoint, load_error_reason
from longtail.errors import DataError, LongtailError

_SNAPSHOT = re.compile(r"^epoch-(\d+)\.pt$")


def no_test_split(run_dir: str | Path, fix: str = "") -> str:
    """The one-line error for a test-set use of a run trained with ``eval.test=false`` (a ``-heldout`` run
    or a ``longtail tune`` candidate: only its held-out split is ever read). ``fix``: what to do instead
    (default: evaluate the run trained on the full set, with this run's choice)."""
    return (f"{run_dir} was trained with eval.test=false (a -heldout run or a `longtail tune` candidate): it never "
            "reads the test set, it only chooses on its held-out split; "
            + (fix or f"apply its choice to the run trained on the full set (`longtail eval FULL_RUN --posthoc RULE "
                      f"--tau-from {run_dir}`; for a tune candidate the run under OUT/final/), or train it with "
                      "eval.test=true"))


class Run:
    """The files of the run directory ``root`` (see ``docs/ARCHITECTURE.md``, "Run directory")."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.config_path = self.root / "config.yaml"
        self.metrics = self.root / "metrics.jsonl"
        self.results = self.root / "results.json"
        self.checkpoints = self.root / "checkpoints"
        self.events = self.root / "events"
        self.snapshots = self.root / "snapshots"
        self.vocab = self.root / "vocab.json"

    def eval_path(self, posthoc: str | None, fit_on: str | Path | None = None) -> Path:
        """``eval-<rule>.json`` (``eval-plain.json`` without a rule), ``eval-<rule>-fit-<config folder>-<config
        stem>.json`` with ``fit_on`` (e.g. ``eval-crt-fit-balanced12400-erm.json``)."""
        name = posthoc or "plain"
        if fit_on is not None:
            fit_on = Path(fit_on)
            name += f"-fit-{fit_on.parent.name}-{fit_on.stem}" if fit_on.parent.name else f"-fit-{fit_on.stem}"
        return self.root / f"eval-{name}.json"

    def last_checkpoint(self) -> Path:
        """The checkpoint with the highest epoch; a one-line error when the run has none."""
        if not self.root.is_dir():
            raise LongtailError(f"run directory {self.root} does not exist; pass the --out directory of `longtail train`")
        path = latest_checkpoint(self.checkpoints)
        if path is None:
            raise LongtailError(
                f"{self.root} has no checkpoints/ckpt-<epoch>.pt; pass a directory `longtail train` wrote "
                f"(or finish it with `longtail train --resume {self.root}`)"
            )
        return path

    def config(self) -> Any:
        """The run's resolved config (``config.yaml``)."""
        from longtail.config import load_config

        if not self.config_path.is_file():
            raise LongtailError(f"{self.root} has no config.yaml; give a directory written by `longtail train`")
        return load_config(self.config_path)

    def snapshot_list(self) -> list[tuple[int, Path]]:
        """``(epoch, path)`` of ``snapshots/epoch-<e>.pt`` by epoch (written when ``analysis.track_every`` > 0)."""
        files = self.snapshots.iterdir() if self.snapshots.is_dir() else ()
        return sorted((int(m.group(1)), p) for p in files if (m := _SNAPSHOT.match(p.name)))

    def save_snapshot(self, model: nn.Module, epoch: int, config: Any, data: Any) -> Path:
        """``snapshots/epoch-<e>.pt`` (keys ``model, epoch, class_counts, config, fingerprint``), atomically."""
        self.snapshots.mkdir(parents=True, exist_ok=True)
        path = self.snapshots / f"epoch-{epoch:04d}.pt"
        tmp = path.with_name(path.name + ".tmp")
        torch.save({"model": model.state_dict(), "epoch": epoch, "class_counts": list(data.class_counts),
                    "config": config.to_dict(), "fingerprint": data.fingerprint}, tmp)
        tmp.replace(path)
        return path

    @classmethod
    def load_trained(cls, run_dir: str | Path, *, device: str | None = None, precision: str | None = None,
                     data_root: str | Path | None = None, with_test: bool | None = None) -> TrainedRun:
        """The run's last checkpoint as a model in eval mode, with the data its config builds.

        ``device`` / ``precision`` default to the run's ``runtime`` section (``precision="fp32"`` for
        analyses); ``data_root`` replaces ``data.root`` (the data moved). The rebuilt training subset
        must have the run's fingerprint, else a one-line :class:`~longtail.errors.DataError`. ``with_test``
        (default: the run's ``eval.test``) False does not read the test split (``data.test`` is None).
        """
        from longtail.engine.accel import Accel, apply_allocator, prepare_model
        from longtail.engine.data import TrainData
        from longtail.engine.distributed import DistInfo
        from longtail.engine.trainer import build_model

        run = cls(run_dir)
        path = run.last_checkpoint()
        state = load_checkpoint(path)
        config = run.config()
        if data_root is not None:
            config.data.root = str(data_root)
        accel = Accel(device=device or config.runtime.device, channels_last=config.runtime.channels_last,
                      precision=precision or config.runtime.precision)
        apply_allocator(config.runtime.allocator, accel.torch_device)
        data = TrainData(config, DistInfo(), accel.torch_device, run_dir=run.root,  # data_stats.json (mean/std auto)
                         with_test=with_test)
        if data.fingerprint != state["fingerprint"]:
            raise DataError(
                f"the data built from {run.root}'s config (training subset {data.fingerprint}) is not what "
                f"{path} was trained on ({state['fingerprint']}); point data.root at the files the run used"
            )
        trained = TrainedRun(run, config, build_model(config, data), data, accel, path, int(state["epoch"]),
                             list(state["class_counts"]))
        trained.load_weights(path, state)
        prepare_model(trained.model, accel).eval()
        return trained


@dataclass
class TrainedRun:
    """A finished run reloaded by :meth:`Run.load_trained`: model (eval mode), data, and where they came from."""

    run: Run
    config: Any  # longtail.config.Config
    model: nn.Module
    data: Any  # longtail.engine.data.TrainData
    accel: Any  # longtail.engine.accel.Accel
    checkpoint: Path
    epoch: int
    class_counts: list[int]

    def split(self, name: str) -> Any:
        """The ``"train"`` (un-augmented), ``"heldout"`` or ``"test"`` split as ``EvalData``."""
        splits = {"train": self.data.train_eval, "heldout": self.data.heldout, "test": self.data.test}
        if name == "test" and splits[name] is None and not self.config.eval.test:
            raise LongtailError(no_test_split(self.run.root))
        if splits[name] is None:
            raise LongtailError(
                f"run {self.run.root} has no {name} split; retrain with data.heldout_per_class=K "
                "(e.g. 3 per class, CDT appendix B.6)"
            )
        return splits[name]

    def outputs(self, split: str | Any, batch_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(features [N, D], logits [N, C], labels [N])`` of a split (a name or an ``EvalData``), float32 on the
        CPU; ``batch_size`` defaults to ``eval.batch_size``."""
        from longtail.engine.evaluate import extract

        data = self.split(split) if isinstance(split, str) else split
        return extract(self.model, data, self.accel, batch_size or self.config.eval.batch_size)

    def load_weights(self, path: Path, state: dict[str, Any] | None = None) -> None:
        """Load the ``model`` weights of checkpoint or snapshot ``path`` (its loaded ``state`` if given)."""
        if state is None:
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as error:  # noqa: BLE001 - any unpickling failure means an unreadable file
                raise LongtailError(
                    f"cannot read {path} ({load_error_reason(error)}); is it a file written by longtail train?"
                ) from None
        weights = state.get("model") if isinstance(state, dict) else None
        if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
            raise LongtailError(f"{path} holds no model state dict (key 'model'); it was not written by longtail train")
        try:
            self.model.load_state_dict(weights)
        except RuntimeError as error:
            first = str(error).strip().splitlines()[0]
            raise LongtailError(
                f"the weights in {path} do not fit the model its config describes ({first}); "
                "was the run written by another version of longtail?"
            ) from None
