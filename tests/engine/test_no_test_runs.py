"""Runs trained with ``eval.test=false`` (the generated ``-heldout`` configs, `longtail tune` candidates):
they never read the test set, and every command that consumes them works without test metrics — the
summary over seeds, `compare` ("—"), `eval/predict/export --tau-from` — or says in one line why not
(`eval`, `analyze` and `predict split:test` of the held-out run itself)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from _testload import load_file
from longtail.cli import main


def _conftest():
    return load_file("tests/engine/conftest.py")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Two seeds of a held-out run (K = 2 per class, eval.test=false) and the full-set run of the same recipe."""
    conftest = _conftest()
    base = tmp_path_factory.mktemp("notest")
    root = conftest.write_tiny_fashion_mnist(base / "data")
    path = base / "c.yaml"
    path.write_text(yaml.safe_dump(conftest.tiny_config_dict(root, train={"epochs": 2})))
    held, full = base / "held", base / "full"
    assert main(["train", str(path), "--out", str(held), "--seeds", "0,1", "data.heldout_per_class=2",
                 "eval.test=false"]) == 0
    assert main(["train", str(path), "--out", str(full)]) == 0
    return {"held": held, "full": full, "base": base}


def test_seeds_summary_keeps_the_heldout_means(runs, capsys):
    summary = json.loads((runs["held"] / "summary.json").read_text())
    results = [json.loads((runs["held"] / f"seed-{s}" / "results.json").read_text()) for s in (0, 1)]
    assert all("top1" not in r and r["heldout"]["num_examples"] == 20 for r in results)
    assert summary["note"] == "no test metrics: eval.test=false"
    assert all(v is None for v in summary["mean"].values()) and all(v is None for v in summary["std"].values())
    values = [r["heldout"]["balanced_accuracy"] for r in results]
    assert summary["heldout"]["mean"]["balanced_accuracy"] == pytest.approx(sum(values) / 2)
    assert summary["heldout"]["std"]["balanced_accuracy"] == pytest.approx(abs(values[0] - values[1]) / 2 ** 0.5)
    assert summary["heldout"]["runs"]["1"]["top1"] == results[1]["heldout"]["top1"]
    # a full-set summary has neither key
    from longtail.engine.summary import format_table, summarize

    full = json.loads((runs["full"] / "results.json").read_text())
    assert "heldout" not in summarize({0: full}) and "note" not in summarize({0: full})
    assert format_table(summary).splitlines()[0] == "held-out split (no test metrics: eval.test=false)"


