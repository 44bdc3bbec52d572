"""The demo's configs (``configs/demo``, run by ``demo.sh``) and the 12-epoch Fashion-MNIST-LT benchmark's
(``configs/fashion-mnist-lt``): they load, say what their headers say, and train through the engine."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from longtail.config import load_config, validate
from longtail.data.profiles import longtail_counts

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "configs" / "demo"
METHODS = ("erm", "ldam-drw", "cdt")


def test_demo_sh_trains_the_demo_configs():
    script = (REPO / "demo.sh").read_text()
    assert '"configs/demo/$method.yaml"' in script
    assert re.search(r"for method in erm ldam-drw cdt; do", script)


@pytest.mark.parametrize("path", sorted(DEMO.glob("*.yaml")) + sorted((REPO / "configs" / "fashion-mnist-lt").rglob("*.yaml")),
                         ids=lambda p: str(p.relative_to(REPO / "configs")))
def test_config_loads_and_validates(path):
    validate(load_config(path))


def test_demo_set_and_groups_are_the_header_s():
    config = load_config(DEMO / "erm.yaml")
    assert (config.data.name, config.data.profile, config.data.imbalance_ratio, config.data.n_max,
            config.data.class_order) == ("fashion-mnist", "exp", 100, 2000, "reversed")
    counts = longtail_counts(10, 2000, 100, profile="exp")
    assert counts == [2000, 1198, 718, 430, 258, 154, 92, 55, 33, 20] and sum(counts) == 4958
    many = [n for n in counts if n > config.eval.many_threshold]
    few = [n for n in counts if n < config.eval.few_threshold]
    assert (len(many), len(counts) - len(many) - len(few), len(few)) == (4, 3, 3)
    assert config.eval.every == 0  # the test set once, after the last epoch
    # the recipe is the 12-epoch benchmark's, unchanged
    bench = load_config(REPO / "configs" / "fashion-mnist-lt" / "erm.yaml")
    assert config.optim == bench.optim and config.train.epochs == bench.train.epochs == 12


def test_demo_methods_differ_only_in_the_method():
    erm, ldam, cdt = (load_config(DEMO / f"{m}.yaml") for m in METHODS)
    assert erm.data == ldam.data == cdt.data and erm.optim == ldam.optim == cdt.optim
    assert (erm.loss.name, ldam.loss.name, cdt.loss.name) == ("ce", "ldam", "cdt")
    assert ldam.model.head == "normed-linear" and ldam.rebalance.name == "drw"
    assert ldam.rebalance.params["start_epoch"] == ldam.optim.milestones[0]  # DRW from the first decay


@pytest.mark.parametrize("method", METHODS)
def test_demo_config_trains_on_tiny_files(method, tiny_root, tmp_path):
    from longtail.engine.trainer import fit

    overrides = [f"data.root={tiny_root}", "data.n_max=30", "data.imbalance_ratio=10", "data.pad=1",
                 "data.heldout_per_class=1", "train.epochs=2", "optim.batch_size=32",
                 "runtime.progress=none", "runtime.num_threads=1"]
    results = fit(load_config(DEMO / f"{method}.yaml", overrides), tmp_path / method)
    assert results["epochs"] == 2 and 0.0 <= results["balanced_accuracy"] <= 1.0
