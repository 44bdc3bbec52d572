"""Config-time validation: registry names and parameters fail before any data is read or written."""

from __future__ import annotations

import pytest

from longtail.cli import main
from longtail.config import load_config
from longtail.errors import ConfigError


@pytest.fixture
def no_data(monkeypatch):
    """Fail the test if anything reads the data set."""

    def forbidden(*args, **kwargs):
        pytest.fail("the data set was read before the config was validated")

    import longtail.data.build
    import longtail.engine.trainer

    monkeypatch.setattr(longtail.engine.trainer, "build_data", forbidden)
    monkeypatch.setattr(longtail.data.build, "load_split", forbidden)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("loss.params.max_n=0.5", "unknown parameter 'max_n' for loss 'ldam'; did you mean 'max_m'?"),
        ("loss.params.s=-1", "loss 'ldam' parameter s must be > 0, got -1"),
        ("rebalance.params.start=3", "unknown parameter 'start' for schedule 'drw'; did you mean 'start_epoch'?"),
        ("rebalance.params.weights=effective", "schedule 'drw' parameter weights must be one of cb, inverse"),
        ("sampler.name=powr", "unknown sampler 'powr'; did you mean 'power'?"),
        ("model.params.stme=cifar", "unknown parameter 'stme' for model 'resnet32'"),
        ("data.name=fashion-mnsit", "unknown data set 'fashion-mnsit'; did you mean 'fashion-mnist'?"),
    ],
)
def test_bad_component_fails_before_data_and_leaves_no_out(write_config, tmp_path, capsys, no_data, override, message):
    path = write_config(loss={"name": "ldam"}, model={"head": "normed-linear"}, rebalance={"name": "drw"})
    out = tmp_path / "run"
    assert main(["train", str(path), override, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()  # no trace of the failed run


def test_existing_out_is_left_untouched(write_config, tmp_path, capsys, no_data):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    assert main(["train", str(write_config()), "loss.params.gamma=0.3", "--out", str(out), "--overwrite"]) == 2
    assert "unknown parameter 'gamma' for loss 'ce'" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_fit_validates_a_config_changed_in_code(write_config, tmp_path, no_data):
    from longtail.engine.trainer import fit

    config = load_config(write_config())
    config.loss.params = {"gama": 0.1}
    with pytest.raises(ConfigError, match="unknown parameter 'gama' for loss 'ce'"):
        fit(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["loss.name=ldam"], "loss 'ldam' works on cosine logits; set model.head=normed-linear"),
        (["rebalance.name=deferred-cdt"], "loss CrossEntropyLoss has no parameter 'gamma' to set"),
        (["sampler.params.q=0.5"], "unknown parameter 'q' for sampler 'instance'"),  # the schedule's sampler
        (["runtime.device=cuda:99"], "cuda"),
    ],
)
def test_fit_checks_the_engine_choices_before_data(write_config, tmp_path, no_data, overrides, message):
    """What validate cannot see (head, the schedule's samplers and loss parameters, device) is refused
    by `fit` itself — as `tune` and `reproduce` call it — before any data is read or file written."""
    from longtail.engine.trainer import fit

    config = load_config(write_config(), overrides)  # loads: names and parameters are fine
    with pytest.raises(ConfigError, match=message):
        fit(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()