def test_compare_shows_a_dash_for_runs_without_test_metrics(runs, capsys):
    held, full = runs["held"], runs["full"]
    capsys.readouterr()
    assert main(["compare", str(full), str(held), str(held / "seed-0")]) == 0
    lines = capsys.readouterr().out.splitlines()
    by_run = {line.split()[0]: line.split()[1:] for line in lines[2:5]}
    full_results = json.loads((full / "results.json").read_text())
    assert by_run["full"][0] == f"{100 * full_results['balanced_accuracy']:.2f}"
    assert by_run["held"] == ["—"] * 5 and by_run["seed-0"] == ["—"] * 5
    assert lines[-1].startswith("— held, seed-0: no test metrics: eval.test=false (a -heldout run")
    assert main(["compare", "--json", str(full), str(held / "seed-1")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["seed-1"] == {"mean": None, "std": None, "note": "no test metrics: eval.test=false"}
    assert doc["full"]["mean"]["top1"] == full_results["top1"]
    # nothing to compare at all: one line, exit 2
    assert main(["compare", str(held), str(held / "seed-0")]) == 2
    assert "no test metrics to compare (eval.test=false" in capsys.readouterr().err


def test_tau_from_a_run_without_test_metrics(runs, capsys):
    """eval / predict / export of the full run with τ chosen on the held-out run's split."""
    held, full, base = runs["held"] / "seed-0", runs["full"], runs["base"]
    assert main(["eval", str(full), "--posthoc", "nc-tau", "--tau-from", str(held)]) == 0
    saved = json.loads((full / "eval-nc-tau.json").read_text())
    assert saved["tuning"]["run"] == str(held) and saved["num_test"] == 60 and 0 <= saved["top1"] <= 1
    out = base / "preds.jsonl"
    assert main(["predict", str(full), "split:test", "--posthoc", "nc-tau", "--tau-from", str(held),
                 "--out", str(out)]) == 0
    meta = json.loads(out.read_text().splitlines()[0])["meta"]
    assert meta["param"] == saved["param"] and meta["tau_from"] == str(held)
    assert main(["export", str(full), "--posthoc", "nc-tau", "--tau-from", str(held), "--out", str(base / "m.pt")]) == 0
    assert json.loads((base / "m.json").read_text())["decision"]["param"] == saved["param"]
    # the held-out run's own held-out split still serves predict and export
    assert main(["predict", str(held), "split:heldout", "--posthoc", "nc-tau", "--tune", "heldout",
                 "--out", str(base / "held.jsonl")]) == 0
    capsys.readouterr()


def test_test_set_uses_of_the_heldout_run_are_one_line_errors(runs, capsys):
    held, base = runs["held"] / "seed-0", runs["base"]
    capsys.readouterr()
    assert main(["eval", str(held), "--posthoc", "nc-tau", "--tune", "heldout"]) == 2
    err = capsys.readouterr().err
    assert "trained with eval.test=false" in err and f"--tau-from {held}" in err and len(err.splitlines()) == 1
    assert not (held / "eval-nc-tau.json").exists()
    assert main(["analyze", str(held), "--no-tsne"]) == 2
    err = capsys.readouterr().err
    assert "trained with eval.test=false" in err and "analyse the run trained on the full set" in err
    out = base / "test.jsonl"
    assert main(["predict", str(held), "split:test", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "trained with eval.test=false" in err and "split:heldout" in err
    assert not list(base.glob("test.jsonl*"))  # refused before anything is written


def test_file_transform_without_a_test_split():
    """A run trained with eval.test=false has no test split loaded: predict's per-image transform comes
    from its (always loaded) training split, which has the same evaluation transform."""
    from longtail.inference.predict import file_transform

    def run(mode: str) -> SimpleNamespace:
        return SimpleNamespace(data=SimpleNamespace(test=None, train_eval=SimpleNamespace(transform=mode)),
                               image_size=32, mean=[0.5] * 3, std=[0.25] * 3, channels=3)

    assert file_transform(run("resize-crop")).mode == "random-resized-crop"
    assert file_transform(run("pad-crop")).mode == "pad-crop"


def test_run_labels_are_the_shortest_unique_suffixes():
    from longtail.engine.summary import run_labels

    assert run_labels(["runs/a/seed-0", "runs/b/seed-0", "c"]) == ["a/seed-0", "b/seed-0", "c"]
    assert run_labels(["x/erm/seed-0", "y/erm/seed-0/"]) == ["x/erm/seed-0", "y/erm/seed-0"]
    assert run_labels(["full", "full"]) == ["full", "full (2)"]
    assert run_labels(["a/b", "b"]) == ["a/b", "b"]


def test_compare_keeps_two_runs_with_the_same_last_name(runs, capsys):
    """`compare a/seed-0 b/seed-0` used to merge both into one row named seed-0."""
    import shutil

    full = runs["full"]
    twin = runs["base"] / "other" / "full"
    shutil.copytree(full, twin, dirs_exist_ok=True)
    capsys.readouterr()
    assert main(["compare", "--json", str(full), str(twin)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert sorted(doc) == sorted([f"{runs['base'].name}/full", "other/full"])
    assert main(["compare", str(full), str(twin)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 5  # header, rule, two runs, footnote
