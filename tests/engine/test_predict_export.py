"""`longtail predict` and `longtail export` on a tiny run, against the decision recomputed by hand."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from longtail.cli import main
from longtail.config import load_config
from longtail.engine.checkpoint import latest_checkpoint
from longtail.engine.trainer import fit

MEAN, STD = 0.2860, 0.3530  # Fashion-MNIST


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A run with a held-out split (LDAM, normed head) and the same recipe on the full training set."""
    from _testload import load_file

    conftest = load_file("tests/engine/conftest.py")
    base = tmp_path_factory.mktemp("predict")
    root = conftest.write_tiny_fashion_mnist(base / "data")
    import yaml

    path = base / "c.yaml"
    path.write_text(yaml.safe_dump(conftest.tiny_config_dict(root)))
    common = ["train.epochs=3", "model.head=normed-linear", "loss.name=ldam"]
    fit(load_config(path, common + ["data.heldout_per_class=2"]), base / "heldout-run")
    fit(load_config(path, common), base / "full-run")
    return {"heldout": base / "heldout-run", "full": base / "full-run", "root": root, "base": base}


def _model(run):
    from longtail.models import create_model

    model = create_model("resnet32", num_classes=10, in_channels=1, head="normed-linear")
    model.load_state_dict(torch.load(latest_checkpoint(run / "checkpoints"), weights_only=True)["model"])
    return model.eval()


def _data(runs, heldout):
    from longtail.data import build_longtail

    return build_longtail("fashion-mnist", root=str(runs["root"]), imbalance_ratio=10, heldout_per_class=heldout)


def _outputs(model, images_u8):
    with torch.no_grad():
        f, z = model(((images_u8.double() / 255 - MEAN) / STD).float())
    return f, z


def _write_pngs(folder, images, count):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        p = folder / f"img{i:02d}.png"
        Image.fromarray(images[i, 0].numpy(), mode="L").save(p)
        paths.append(p)
    return paths


def test_predict_folder_with_a_corrupt_image(runs, tmp_path, capsys):
    run = runs["heldout"]
    data = _data(runs, 2)
    folder = tmp_path / "images"
    _write_pngs(folder / "sub", data.test.images, 12)
    (folder / "broken.png").write_bytes(b"this is not a png")
    (folder / "notes.txt").write_text("ignored")
    out = tmp_path / "pred.csv"
    status = main(["predict", str(run), str(folder), "--out", str(out), "--top-k", "3", "--posthoc", "nc-tau",
                   "--param", "0.5", "--temperature", "heldout", "--progress", "none"])  # fmt: skip
    captured = capsys.readouterr()
    assert status == 3
    assert "skipped" in captured.err and "broken.png" in captured.err
    assert "skipped 1 unreadable image(s) of 13" in captured.out
    rows = list(csv.DictReader(out.open()))
    meta = json.loads((tmp_path / "pred.meta.json").read_text())
    assert len(rows) == 12 and meta["written"] == 12
    assert [s["path"] for s in meta["skipped"]] == [str(folder / "broken.png")]
    assert meta["posthoc"] == "nc-tau" and meta["param"] == 0.5 and meta["param_source"] == "given"
    t = meta["temperature"]["value"]

    # by hand: cosine logits / n_c^0.5, / T, softmax; T minimises the held-out NLL of those scores
    model = _model(run)
    counts = torch.tensor(data.class_counts, dtype=torch.float64)
    _, zh = _outputs(model, data.heldout.images)
    held = zh.double() / counts**0.5
    yh = data.heldout.labels

    def nll(temp):
        return float(-torch.log_softmax(held / temp, 1)[torch.arange(len(yh)), yh].mean())

    assert all(nll(t) <= nll(t * f) + 1e-9 for f in (0.95, 0.99, 1.01, 1.05))
    _, z = _outputs(model, data.test.images[:12])
    probs = torch.softmax(z.double() / counts**0.5 / t, 1)
    for i, row in enumerate(rows):
        assert row["path"] == str(folder / "sub" / f"img{i:02d}.png") and row["label"] == ""
        top = probs[i].topk(3)
        assert [row[f"class{j}"] for j in (1, 2, 3)] == [data.train.classes[c] for c in top.indices.tolist()]
        assert [float(row[f"prob{j}"]) for j in (1, 2, 3)] == pytest.approx(top.values.tolist(), abs=1e-5)


