"""The run layer: `Run.load_trained` reloads a finished run; the checkpointer's state round-trips."""

from __future__ import annotations

import json

import pytest
import torch

from longtail.cli import main
from longtail.config import load_config
from longtail.engine.checkpoint import Checkpointer, latest_checkpoint
from longtail.engine.run import Run
from longtail.engine.trainer import fit
from longtail.errors import ConfigError, DataError


@pytest.fixture
def trained_run(write_config, tmp_path):
    config = load_config(write_config(), ["train.epochs=2", "data.heldout_per_class=2", "runtime.precision=fp32"])
    fit(config, tmp_path / "run")
    return tmp_path / "run"


def test_load_trained_gives_the_trained_model_and_its_data(trained_run):
    from longtail.data import build_longtail
    from longtail.models import create_model

    trained = Run.load_trained(trained_run)
    results = json.loads((trained_run / "results.json").read_text())
    assert not trained.model.training and trained.epoch == 2
    assert trained.checkpoint == latest_checkpoint(trained_run / "checkpoints")
    assert trained.class_counts == results["class_counts"] and trained.data.fingerprint == results["fingerprint"]
    features, logits, labels = trained.outputs("test")
    # the same logits as the trained weights give on the raw test images, normalised by hand
    data = build_longtail("fashion-mnist", root=trained.config.data.root, imbalance_ratio=10, heldout_per_class=2)
    model = create_model("resnet32", num_classes=10, in_channels=1)
    model.load_state_dict(torch.load(trained.checkpoint, weights_only=True)["model"])
    model.eval()
    with torch.no_grad():
        f, z = model(((data.test.images.double() / 255 - 0.2860) / 0.3530).float())
    torch.testing.assert_close(logits, z, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(features, f, rtol=1e-4, atol=1e-4)
    assert torch.equal(labels, data.test.labels)
    # the training run's own last evaluation is what the reloaded model predicts
    per_class = [float((logits.argmax(1)[labels == c] == c).double().mean()) for c in range(10)]
    assert per_class == pytest.approx(results["per_class"])
    held_f, _, held_y = trained.outputs("heldout")
    assert held_f.shape == (20, features.shape[1]) and torch.equal(held_y, data.heldout.labels)


def test_a_run_whose_data_changed_is_a_one_line_error(trained_run, capsys):
    text = (trained_run / "config.yaml").read_text()
    (trained_run / "config.yaml").write_text(text.replace("imbalance_ratio: 10", "imbalance_ratio: 5"))
    with pytest.raises(DataError, match="is not what .*ckpt-0002.pt was trained on"):
        Run.load_trained(trained_run)
    assert main(["eval", str(trained_run)]) == 2
    err = capsys.readouterr().err.strip()
    assert "point data.root at the files the run used" in err and len(err.splitlines()) == 1


def test_missing_run_or_checkpoint_is_a_one_line_error(tmp_path):
    with pytest.raises(Exception, match="does not exist"):
        Run.load_trained(tmp_path / "missing")
    with pytest.raises(Exception, match="no checkpoints/ckpt"):
        Run.load_trained(tmp_path)


def _parts(config):
    from longtail.engine.data import TrainData
    from longtail.engine.distributed import DistInfo
    from longtail.engine.optim import build_optimizer
    from longtail.engine.trainer import build_loss, build_model

    data = TrainData(config, DistInfo(), torch.device("cpu"))
    model = build_model(config, data)
    loss_fn, _ = build_loss(config, data.class_counts)
    optimizer = build_optimizer(config.optim, model)
    return Checkpointer("unused", 1, config=config, model=model, optimizer=optimizer, loss_fn=loss_fn, data=data)


def _assert_equal(a, b, path="state"):
    assert type(a) is type(b), path
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            _assert_equal(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_equal(x, y, f"{path}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), path
    else:
        assert a == b, path


def test_checkpointer_state_round_trips_and_resumes_mid_epoch(write_config):
    """state_dict → load_state_dict (fresh parts) → state_dict is the same, the sampler position and the
    augmentation generator included; the restored loader yields the batches the original yields next."""
    config = load_config(write_config(), ["sampler.name=class-balanced", "rebalance.name=drw",
                                          "rebalance.params.start_epoch=1"])
    source = _parts(config)
    loader = source.data.train_loader(("class-balanced", {}), 1)
    batches = iter(loader)
    model, opt = source.model, source.optimizer
    for _ in range(2):  # two training steps: optimiser moments, sampler position and augmentation RNG move
        x, y = next(batches)
        opt.zero_grad()
        source.loss_fn(model(x)[1], y).backward()
        opt.step()
    source.loss_fn.set_class_weights(torch.linspace(0.5, 2.0, 10))
    source.progress.epoch, source.progress.best, source.progress.seconds = 1, {"top1": 0.25, "epoch": 1}, 3.5
    state = source.state_dict()
    assert state["sampler"] == {"name": "class-balanced", "params": {}, "epoch": 1, "position": 2}
    assert state["augment"]["generator"].dtype == torch.uint8

    target = _parts(config)
    target.load_state_dict(state)
    _assert_equal(target.state_dict(), state)
    restored = iter(target.data.loader)  # the loader the state restored
    for (x, y), (rx, ry) in zip(batches, restored, strict=True):
        assert torch.equal(x, rx) and torch.equal(y, ry)


def test_checkpointer_refuses_another_training_subset(write_config):
    source = _parts(load_config(write_config()))
    state = source.state_dict()
    other = _parts(load_config(write_config(), ["data.imbalance_ratio=5"]))
    with pytest.raises(Exception, match="the data changed"):
        other.load_state_dict(state)
    cosine = _parts(load_config(write_config(), ["optim.schedule=cosine"]))
    with pytest.raises(ConfigError, match="optim.schedule=multistep but the config says cosine"):
        cosine.load_state_dict(state)
