"""analyze_outputs → analysis.json, PNGs and a self-contained report.html."""

from __future__ import annotations

import base64
import json
import re

import pytest
import torch
from analysis_synthetic import COUNTS, synthetic_outputs, synthetic_run

from longtail.analysis import decision_value_matrix, feature_deviation
from longtail.analysis.collect import MAX_MATRIX_CLASSES, Outputs, analyze_outputs, tsne_classes
from longtail.analysis.report import findings, spearman, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_analyze_outputs_numbers_match_the_functions():
    train, test, weight = synthetic_outputs(0)
    run = synthetic_run("erm", 0)
    assert run["class_counts"] == COUNTS and run["test_counts"] == [12] * 5
    assert run["feature_deviation"] == feature_deviation(
        train.features, train.labels, test.features, test.labels, num_classes=5, rounds=20, seed=0
    )
    torch.testing.assert_close(
        torch.tensor(run["decision_values"]["test"], dtype=torch.float64),
        decision_value_matrix(test.features, test.labels, weight),
    )
    conf = torch.tensor(run["confusion"]["test"])
    assert conf.sum() == 60 and conf.sum(1).tolist() == [12] * 5
    correct = int((test.logits.argmax(1) == test.labels).sum())
    assert run["summary"]["test_top1"] == pytest.approx(correct / 60)
    assert run["deviation_K"] == 4
    dv = torch.tensor(run["decision_values"]["train"])
    assert run["decision_diagonal"]["train"] == pytest.approx(dv.diagonal().tolist())
    # The synthetic features deviate more for minor classes and the norms shrink with N_c.
    assert spearman(COUNTS, run["feature_deviation"]) < 0
    assert spearman(COUNTS, run["classifier_norms"]) == pytest.approx(1.0)


def test_spearman_against_hand_values():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ranks x = (1, 2, 3), y = (1, 3, 2): ρ = 1 − 6·Σd²/(n(n²−1)) = 1 − 6·2/24 = 0.5
    assert spearman([1, 2, 3], [5, 9, 7]) == pytest.approx(0.5)
    assert spearman([1, 2, None, 4], [1, 2, 3, None]) is None  # two pairs left
    assert spearman([1, 1, 1], [1, 2, 3]) is None


def test_findings_report_the_paper_trends():
    topics = dict(findings(synthetic_run("erm", 0)))
    assert "grow with class size" in topics["classifier norms"]
    assert "minor classes deviate more" in topics["feature deviation"]


def test_write_report_is_self_contained(tmp_path):
    # Two runs named alike get distinct files.
    runs = [synthetic_run("erm", 0, tsne_per_class=4, epochs=3), synthetic_run("erm", 1)]
    page = write_report(runs, tmp_path)
    names = sorted(p.name for p in tmp_path.glob("*.png"))
    assert names == sorted([
        "class_counts.png", "per_class_accuracy.png", "classifier_norms.png", "feature_deviation.png", "margins.png",
        "decision_diagonal.png",
        "matrices_erm.png", "matrices_erm-1.png", "tsne_erm.png", "epochs_erm.png",
    ])  # fmt: skip
    text = page.read_text(encoding="utf-8")
    images = re.findall(r"<img [^>]*src='([^']*)'", text)
    assert len(images) == len(names)
    for src in images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_MAGIC)
    assert "http" not in text.replace("https://", "")  # nothing fetched from elsewhere
    for caption in ("Figure 3 (d)", "Figure 4", "Figure 7", "Figures 1 (bottom) and 16", "LDAM paper eq. 3"):
        assert caption in text
    data = json.loads((tmp_path / "analysis.json").read_text())
    assert [r["name"] for r in data["runs"]] == ["erm", "erm"]
    assert data["runs"][0]["epochs"]["epoch"] == [1, 2, 3]
    assert data["runs"][0]["feature_deviation"] == runs[0]["feature_deviation"]
    assert "NaN" not in (tmp_path / "analysis.json").read_text()
    # The report can be rebuilt from analysis.json alone.
    again = write_report(data["runs"][1:2], tmp_path / "again")
    assert again.is_file() and (tmp_path / "again" / "matrices_erm.png").is_file()


def test_tsne_classes_spread_over_sizes():
    assert tsne_classes([5, 0, 3]) == [0, 2]
    sizes = list(range(100, 0, -1))  # class c has 100 - c examples
    picked = tsne_classes(sizes, limit=5)
    assert picked == [0, 25, 50, 74, 99]


def test_many_classes_keep_diagonals_not_matrices(tmp_path):
    C = MAX_MATRIX_CLASSES + 1
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(C).repeat(2)
    feats = torch.randn(2 * C, 4, generator=g)
    weight = torch.randn(C, 4, generator=g)
    out = Outputs(feats, feats @ weight.t(), labels)
    run = analyze_outputs("big", out, out, weight, [2] * C, rounds=2, tsne_per_class=1)
    assert run["decision_values"] is None and run["confusion"] is None
    full = decision_value_matrix(feats, labels, weight)
    assert run["decision_diagonal"]["test"] == pytest.approx(full.diagonal().tolist())
    assert len(set(run["tsne"]["labels"])) == 20
    write_report([run], tmp_path)
    assert not list(tmp_path.glob("matrices_*.png")) and (tmp_path / "decision_diagonal.png").is_file()