def test_predict_split_and_list_file(runs, tmp_path, capsys):
    run = runs["heldout"]
    data = _data(runs, 2)
    out = tmp_path / "test.jsonl"
    assert main(["predict", str(run), "split:test", "--out", str(out), "--progress", "none"]) == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    meta, rows = lines[0]["meta"], lines[1:]
    assert meta["input_kind"] == "split" and meta["temperature"] is None and len(rows) == 60
    _, z = _outputs(_model(run), data.test.images)
    pred = z.argmax(1)
    assert [r["top"][0]["index"] for r in rows] == pred.tolist()
    assert meta["top1_accuracy"] == pytest.approx(float((pred == data.test.labels).double().mean()))
    assert rows[0]["label"] == data.train.classes[int(data.test.labels[0])] and rows[0]["path"] == "test/0"

    # a list file: labels as names or indices, one missing file (skipped, exit 3)
    paths = _write_pngs(tmp_path / "lst", data.test.images, 3)
    labels = data.test.labels[:3].tolist()
    listing = tmp_path / "lst" / "val.txt"
    listing.write_text(f"# comment\n{paths[0].name} {data.train.classes[labels[0]]}\n{paths[1].name} {labels[1]}\n"
                       f"{paths[2].name}\nmissing.png 0\n")  # fmt: skip
    out = tmp_path / "list.jsonl"
    assert main(["predict", str(run), str(listing), "--out", str(out), "--progress", "none"]) == 3
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["label"] for r in lines[1:]] == [data.train.classes[labels[0]], data.train.classes[labels[1]], None]
    assert [r["top"][0]["index"] for r in lines[1:]] == pred[:3].tolist()
    assert lines[0]["meta"]["skipped"][0]["path"].endswith("missing.png")
    listing.write_text(f"{paths[0].name} not-a-class\n")
    assert main(["predict", str(run), str(listing), "--out", str(out)]) == 2
    assert f"{listing} line 1: label 'not-a-class'" in capsys.readouterr().err
    assert main(["predict", str(run), "split:val", "--out", str(out)]) == 2
    assert main(["predict", str(run), "split:test", "--out", str(tmp_path / "x.txt")]) == 2


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_predict_failing_mid_way_keeps_the_old_output_and_leaves_no_temp_files(runs, tmp_path, monkeypatch, suffix):
    import longtail.inference.predict as predict_module

    run, out = runs["heldout"], tmp_path / f"p{suffix}"
    assert main(["predict", str(run), "split:test", "--out", str(out), "--progress", "none"]) == 0
    before = out.read_bytes()
    real, calls = predict_module.top_k, []

    def failing(probs, k):
        calls.append(1)
        if len(calls) == 2:  # after the first batch's rows were written to the temp file
            raise RuntimeError("disk full")
        return real(probs, k)

    monkeypatch.setattr(predict_module, "top_k", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        main(["predict", str(run), "split:test", "--out", str(out), "--progress", "none", "--batch-size", "16"])
    assert len(calls) == 2 and out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name] + ([out.stem + ".meta.json"]
                                                                             if suffix == ".csv" else []))


