"""Calibration metrics and temperature scaling against their formulas written out again (float64)."""

from __future__ import annotations

import math

import pytest
import torch

from longtail.metrics.calibration import (
    CalibrationAccumulator,
    brier_score,
    calibration_report,
    expected_calibration_error,
    negative_log_likelihood,
)
from longtail.posthoc.temperature import apply_temperature, fit_temperature


def _sample(n=600, c=7, seed=0, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, c, (n,), generator=g)
    logits = torch.randn(n, c, generator=g, dtype=torch.float64) * scale
    logits[torch.arange(n), labels] += 2.0  # better than chance, over-confident
    return logits, labels


def _ece_by_hand(logits, labels, bins=15):
    """ECE = Σ_b |B_b|/N |acc(B_b) − conf(B_b)|, bins ((b−1)/B, b/B], one loop per bin and example."""
    rows = logits.tolist()
    n = len(rows)
    members = [[] for _ in range(bins)]
    for row, y in zip(rows, labels.tolist()):
        m = max(row)
        exps = [math.exp(v - m) for v in row]
        total = sum(exps)
        p = [e / total for e in exps]
        conf = max(p)
        pred = p.index(conf)
        for b in range(bins):
            if b / bins < conf <= (b + 1) / bins or (b == 0 and conf == 0):
                members[b].append((conf, pred == y))
    ece = 0.0
    for items in members:
        if items:
            acc = sum(ok for _, ok in items) / len(items)
            conf = sum(c for c, _ in items) / len(items)
            ece += len(items) / n * abs(acc - conf)
    return ece


def _nll_by_hand(logits, labels):
    total = 0.0
    for row, y in zip(logits.tolist(), labels.tolist()):
        m = max(row)
        total += -(row[y] - m - math.log(sum(math.exp(v - m) for v in row)))
    return total / len(labels)


def _brier_by_hand(logits, labels):
    total = 0.0
    for row, y in zip(logits.tolist(), labels.tolist()):
        m = max(row)
        exps = [math.exp(v - m) for v in row]
        s = sum(exps)
        total += sum((e / s - (1.0 if c == y else 0.0)) ** 2 for c, e in enumerate(exps))
    return total / len(labels)


@pytest.mark.parametrize("seed,scale", [(0, 3.0), (1, 0.3), (2, 10.0)])
def test_metrics_equal_their_formulas(seed, scale):
    logits, labels = _sample(seed=seed, scale=scale)
    assert expected_calibration_error(logits, labels) == pytest.approx(_ece_by_hand(logits, labels), abs=1e-12)
    assert negative_log_likelihood(logits, labels) == pytest.approx(_nll_by_hand(logits, labels), rel=1e-12)
    assert brier_score(logits, labels) == pytest.approx(_brier_by_hand(logits, labels), rel=1e-12)
    # float32 logits give the same numbers to float32 precision
    assert expected_calibration_error(logits.float(), labels) == pytest.approx(_ece_by_hand(logits, labels), abs=1e-5)


def test_ece_known_values():
    # two examples, confidence 0.9 (correct) and 0.6 (wrong): bins 13 and 8, ECE = (0.1 + 0.6) / 2
    logits = torch.tensor([[math.log(0.9), math.log(0.1)], [math.log(0.6), math.log(0.4)]], dtype=torch.float64)
    labels = torch.tensor([0, 1])
    assert expected_calibration_error(logits, labels) == pytest.approx(0.35, abs=1e-12)
    # a perfectly calibrated bin: confidence 0.75, 3 of 4 correct
    logits = torch.tensor([[math.log(0.75), math.log(0.25)]] * 4, dtype=torch.float64)
    assert expected_calibration_error(logits, torch.tensor([0, 0, 0, 1])) == pytest.approx(0.0, abs=1e-12)
    assert brier_score(logits[:1], torch.tensor([0])) == pytest.approx(0.25**2 * 2)


