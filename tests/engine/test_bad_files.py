"""A file that cannot be decoded in the middle of a run (a truncated JPEG in a large image folder):
``data.on_bad_file: stop`` names the file and the step and keeps the last checkpoint; ``skip`` drops
it, counts it, and ``results.json`` lists it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from longtail.cli import main
from longtail.config import load_config
from longtail.data.loaders import StreamingLoader, StreamTransform
from longtail.engine import checkpoint as ck
from longtail.engine.trainer import fit
from longtail.errors import DataError


def _folder(root, per_class=(6, 4, 3), size=20):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, counts in (("train", per_class), ("val", (2, 2, 2))):
        for c, n in enumerate(counts):
            for i in range(n):
                path = root / split / f"class{c}" / f"{i:02d}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path, "JPEG")
    return root


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


@pytest.mark.parametrize("workers", [0, 2])
def test_streaming_loader_stop_and_skip(tmp_path, workers):
    root = _folder(tmp_path / "f")
    paths = sorted(str(p) for p in (root / "train").rglob("*.jpg"))
    bad = paths[5]
    _truncate(root / "train" / bad.split("/train/")[1])
    labels = list(range(len(paths)))
    transform = StreamTransform(16, train=True)
    stop = StreamingLoader(paths, labels, 4, None, transform, workers)
    stop.set_epoch(2)
    with pytest.raises(DataError, match=rf"{bad}.*at epoch 3, step 2; stopped.*data.on_bad_file=skip") as info:
        list(stop)
    assert "\n" not in str(info.value)

    skip = StreamingLoader(paths, labels, 4, None, transform, workers, on_bad_file="skip")
    batches = list(skip)
    assert [len(y) for _, y in batches] == [4, 3, 4, 1]  # the bad file (position 5) left the second batch
    assert sorted(torch.cat([y for _, y in batches]).tolist()) == [i for i in labels if i != 5]
    assert skip.bad_files == [bad]
    list(skip)
    assert skip.bad_files == [bad, bad]  # counted each time it is met


def _config(tmp_path, root, **data):
    return load_config(None, [
        "data.name=imagefolder", f"data.root={root}", "data.profile=none", "data.workers=0",
        *[f"data.{k}={v}" for k, v in data.items()],
        "model.name=resnet32", "optim.batch_size=4", "optim.lr=0.01", "optim.warmup_epochs=0",
        "train.epochs=2", "train.checkpoint_keep=5", "eval.every=1", "eval.batch_size=8",
        "runtime.progress=none", "runtime.num_threads=1", "runtime.compile=false", "runtime.precision=fp32",
    ])  # fmt: skip


def _fail_in_epoch_two(monkeypatch, bad_name, images_per_epoch):
    """The file turns bad after the first epoch (as a disk error in the middle of a run would)."""
    import longtail.data.loaders as loaders

    real = loaders.open_image
    calls = {"n": 0}

    def open_image(path, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > images_per_epoch and str(path).endswith(bad_name):
            raise DataError(f"cannot decode image {path}: truncated or corrupt (image file is truncated)")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(loaders, "open_image", open_image)


def test_stop_names_file_and_step_and_keeps_the_last_checkpoint(tmp_path, monkeypatch, capsys):
    root = _folder(tmp_path / "f")
    out = tmp_path / "run"
    config_path = tmp_path / "c.yaml"
    from longtail.config import save_config

    save_config(_config(tmp_path, root), config_path)
    _fail_in_epoch_two(monkeypatch, "class1/02.jpg", 13)
    assert main(["train", str(config_path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "class1/02.jpg" in err and "at epoch 2, step " in err, err
    assert [e for e, _ in ck.list_checkpoints(out / "checkpoints")] == [1]  # epoch 1's, kept
    assert not (out / "results.json").exists() and not (out / "run.lock").exists()


def test_skip_counts_and_lists_the_bad_files_in_results(tmp_path, monkeypatch):
    root = _folder(tmp_path / "f")
    bad = root / "train" / "class0" / "03.jpg"
    _truncate(bad)
    results = fit(_config(tmp_path, root, on_bad_file="skip"), tmp_path / "run")
    assert results["bad_files"] == {"skipped": 2, "files": [str(bad)]}  # met once per epoch, 2 epochs
    assert json.loads((tmp_path / "run" / "results.json").read_text())["bad_files"]["skipped"] == 2
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2 and all(np.isfinite(json.loads(x)["train_loss"]) for x in lines)


def test_skip_count_survives_resume(tmp_path):
    root = _folder(tmp_path / "f")
    bad = root / "train" / "class2" / "00.jpg"
    _truncate(bad)
    config = _config(tmp_path, root, on_bad_file="skip")
    fit(config, tmp_path / "run")
    (tmp_path / "run" / "results.json").unlink()
    ck.list_checkpoints(tmp_path / "run" / "checkpoints")[-1][1].unlink()  # back to after epoch 1
    results = fit(config, tmp_path / "run", resume=True)
    assert results["bad_files"] == {"skipped": 2, "files": [str(bad)]}