def test_predict_csv_list_with_the_data_sets_reader(runs, tmp_path, capsys):
    """A CSV INPUT (path column, optional label column) is read as the data sets read CSV files:
    paths relative to --root, labels a class name or an index, an empty label cell unlabelled."""
    run = runs["heldout"]
    data = _data(runs, 2)
    _, z = _outputs(_model(run), data.test.images[:3])
    paths = _write_pngs(tmp_path / "imgs", data.test.images, 3)
    labels = data.test.labels[:3].tolist()
    listing = tmp_path / "lists" / "val.csv"
    listing.parent.mkdir()
    listing.write_text(f"label,path\n{data.train.classes[labels[0]]},{paths[0].name}\n{labels[1]},{paths[1].name}\n"
                       f",{paths[2].name}\n")  # fmt: skip
    out = tmp_path / "csv.csv"
    assert main(["predict", str(run), str(listing), "--root", str(tmp_path / "imgs"), "--out", str(out),
                 "--progress", "none"]) == 0  # fmt: skip
    rows = list(csv.DictReader(out.open()))
    assert [r["path"] for r in rows] == [str(p) for p in paths]
    assert [r["label"] for r in rows] == [data.train.classes[labels[0]], data.train.classes[labels[1]], ""]
    assert [r["class1"] for r in rows] == [data.train.classes[c] for c in z.argmax(1).tolist()]
    meta = json.loads(out.with_suffix(".meta.json").read_text())
    assert meta["input_kind"] == "list" and meta["written"] == 3
    assert "top-1 accuracy on the 2 labelled inputs" in capsys.readouterr().out
    listing.write_text("path,label\nimg00.png,3\nimg01.png,99\n")
    assert main(["predict", str(run), str(listing), "--out", str(out)]) == 2
    assert f"{listing} line 3: label 99 outside the class range 0..9" in capsys.readouterr().err


def test_tau_and_temperature_from_the_heldout_run_never_read_the_test_split(runs, tmp_path, monkeypatch):
    from longtail.inference import decision as decision_module
    from longtail.inference.loading import TrainedRun, load_trained_run
    from longtail.posthoc import tune
    from longtail.posthoc.temperature import fit_temperature

    requested = []
    original = TrainedRun.outputs

    def spy(self, split, batch_size=128):
        requested.append((self.run_dir.name, split))
        return original(self, split, batch_size)

    monkeypatch.setattr(TrainedRun, "outputs", spy)
    full, held = load_trained_run(runs["full"]), load_trained_run(runs["heldout"])
    decision = decision_module.build_decision(full, "logit-adjust", tau_from=held, temperature="heldout",
                                              grid=[0.0, 0.5, 1.0, 1.5])  # fmt: skip
    assert all(split != "test" for _, split in requested)  # fitting reads training and held-out splits only
    assert ("heldout-run", "heldout") in requested and ("full-run", "heldout") not in requested

    # τ: the tuning of the held-out run; T: NLL on its held-out split of its own logit-adjusted scores
    hf, hz, hy = held.outputs("heldout")
    tf, _, ty = held.outputs("train")
    tau, _ = tune("logit-adjust", [0.0, 0.5, 1.0, 1.5], tf, ty, held.model.head, held.class_counts, hf, hy)
    assert decision.metadata["param"] == tau and "--tau-from" in decision.metadata["param_source"]
    prior = torch.tensor(held.class_counts, dtype=torch.float64)
    scores = hz.double() - tau * torch.log(prior / prior.sum())
    assert decision.temperature == pytest.approx(fit_temperature(scores, hy).temperature, rel=1e-6)
    assert "heldout-run" in decision.metadata["temperature"]["source"]
    # applied to the full run: its own training counts in the prior
    f, z, _ = full.outputs("test")
    full_prior = torch.tensor(full.class_counts, dtype=torch.float64)
    expected = (z.double() - tau * torch.log(full_prior / full_prior.sum())) / decision.temperature
    torch.testing.assert_close(decision.scores(f, z).double(), expected, rtol=1e-5, atol=1e-5)

    # without a held-out split and without --tau-from, T cannot be fitted: a one-line error
    from longtail.errors import ConfigError

    with pytest.raises(ConfigError, match="no held-out split to fit T on"):
        decision_module.build_decision(full, temperature="heldout")