def test_groups_and_batches_and_reliability_bins():
    logits, labels = _sample(n=900, c=6, seed=3)
    counts = [500, 300, 120, 60, 15, 5]  # many > 100: 0,1,2; few < 20: 4,5; medium: 3
    whole = calibration_report(logits, labels, counts)
    acc = CalibrationAccumulator(6)
    for part in torch.arange(900).split(128):  # batches in another order give the same sums
        acc.update(logits[part.flip(0)].float(), labels[part.flip(0)])
    batched = acc.report({"many": [0, 1, 2], "medium": [3], "few": [4, 5]})
    for name, classes in (("many", [0, 1, 2]), ("medium", [3]), ("few", [4, 5])):
        keep = torch.isin(labels, torch.tensor(classes))
        z, y = logits[keep], labels[keep]
        for report in (whole, batched):
            g = report["groups"][name]
            assert g["num_examples"] == int(keep.sum())
            assert g["ece"] == pytest.approx(_ece_by_hand(z, y), abs=1e-6)
            assert g["nll"] == pytest.approx(_nll_by_hand(z, y), rel=1e-6)
            assert g["brier"] == pytest.approx(_brier_by_hand(z, y), rel=1e-6)
    overall = whole["overall"]
    assert overall["ece"] == pytest.approx(_ece_by_hand(logits, labels), abs=1e-12)
    bins = overall["bins"]
    assert sum(bins["count"]) == 900 and len(bins["count"]) == 15
    p = torch.softmax(logits, 1)
    conf, pred = p.max(1)
    sel = (conf > 10 / 15) & (conf <= 11 / 15)
    assert bins["count"][10] == int(sel.sum())
    assert bins["accuracy"][10] == pytest.approx(float((pred[sel] == labels[sel]).double().mean()))
    assert bins["confidence"][10] == pytest.approx(float(conf[sel].mean()))


def test_empty_group_is_none_not_nan():
    logits, labels = _sample(n=50, c=3)
    report = calibration_report(logits, labels, [500, 400, 300])  # all many-shot
    assert report["groups"]["few"] == {
        "ece": None, "nll": None, "brier": None, "num_examples": 0,
        "bins": {"count": [0] * 15, "confidence": [None] * 15, "accuracy": [None] * 15},
    }


def test_against_torchmetrics_when_installed():
    tm = pytest.importorskip("torchmetrics.functional.classification")
    logits, labels = _sample(seed=5)
    expected = tm.multiclass_calibration_error(torch.softmax(logits, 1).float(), labels, num_classes=7, n_bins=15, norm="l1")
    assert expected_calibration_error(logits, labels) == pytest.approx(float(expected), abs=1e-5)


def _nll_at(logits, labels, t):
    return _nll_by_hand(logits / t, labels)


def _calibrated_then_scaled(n, c, scale, seed):
    """Labels drawn from softmax(z); the model reports scale · z (over-confident for scale > 1)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, c, generator=g, dtype=torch.float64) * 2
    labels = torch.multinomial(torch.softmax(z, 1), 1, generator=g).squeeze(1)
    return z * scale, labels


@pytest.mark.parametrize("scale", [0.3, 3.0, 10.0])
def test_temperature_minimises_the_nll(scale):
    logits, labels = _calibrated_then_scaled(400, 5, scale, seed=7)
    fit = fit_temperature(logits, labels)
    t = fit.temperature
    assert not fit.at_bound
    # the NLL written out: no value on a fine grid around T (nor far from it) is lower
    grid = [t * math.exp(k / 200) for k in range(-100, 101)] + [0.05, 0.2, 1.0, 5.0, 50.0]
    best = min(_nll_at(logits, labels, g) for g in grid)
    assert _nll_at(logits, labels, t) <= best + 1e-12
    # stationary: the numerical derivative of NLL(T) vanishes there
    h = 1e-5 * t
    slope = (_nll_at(logits, labels, t + h) - _nll_at(logits, labels, t - h)) / (2 * h)
    assert abs(slope) < 1e-6
    assert fit.nll_after == pytest.approx(_nll_at(logits, labels, t), rel=1e-12)
    assert fit.nll_before == pytest.approx(_nll_by_hand(logits, labels), rel=1e-12)
    # the data were calibrated before scaling: T recovers the scale (up to sampling noise)
    assert t == pytest.approx(scale, rel=0.25)
    assert torch.equal(apply_temperature(logits, t).argmax(1), logits.argmax(1))


def test_temperature_bounds_and_errors():
    from longtail.errors import DataError

    separable = torch.tensor([[5.0, 0.0], [0.0, 5.0]])
    fit = fit_temperature(separable, torch.tensor([0, 1]))  # NLL keeps falling as T → 0
    assert fit.at_bound and fit.temperature == pytest.approx(1e-2)
    with pytest.raises(DataError, match="non-empty"):
        fit_temperature(torch.zeros(0, 3), torch.zeros(0))
    with pytest.raises(DataError, match="labels"):
        fit_temperature(torch.zeros(4, 3), torch.zeros(3))
    with pytest.raises(DataError, match="> 0"):
        apply_temperature(separable, 0.0)
