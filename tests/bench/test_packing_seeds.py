"""benchmarks/packing_seeds.py: the packed-vs-solo verdict over seeds, checked against the formula."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from _testload import load_file

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "packing_seeds.py"


@pytest.fixture(scope="module")
def packing_seeds():
    return load_file(SCRIPT)


def _runs(values):
    return {seed: {m: v for m in ("balanced_accuracy", "top1", "many", "medium", "few", "train_acc")}
            for seed, v in enumerate(values)}


def test_verdict_is_two_standard_errors_of_the_difference(packing_seeds):
    solo, packed = [0.60, 0.64, 0.62], [0.66, 0.70, 0.65]
    result = packing_seeds.compare(_runs(solo), _runs(packed))["balanced_accuracy"]
    mean_s, mean_p = sum(solo) / 3, sum(packed) / 3
    sd_s = math.sqrt(sum((v - mean_s) ** 2 for v in solo) / 2)
    sd_p = math.sqrt(sum((v - mean_p) ** 2 for v in packed) / 2)
    bound = 2 * math.sqrt(sd_s**2 / 3 + sd_p**2 / 3)
    assert result["difference"] == pytest.approx(mean_p - mean_s, abs=1e-12)
    assert result["two_se"] == pytest.approx(bound, abs=1e-12)
    assert result["indistinguishable"] is (abs(mean_p - mean_s) <= bound)
    assert result["indistinguishable"] is False  # 0.05 apart with stds of 0.02-0.03: a real difference
    assert result["max_same_seed_gap"] == pytest.approx(0.06)


def test_same_numbers_are_indistinguishable_and_one_seed_is_no_verdict(packing_seeds):
    same = packing_seeds.compare(_runs([0.5, 0.6, 0.7]), _runs([0.5, 0.6, 0.7]))
    assert all(r["indistinguishable"] is True and r["difference"] == 0 for r in same.values())
    one = packing_seeds.compare(_runs([0.5]), _runs([0.9]))
    assert all(r["indistinguishable"] is None for r in one.values())


def test_overrides_need_a_config_flag_not_a_positional(packing_seeds, capsys):
    with pytest.raises(SystemExit):
        packing_seeds.main(["configs/x.yaml"])
    assert "--config" in capsys.readouterr().err
