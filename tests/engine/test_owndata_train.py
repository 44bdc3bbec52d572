"""Training on your own images: a 32×32 folder through the in-memory path equals the same images
given as a list file; data.mean/std = auto stored in the run and reused on resume; model.init_from
(a longtail run, a torchvision-style ResNet-50 state dict) and model.freeze=backbone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from longtail.config import from_dict
from longtail.engine.trainer import fit
from longtail.errors import ConfigError

SIZE = 32
TRAIN_COUNTS = (12, 6, 3)
CLASSES = ("ant", "bee", "cow")


def write_folder(root: Path, seed: int = 0) -> Path:
    """root/train/<class>/<n>.png and root/val/<class>/<n>.png: 32×32 RGB, a prototype per class + noise."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    prototypes = rng.integers(0, 256, (len(CLASSES), SIZE, SIZE, 3))
    for split, counts in (("train", TRAIN_COUNTS), ("val", (3, 3, 3))):
        for c, (name, n) in enumerate(zip(CLASSES, counts)):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                pixels = np.clip(prototypes[c] + rng.normal(0, 50, (SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:03d}.png")
    return root


def write_lists(root: Path) -> None:
    """The same images as 'relative/path label' list files, in the folder reader's order."""
    for split, name in (("train", "train.txt"), ("val", "test.txt")):
        lines = [f"{split}/{cls}/{f.name} {c}" for c, cls in enumerate(CLASSES)
                 for f in sorted((root / split / cls).iterdir())]
        (root / name).write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = write_folder(tmp_path_factory.mktemp("own"))
    write_lists(root)
    return root


def config_for(root: Path, **data) -> dict:
    return {
        "data": {"name": "imagefolder", "root": str(root), "profile": "none", "image_size": SIZE, "workers": 0,
                 **data},
        "model": {"name": "resnet32"},
        "optim": {"batch_size": 8, "lr": 0.05, "warmup_epochs": 1, "milestones": [2], "gamma": 0.1},
        "train": {"epochs": 2, "checkpoint_keep": 5},
        "eval": {"every": 1, "batch_size": 16},
        "runtime": {"progress": "none", "num_threads": 1, "device": "cpu", "compile": False},
    }


def _model_state(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(sorted((run / "checkpoints").glob("ckpt-*.pt"))[-1], weights_only=True)["model"]


def test_folder_in_memory_equals_list_file(folder, tmp_path):
    from longtail.engine.data import TrainData
    from longtail.engine.distributed import DistInfo

    folder_cfg = from_dict(config_for(folder))
    data = TrainData(folder_cfg, DistInfo(), torch.device("cpu"))
    assert data.geometry["in_memory"] and data.geometry["train_transform"] == "pad-crop"
    assert data.data.train.images.shape == (sum(TRAIN_COUNTS), 3, SIZE, SIZE)  # trained at 32×32
    assert data.data.train.paths is None and data.info.image_size == SIZE
    # the decoded bytes are the PNG pixels, untouched
    from PIL import Image

    first = np.asarray(Image.open(folder / "train" / "ant" / "000.png")).transpose(2, 0, 1)
    assert np.array_equal(data.data.train.images[0].numpy(), first)

    a = fit(folder_cfg, tmp_path / "folder")
    list_cfg = from_dict(config_for(folder, name="listfile"))
    b = fit(list_cfg, tmp_path / "list")
    for key in ("top1", "per_class", "balanced_accuracy", "class_counts", "fingerprint"):
        assert a[key] == b[key], key
    log = [json.loads(line)["train_loss"] for line in (tmp_path / "folder" / "metrics.jsonl").read_text().splitlines()]
    log_b = [json.loads(line)["train_loss"] for line in (tmp_path / "list" / "metrics.jsonl").read_text().splitlines()]
    assert log == log_b
    state_a, state_b = _model_state(tmp_path / "folder"), _model_state(tmp_path / "list")
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)


def test_in_memory_budget_and_streamed_path(folder):
    from longtail.engine.data import TrainData
    from longtail.engine.distributed import DistInfo

    streamed = TrainData(from_dict(config_for(folder, in_memory=False)), DistInfo(), torch.device("cpu"))
    assert not streamed.geometry["in_memory"] and streamed.data.train.paths is not None
    x, y = next(iter(streamed.train_loader(("instance", {}), 0)))
    assert x.shape == (8, 3, SIZE, SIZE)
    tight = TrainData(from_dict(config_for(folder, memory_budget_mb=0)), DistInfo(), torch.device("cpu"))
    assert not tight.geometry["in_memory"] and "budget 0 MiB" in tight.geometry["in_memory_reason"]
    with pytest.raises(ConfigError, match="data.in_memory=true needs data.train_transform=pad-crop"):
        TrainData(from_dict(config_for(folder, in_memory=True, train_transform="random-resized-crop")),
                  DistInfo(), torch.device("cpu"))
    grey = TrainData(from_dict(config_for(folder, channels=1, image_size=16)), DistInfo(), torch.device("cpu"))
    assert grey.data.train.images.shape[1:] == (1, 16, 16) and len(grey.info.mean) == 1


def test_auto_statistics_stored_and_reused_on_resume(folder, tmp_path, monkeypatch):
    from PIL import Image

    raw = config_for(folder, mean="auto", std="auto")
    raw["train"]["epochs"] = 3
    config = from_dict(raw)
    run = tmp_path / "auto"
    full = fit(config, run)
    stats = json.loads((run / "data_stats.json").read_text())
    pixels = np.stack([np.asarray(Image.open(f)) for cls in CLASSES
                       for f in sorted((folder / "train" / cls).iterdir())]).astype(np.float64) / 255.0
    np.testing.assert_allclose(stats["mean"], pixels.mean(axis=(0, 1, 2)), rtol=1e-12)
    np.testing.assert_allclose(stats["std"], pixels.std(axis=(0, 1, 2)), rtol=1e-9)
    assert stats["images"] == sum(TRAIN_COUNTS) and stats["image_size"] == SIZE

    # cut the run back to epoch 1 and resume: the stored statistics are read, never recomputed
    for path in sorted((run / "checkpoints").glob("ckpt-*.pt"))[1:]:
        path.unlink()
    (run / "results.json").unlink()
    import longtail.data.geometry as geometry

    def refuse(*_args, **_kwargs):
        raise AssertionError("statistics recomputed on resume")

    monkeypatch.setattr(geometry, "compute_stats", refuse)
    resumed = fit(config, run, resume=True)
    assert resumed["top1"] == full["top1"] and resumed["per_class"] == full["per_class"]
    assert _model_state(run).keys() and json.loads((run / "data_stats.json").read_text()) == stats


def _torchvision_resnet50_state(num_classes: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict with torchvision's ResNet-50 key names and shapes, written from the architecture
    (stages of 3, 4, 6, 3 bottlenecks; widths 64·2^i, expansion 4; downsample on each stage's first block)."""
    g = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}

    def bn(prefix: str, c: int) -> None:
        state[f"{prefix}.weight"] = torch.rand(c, generator=g) + 0.5
        state[f"{prefix}.bias"] = torch.randn(c, generator=g)
        state[f"{prefix}.running_mean"] = torch.randn(c, generator=g)
        state[f"{prefix}.running_var"] = torch.rand(c, generator=g) + 0.5
        state[f"{prefix}.num_batches_tracked"] = torch.tensor(1000)

    state["conv1.weight"] = torch.randn(64, 3, 7, 7, generator=g)
    bn("bn1", 64)
    in_planes = 64
    for stage, (blocks, width) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512)), 1):
        for b in range(blocks):
            p = f"layer{stage}.{b}"
            state[f"{p}.conv1.weight"] = torch.randn(width, in_planes, 1, 1, generator=g)
            bn(f"{p}.bn1", width)
            state[f"{p}.conv2.weight"] = torch.randn(width, width, 3, 3, generator=g)
            bn(f"{p}.bn2", width)
            state[f"{p}.conv3.weight"] = torch.randn(width * 4, width, 1, 1, generator=g)
            bn(f"{p}.bn3", width * 4)
            if b == 0:
                state[f"{p}.downsample.0.weight"] = torch.randn(width * 4, in_planes, 1, 1, generator=g)
                bn(f"{p}.downsample.1", width * 4)
            in_planes = width * 4
    state["fc.weight"] = torch.randn(num_classes, 2048, generator=g)
    state["fc.bias"] = torch.randn(num_classes, generator=g)
    return state