EXPORT_CHECK = textwrap.dedent(
    """
    import importlib.abc, json, sys

    class NoLongtail(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "longtail" or name.startswith("longtail."):
                raise ImportError("longtail must not be imported")

    sys.meta_path.insert(0, NoLongtail())
    import numpy as np, torch
    from PIL import Image

    model_path, images = sys.argv[1], sys.argv[2:]
    side = json.load(open(model_path.rsplit(".", 1)[0] + ".json"))
    model = torch.jit.load(model_path)
    mean = torch.tensor(side["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(side["std"]).view(1, -1, 1, 1)
    arrays = [np.asarray(Image.open(p).convert("L" if side["channels"] == 1 else "RGB"), dtype=np.uint8) for p in images]
    u8 = torch.from_numpy(np.stack(arrays))
    u8 = u8[:, None] if u8.dim() == 3 else u8.permute(0, 3, 1, 2)
    x = (u8.float() / 255 - mean) / std
    with torch.no_grad():
        probs = torch.softmax(model(x), 1)
    assert not any(m == "longtail" or m.startswith("longtail.") for m in sys.modules)
    print(json.dumps({"probs": probs.tolist(), "temperature": float(model.temperature), "classes": side["classes"]}))
    """
)


def test_export_round_trip_without_longtail(runs, tmp_path):
    run = runs["heldout"]
    data = _data(runs, 2)
    paths = _write_pngs(tmp_path / "img", data.test.images, 7)
    flags = ["--posthoc", "tau-norm", "--tune", "heldout", "--temperature", "heldout"]
    model_file = tmp_path / "export" / "model.pt"
    assert main(["export", str(run), "--out", str(model_file), *flags]) == 0
    side = json.loads((tmp_path / "export" / "model.json").read_text())
    assert side["classes"] == data.train.classes and side["image_size"] == 8 and side["channels"] == 1
    assert side["mean"] == pytest.approx([MEAN]) and side["std"] == pytest.approx([STD])
    preds = tmp_path / "p.jsonl"
    assert main(["predict", str(run), str(tmp_path / "img"), "--out", str(preds), "--top-k", "10",
                 "--progress", "none", *flags]) == 0  # fmt: skip
    lines = [json.loads(x) for x in preds.read_text().splitlines()]
    meta = lines[0]["meta"]
    assert side["decision"]["param"] == meta["param"] and side["temperature"] == meta["temperature"]["value"]

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    script = tmp_path / "check.py"
    script.write_text(EXPORT_CHECK)
    done = subprocess.run([sys.executable, str(script), str(model_file), *map(str, paths)], env=env,
                          capture_output=True, text=True, check=True, cwd=tmp_path)  # fmt: skip
    exported = json.loads(done.stdout)
    assert exported["temperature"] == pytest.approx(meta["temperature"]["value"])
    for row, probs in zip(lines[1:], exported["probs"]):
        by_class = {t["index"]: t["prob"] for t in row["top"]}
        assert [by_class[c] for c in range(10)] == pytest.approx(probs, abs=1e-6)
        assert row["top"][0]["index"] == int(np.argmax(probs))


def test_export_errors(runs, tmp_path, capsys):
    run = runs["heldout"]
    assert main(["export", str(run), "--out", str(tmp_path / "m.json")]) == 2
    assert "suffix other than .json" in capsys.readouterr().err
    try:
        import onnx  # noqa: F401
    except ImportError:
        assert main(["export", str(run), "--out", str(tmp_path / "m.onnx"), "--format", "onnx"]) == 2
        assert "needs the onnx package" in capsys.readouterr().err
    else:
        from onnx.reference import ReferenceEvaluator

        flags = ["--posthoc", "nc-tau", "--param", "0.5", "--temperature", "2"]
        assert main(["export", str(run), "--out", str(tmp_path / "m.onnx"), "--format", "onnx", *flags]) == 0
        assert main(["export", str(run), "--out", str(tmp_path / "m.pt"), *flags]) == 0
        x = torch.randn(3, 1, 8, 8)
        (onnx_out,) = ReferenceEvaluator(str(tmp_path / "m.onnx")).run(None, {"x": x.numpy()})
        with torch.no_grad():
            script_out = torch.jit.load(str(tmp_path / "m.pt"))(x)
        np.testing.assert_allclose(onnx_out, script_out.numpy(), rtol=1e-4, atol=1e-5)


def _without_test_files(runs, run, dest, repoint):
    """A copy of ``run`` whose data.root holds the training files only: loading its test split would fail."""
    root = dest.parent / f"{dest.name}-train-only"
    root.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        shutil.copy(runs["root"] / name, root / name)
    return repoint(run, root, dest)


