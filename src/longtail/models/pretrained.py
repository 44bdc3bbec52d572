"""Starting a model from saved weights (``model.init_from``) and freezing its backbone (``model.freeze``).

Accepted files, always read with ``torch.load(weights_only=True)`` (tensors and plain containers
only, no code):

* a longtail run directory (its last ``checkpoints/ckpt-<e>.pt``), a longtail checkpoint or
  snapshot (a dict with a ``model`` entry): keys ``backbone.*`` / ``head.*`` as saved;
* a torchvision-style ResNet / ResNeXt state dict (``conv1.weight``, ``bn1.*``, ``layer1.0.conv1.weight``,
  …, ``fc.weight``, ``fc.bias``), optionally inside ``{"state_dict": …}`` and with DDP's ``module.``
  prefix: ``X`` maps to ``backbone.X`` and ``fc.*`` to ``head.*``.

The backbone must match exactly: a key missing from the file, a key of the file the model does not
have, or a shape that differs is a ``ConfigError`` naming those keys. The head is loaded only when
its shapes match (same class count, linear head); otherwise it keeps its fresh initialisation — the
usual case of a pretrained start on a new label set — and the report says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from longtail.errors import ConfigError

FREEZE_CHOICES = ("none", "backbone")


@dataclass
class InitReport:
    """What :func:`load_init` did: the source kind, keys loaded, head keys left at their init."""

    source: str  # "longtail" or "torchvision"
    loaded: list[str] = field(default_factory=list)
    head_skipped: list[str] = field(default_factory=list)

    def message(self, path: str | Path) -> str:
        text = f"model.init_from: {len(self.loaded)} tensors from {path} ({self.source} layout)"
        if self.head_skipped:
            text += f"; head kept at its initialisation ({', '.join(self.head_skipped)})"
        return text


def _read(path: Path) -> dict[str, Any]:
    if path.is_dir():
        from longtail.engine.checkpoint import latest_checkpoint

        ckpt = latest_checkpoint(path / "checkpoints")
        if ckpt is None:
            raise ConfigError(f"model.init_from={path} is a directory without checkpoints/ckpt-*.pt; "
                              "give a finished longtail run or a state-dict file")
        path = ckpt
    if not path.is_file():
        raise ConfigError(f"model.init_from={path} does not exist; give a longtail run, checkpoint or state-dict file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001  (pickle/zip errors have many types)
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"model.init_from={path} cannot be read as a weights-only state dict ({first})") from None
    if not isinstance(state, dict):
        raise ConfigError(f"model.init_from={path} holds a {type(state).__name__}, not a state dict")
    return state


def _state_dict(raw: dict[str, Any], path: Path) -> tuple[dict[str, torch.Tensor], str]:
    """(state dict in this package's key names, source kind)."""
    for wrapper in ("model", "state_dict"):
        if isinstance(raw.get(wrapper), dict):
            raw = raw[wrapper]
            break
    tensors = {str(k): v for k, v in raw.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise ConfigError(f"model.init_from={path} holds no tensors; give a state dict")
    if all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module."):]: v for k, v in tensors.items()}
    if any(k.startswith(("backbone.", "head.")) for k in tensors):
        return tensors, "longtail"
    mapped = {}
    for key, value in tensors.items():
        mapped[("head." + key[3:]) if key.startswith("fc.") else ("backbone." + key)] = value
    return mapped, "torchvision"


def load_init(model: nn.Module, path: str | Path, head: bool = True) -> InitReport:
    """Load the weights at ``path`` into ``model`` (see the module docstring); returns the report.

    ``head=False`` loads the backbone only (classifier re-training re-initialises the head)."""
    path = Path(path).expanduser()
    state, source = _state_dict(_read(path), path)
    own = model.state_dict()
    report = InitReport(source)
    missing = [k for k in own if k.startswith("backbone.") and k not in state]
    unexpected = [k for k in state if k.startswith("backbone.") and k not in own]
    unexpected += [k for k in state if not k.startswith(("backbone.", "head."))]
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
             if k.startswith("backbone.") and k in state and state[k].shape != own[k].shape]
    problems = []
    for label, keys in (("missing from the file", missing), ("not in the model", unexpected),
                        ("with another shape (file vs model)", wrong)):
        if keys:
            shown = ", ".join(keys[:5]) + (f" … ({len(keys)} in all)" if len(keys) > 5 else "")
            problems.append(f"{label}: {shown}")
    if problems:
        raise ConfigError(
            f"model.init_from={path} ({source} layout) does not fit model {type(model).__name__} — "
            + "; ".join(problems) + " — use the same architecture (model.name, in_channels, stem)"
        )
    loadable: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith("head."):
            if head and key in own and own[key].shape == value.shape:
                loadable[key] = value
            else:
                report.head_skipped.append(key)
        else:
            loadable[key] = value
    with torch.no_grad():
        for key, value in loadable.items():
            own[key].copy_(value.to(own[key].dtype))
    report.loaded = sorted(loadable)
    head_keys = [k for k in own if k.startswith("head.")]
    report.head_skipped += [k for k in head_keys if k not in state and k not in report.head_skipped]
    return report


def freeze(model: nn.Module, what: str) -> None:
    """``what="backbone"``: backbone parameters stop learning and its batch norms keep their
    statistics (the backbone stays in eval mode when the model trains) — classifier re-training, as
    the decoupling code's cRT stage with fixed features. ``"none"``: nothing."""
    if what == "none":
        return
    if what != "backbone":
        raise ConfigError(f"model.freeze={what!r}; choose one of {', '.join(FREEZE_CHOICES)}")
    backbone = getattr(model, "backbone", None)
    if backbone is None or not hasattr(model, "freeze_backbone"):
        raise ConfigError(f"model.freeze=backbone needs a model with a backbone, not {type(model).__name__}")
    model.freeze_backbone()