def test_init_from_torchvision_resnet50(tmp_path):
    from longtail.models import create_model
    from longtail.models.pretrained import load_init

    state = _torchvision_resnet50_state(1000)
    assert len(state) == 320  # torchvision's resnet50().state_dict() has 320 entries
    path = tmp_path / "resnet50-imagenet.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, path)  # DDP-wrapped, nested
    model = create_model("resnet50", num_classes=10)
    report = load_init(model, path)
    own = model.state_dict()
    backbone = [k for k in own if k.startswith("backbone.")]
    assert sorted(report.loaded) == sorted(backbone)  # no backbone key missing
    for key in backbone:
        assert torch.equal(own[key], state[key[len("backbone."):]]), key
    assert report.head_skipped == ["head.weight", "head.bias"]  # 1000 classes vs 10: fresh head
    same = create_model("resnet50", num_classes=1000)
    torch.save(state, path)
    assert load_init(same, path).head_skipped == []
    assert torch.equal(same.head.weight, state["fc.weight"]) and torch.equal(same.head.bias, state["fc.bias"])

    broken = dict(state)
    del broken["layer3.2.bn2.running_var"]
    broken["layer4.0.conv2.weight"] = torch.zeros(512, 512, 1, 1)
    broken["layer5.0.conv1.weight"] = torch.zeros(1)
    torch.save(broken, path)
    with pytest.raises(ConfigError) as info:
        load_init(create_model("resnet50", num_classes=10), path)
    message = str(info.value)
    for fragment in ("missing from the file: backbone.layer3.2.bn2.running_var",
                     "not in the model: backbone.layer5.0.conv1.weight",
                     "backbone.layer4.0.conv2.weight (512, 512, 1, 1) vs (512, 512, 3, 3)"):
        assert fragment in message
    with pytest.raises(ConfigError, match="does not fit"):
        load_init(create_model("resnet18", num_classes=10), tmp_path / "resnet50-imagenet.pth")