def _three_commands(run, flags, tmp_path, tag):
    """τ, T and their sources as `eval`, `predict` and `export` report them for ``run`` with ``flags``."""
    assert main(["eval", str(run), *flags]) == 0
    evaluated = json.loads((run / "eval-logit-adjust.json").read_text())
    out = tmp_path / f"{tag}.jsonl"
    assert main(["predict", str(run), "split:test", "--out", str(out), "--progress", "none", *flags]) == 0
    meta = json.loads(out.read_text().splitlines()[0])["meta"]
    assert main(["export", str(run), "--out", str(tmp_path / f"{tag}.pt"), *flags]) == 0
    side = json.loads((tmp_path / f"{tag}.json").read_text())
    return [
        {"param": evaluated["param"], "T": evaluated["temperature"]["value"], "t_run": evaluated["temperature"]["run"],
         "table": evaluated["tuning"]["table"], "param_source": evaluated["param_source"]},
        {"param": meta["param"], "T": meta["temperature"]["value"], "t_run": meta["temperature"]["run"],
         "table": meta["tuning"]["table"], "param_source": meta["param_source"]},
        {"param": side["decision"]["param"], "T": side["temperature"], "t_run": side["decision"]["temperature"]["run"],
         "table": side["decision"]["tuning"]["table"], "param_source": side["decision"]["param_source"]},
    ]  # fmt: skip


def _logit_adjust_choice(model, data, grid):
    """τ of logit adjustment and T, written out in float64 on ``data``'s held-out split with ``model``:
    τ = argmax over the grid of the mean per-class accuracy of argmax_c z_c − τ log π_c (ties: closest to 0,
    then smaller); T = argmin NLL of softmax((z − τ log π) / T), checked as a local minimum by the caller."""
    _, zh = _outputs(model, data.heldout.images)
    yh = data.heldout.labels
    prior = torch.tensor(data.class_counts, dtype=torch.float64)
    log_prior = torch.log(prior / prior.sum())

    def balanced(pred):
        present = yh.unique()
        return sum(float((pred[yh == c] == c).double().mean()) for c in present) / len(present)

    table = {tau: balanced((zh.double() - tau * log_prior).argmax(1)) for tau in grid}
    best = max(table.values())
    tau = min((t for t, v in table.items() if abs(v - best) <= 1e-12), key=lambda t: (abs(t), t))
    scores = zh.double() - tau * log_prior

    def nll(temp):
        return float(-torch.log_softmax(scores / temp, 1)[torch.arange(len(yh)), yh].mean())

    return tau, list(table.values()), nll


def test_eval_predict_export_choose_the_same_tau_and_t_on_the_heldout_run(runs, tmp_path, monkeypatch, repoint):
    """`eval`/`predict`/`export FULL --posthoc logit-adjust --tau-from HELDOUT_RUN --temperature heldout`: the
    same τ and T, both chosen on HELDOUT_RUN's held-out split with its model (written out here in float64),
    and HELDOUT_RUN's test split is never loaded (its data root has no test files) nor read."""
    from longtail.engine.run import Run, TrainedRun
    from longtail.errors import DataError

    held = _without_test_files(runs, runs["heldout"], tmp_path / "held", repoint)
    with pytest.raises(DataError):  # the copy cannot load a test split
        Run.load_trained(held, with_test=True)
    requested = []
    original = TrainedRun.outputs

    def spy(self, split, batch_size=None):
        requested.append((self.run.root.name, split if isinstance(split, str) else "other"))
        return original(self, split, batch_size)

    monkeypatch.setattr(TrainedRun, "outputs", spy)
    grid = [0.0, 0.5, 1.0, 1.5]
    flags = ["--posthoc", "logit-adjust", "--tau-from", str(held), "--temperature", "heldout",
             "--grid", ",".join(map(str, grid))]  # fmt: skip
    reported = _three_commands(runs["full"], flags, tmp_path, "full")
    assert reported[0] == reported[1] == reported[2]  # exactly: one builder, HELDOUT_RUN in fp32 for all three
    assert ("held", "test") not in requested and ("held", "heldout") in requested
    assert all(r["t_run"] == str(held) and str(held) in r["param_source"] for r in reported)

    tau, table, nll = _logit_adjust_choice(_model(runs["heldout"]), _data(runs, 2), grid)
    assert len(set(table)) > 1  # the held-out score depends on τ: the choice is exercised
    assert reported[0]["param"] == tau
    assert [row["balanced_accuracy"] for row in reported[0]["table"]] == pytest.approx(table)
    t = reported[0]["T"]
    assert all(nll(t) <= nll(t * f) + 1e-9 for f in (0.95, 0.99, 1.01, 1.05))


