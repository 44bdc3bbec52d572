"""Run tracking: ``metrics.jsonl`` (always), TensorBoard events (when installed), console progress.

``metrics.jsonl`` has one JSON object per epoch (``epoch`` is 1-based = epochs completed), flushed
after each line, so a killed run loses nothing that was logged. TensorBoard is imported lazily;
without it only the JSONL file is written.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf floats become None (strict JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_json(path: str | Path, data: Any) -> None:
    """Write strict JSON atomically (temp file + rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_clean(data), indent=2, allow_nan=False) + "\n")
    tmp.replace(path)


def read_json(path: str | Path, keys: tuple[str, ...] = ()) -> Any:
    """Read a JSON file written by longtail; a cut, edited or foreign file is a one-line LongtailError."""
    from longtail.errors import LongtailError

    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise LongtailError(
            f"{path} is not valid JSON ({str(error).splitlines()[0]}); it was cut or edited — re-create it "
            "(e.g. `longtail train --resume` on its run directory) or remove it"
        ) from None
    missing = [k for k in keys if not isinstance(data, dict) or k not in data]
    if missing:
        raise LongtailError(f"{path} lacks {', '.join(missing)}; it was not written by longtail — re-create it")
    return data


class MetricsLog:
    """Append-only JSONL log of per-epoch metrics."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def truncate_after(self, epoch: int) -> None:
        """Keep only the lines of epochs ``<= epoch`` (used on resume: later lines are re-run)."""
        if not self.path.exists():
            return
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a line cut by a kill
                continue
            if record.get("epoch", 0) <= epoch:
                kept.append(line)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(k + "\n" for k in kept))
        tmp.replace(self.path)

    def append(self, record: dict[str, Any]) -> None:
        with open(self.path, "a") as handle:
            handle.write(json.dumps(_clean(record), allow_nan=False) + "\n")
            handle.flush()

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]


class TensorBoardLog:
    """Scalars to ``events/`` via ``torch.utils.tensorboard`` when tensorboard is importable."""

    def __init__(self, directory: str | Path) -> None:
        self.writer = None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except Exception:  # noqa: BLE001 - tensorboard missing or broken: JSONL only
            return
        self.writer = SummaryWriter(log_dir=str(directory))

    def log(self, record: dict[str, Any], step: int) -> None:
        if self.writer is None:
            return
        for key, value in record.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "epoch":
                self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_epoch(record: dict[str, Any], epochs: int) -> str:
    """One line per epoch: ``epoch 3/20  lr 0.06  train_loss 1.23  train_acc 0.51  test_top1 0.48  4.1s``."""
    parts = [f"epoch {record['epoch']}/{epochs}"]
    for key in ("lr", "train_loss", "train_acc", "test_top1", "test_balanced_accuracy"):
        if record.get(key) is not None:
            parts.append(f"{key} {_fmt(record[key])}")
    parts.append(f"{record.get('seconds', 0.0):.1f}s")
    return "  ".join(parts)


class Progress:
    """Console output: a tqdm bar over steps on a terminal, one plain line per epoch otherwise."""

    def __init__(self, mode: str, epochs: int, enabled: bool = True) -> None:
        if mode == "auto":
            mode = "bar" if sys.stdout.isatty() else "line"
        self.mode = mode if enabled else "none"
        self.epochs = epochs
        self.bar = None

    def start_epoch(self, epoch: int, steps: int) -> None:
        if self.mode == "bar":
            from tqdm import tqdm

            self.bar = tqdm(total=steps, desc=f"epoch {epoch + 1}/{self.epochs}", leave=False, dynamic_ncols=True)

    def step(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def end_epoch(self, record: dict[str, Any]) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.mode in ("bar", "line"):
            print(format_epoch(record, self.epochs), flush=True)

    def message(self, text: str) -> None:
        if self.mode != "none":
            print(text, flush=True)