def test_init_from_refuses_pickled_code(tmp_path):
    from longtail.models import create_model
    from longtail.models.pretrained import load_init

    path = tmp_path / "evil.pt"
    torch.save({"model": {"x": torch.zeros(1)}, "thing": object()}, path)
    with pytest.raises(ConfigError, match="weights-only"):
        load_init(create_model("resnet10", num_classes=3), path)


def test_init_from_a_run_round_trips_and_freeze_backbone(folder, tmp_path):
    first = fit(from_dict(config_for(folder)), tmp_path / "first")
    assert first["epochs"] == 2
    from longtail.models import create_model
    from longtail.models.pretrained import load_init

    model = create_model("resnet32", num_classes=3, seed=5)
    report = load_init(model, tmp_path / "first")  # a run directory: its last checkpoint
    saved = _model_state(tmp_path / "first")
    assert report.source == "longtail" and report.head_skipped == []
    assert all(torch.equal(model.state_dict()[k], saved[k]) for k in saved)
    fresh = create_model("resnet32", num_classes=3, seed=5)
    head_before = fresh.head.weight.detach().clone()
    assert load_init(fresh, tmp_path / "first", head=False).head_skipped == ["head.weight", "head.bias"]
    assert torch.equal(fresh.head.weight, head_before)
    assert torch.equal(fresh.backbone.conv1.weight, saved["backbone.conv1.weight"])

    # classifier re-training from that run: the backbone (weights and BN statistics) does not move
    raw = config_for(folder)
    raw["model"].update(init_from=str(tmp_path / "first"), freeze="backbone")
    raw["train"]["epochs"] = 1
    raw["optim"].update(lr=0.5, warmup_epochs=0)
    fit(from_dict(raw), tmp_path / "crt")
    after = _model_state(tmp_path / "crt")
    assert all(torch.equal(after[k], saved[k]) for k in saved if k.startswith("backbone."))
    assert not torch.equal(after["head.weight"], saved["head.weight"])