def test_tau_from_chooses_t_on_heldout_run_even_when_run_has_its_own(runs, tmp_path):
    """RUN with a held-out split of its own and `--tau-from HELDOUT_RUN`: τ and T both come from HELDOUT_RUN
    (one split chooses everything), in the three commands; without `--tau-from`, T is RUN's own."""
    held3 = tmp_path / "held3"
    fit(load_config(runs["base"] / "c.yaml", ["train.epochs=2", "model.head=normed-linear", "loss.name=ldam",
                                              "data.heldout_per_class=3"]), held3)  # fmt: skip
    run = tmp_path / "run"
    shutil.copytree(runs["heldout"], run)
    grid = [0.0, 0.5, 1.0]
    flags = ["--posthoc", "logit-adjust", "--grid", "0,0.5,1", "--temperature", "heldout"]
    reported = _three_commands(run, [*flags, "--tau-from", str(held3)], tmp_path, "tau-from")
    assert reported[0] == reported[1] == reported[2]
    assert reported[0]["t_run"] == str(held3)
    tau, _, nll = _logit_adjust_choice(_model(held3), _data(runs, 3), grid)
    assert reported[0]["param"] == tau
    assert all(nll(reported[0]["T"]) <= nll(reported[0]["T"] * f) + 1e-9 for f in (0.95, 0.99, 1.01, 1.05))
    own = _three_commands(run, [*flags, "--tune", "heldout"], tmp_path, "own")
    assert {r["t_run"] for r in own} == {str(run)} and own[0] == own[1] == own[2]
    assert own[0]["T"] != reported[0]["T"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--tau-from", "HELD"], "chooses nothing"),
        (["--posthoc", "ncm", "--tau-from", "HELD"], "has no parameter"),
        (["--posthoc", "ncm", "--tune", "heldout"], "has no parameter"),
        (["--posthoc", "nc-tau", "--param", "1", "--grid", "0,1"], "--grid is searched only with"),
        (["--grid", "0,1"], "need a rule"),
        (["--posthoc", "nc-tau", "--grid", "0,x", "--tune", "heldout"], "comma-separated numbers"),
        (["--posthoc", "nc-tau", "--tau-from", "FULL"], "has no held-out split"),
        (["--temperature", "heldout"], "no held-out split to fit T on"),
        (["--posthoc", "nc-tau", "--tune", "heldout"], "has no held-out split"),
        (["--temperature", "0"], "--temperature '0'"),
        (["--posthoc", "nc-tau", "--rule-param", "x"], "KEY=VALUE"),
    ],
)
def test_bad_decision_flags_are_one_line_errors_in_all_three_commands(runs, tmp_path, capsys, flags, message):
    """The same one-line ConfigError from eval, predict and export (one parser, one check), nothing written."""
    flags = [{"HELD": str(runs["heldout"]), "FULL": str(runs["full"])}.get(f, f) for f in flags]
    full = runs["full"]
    before = sorted(p.name for p in full.iterdir())
    errors = []
    for argv in (["eval", str(full)], ["predict", str(full), "split:test", "--out", str(tmp_path / "p.jsonl")],
                 ["export", str(full), "--out", str(tmp_path / "m.pt")]):  # fmt: skip
        assert main([*argv, *flags]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and message in err, err
        errors.append(err)
    assert errors[0] == errors[1] == errors[2]
    assert sorted(p.name for p in full.iterdir()) == before and list(tmp_path.iterdir()) == []
