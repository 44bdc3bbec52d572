"""The speed benchmark: its synthetic data, its pipeline list, its options, and a tiny end-to-end run.

Nothing here is timed: the smoke run uses a few steps on a 242-image set only to check that both
entry points run both pipelines and print the figures and the final ``ratio:`` line.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from longtail.bench import harness, pipelines, report, speed
from longtail.cli import main as cli_main
from longtail.commands.bench import add_arguments
from longtail.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "name, total, head, tail",
    [("cifar10", 12406, 5000, 50), ("fmnist", 14886, 6000, 60)],
)
def test_synthetic_sets_have_the_papers_long_tailed_counts(name, total, head, tail):
    shape = harness.SHAPES[name]
    images, labels, counts = harness.synthetic_longtail(shape, 0, seed=0)
    assert sum(counts) == total and counts[0] == head and counts[-1] == tail
    # n_i = floor(N_max · ρ^(−i/(C−1))), written out independently
    expected = [int(head * 100.0 ** (-i / 9) + 1e-9) for i in range(10)]
    assert counts == expected
    assert images.dtype == torch.uint8
    assert tuple(images.shape) == (total, shape.channels, shape.image_size, shape.image_size)
    assert torch.bincount(labels, minlength=10).tolist() == counts
    again, _, _ = harness.synthetic_longtail(shape, 0, seed=0)
    assert torch.equal(images[:50], again[:50])


def test_pipelines_for_ablation_adds_each_optimisation_once():
    base = harness.SpeedOptions(device="cpu", channels_last=True, precision="bf16", compile=False)
    assert [p.label for p in harness.pipelines_for(base)] == ["a", "b"]
    options = harness.SpeedOptions(device="cpu", channels_last=True, precision="bf16", compile=False, ablation=True)
    pipelines = harness.pipelines_for(options)
    keys = [p.settings_key() for p in pipelines]
    assert len(keys) == len(set(keys))
    by_label = {p.label: p for p in pipelines}
    assert by_label["b"].precision == "bf16" and by_label["b"].channels_last
    # the rows of the ladder are all measured; b (= +bf16) is not measured twice
    rows = harness.ablation_rows(options)
    assert {p.settings_key() for _, p in rows} <= set(keys)
    assert [label for label, _ in rows] == [
        "a (reference)", "tensor data", "+channels_last", "+bf16 autocast", "+tuned malloc", "+torch.compile",
        "a, tuned malloc",
    ]
    # a, b (= bf16 + tuned malloc), tensor data, +channels_last, +bf16 (system malloc), +torch.compile, a tuned
    assert len(pipelines) == 7
    assert by_label["b"].allocator == "tuned" and by_label["a"].allocator == "system"
    assert [p.allocator for _, p in rows] == ["system"] * 4 + ["tuned"] * 3


def test_compile_default_is_what_train_decides_for_the_papers_recipe(monkeypatch):
    from longtail.engine import accel

    parser = __import__("argparse").ArgumentParser()
    add_arguments(parser)
    monkeypatch.setattr(accel.shutil, "which", lambda name: f"/usr/bin/{name}")
    options = speed.options_from_args(parser.parse_args(["--device", "cpu"]))
    assert options.compile is True and "19,400 training steps" in options.compile_reason
    monkeypatch.setattr(accel.shutil, "which", lambda name: None)
    options = speed.options_from_args(parser.parse_args(["--device", "cpu"]))
    assert options.compile is False and "no C++ compiler" in options.compile_reason
    options = speed.options_from_args(parser.parse_args(["--device", "cpu", "--compile"]))
    assert options.compile is True and options.compile_reason == "--compile"


def test_profile_categories_and_convolution_flops():
    assert pipelines.profile_category("aten::convolution_backward") == "convolutions"
    assert pipelines.profile_category("aten::mkldnn_convolution") == "convolutions"
    assert pipelines.profile_category("## Call CompiledFxGraph fabc ##") == "compiled kernels"
    assert pipelines.profile_category("aten::native_batch_norm_backward") == "batch norm"
    assert pipelines.profile_category("aten::threshold_backward") == "ReLU, add, casts"
    assert pipelines.profile_category("Optimizer.step#SGD.step") == "other"
    # one 3×3 conv 2→4 channels on 5×5 (padding 1) and a 1×1 conv 4→1: 2·MACs forward, ×3 in training
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.Conv2d(4, 1, 1))
    x = torch.zeros(3, 2, 5, 5)
    macs = 3 * 4 * 5 * 5 * (2 * 9) + 3 * 1 * 5 * 5 * 4
    assert pipelines.conv_flops(model, x) == 3 * 2 * macs


def test_bad_options_raise_config_error():
    parser = __import__("argparse").ArgumentParser()
    add_arguments(parser)
    with pytest.raises(ConfigError, match="--steps"):
        speed.options_from_args(parser.parse_args(["--steps", "0"]))
    with pytest.raises(ConfigError, match="--n-max"):
        speed.options_from_args(parser.parse_args(["--n-max", "50"]))
    with pytest.raises(SystemExit):
        parser.parse_args(["--shapes", "imagenet"])


def test_tiny_run_through_the_cli_prints_figures_and_ratio(tmp_path, capsys):
    out = tmp_path / "speed.json"
    status = cli_main([
        "bench", "speed", "--shapes", "fmnist", "--n-max", "100", "--batch-size", "16", "--steps", "2",
        "--windows", "1", "--warmup", "1", "--eval-batch-sizes", "16,32", "--eval-images", "32",
        "--threads", "1", "--precision", "bf16", "--no-compile", "--json", str(out), "--epoch", "--epoch-test-images", "40",
    ])
    assert status == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r"ratio: \d+\.\d\d", lines[-1])
    assert re.fullmatch(r"limit: a \d+\.\d%, b \d+\.\d% of the FLOP-bound limit \(fmnist\)", lines[-2])
    assert any(line.startswith("  of the FLOP-bound limit (fmnist): a ") for line in lines)
    assert any("fmnist-LT shape: 242 training images 1×28×28" in line for line in lines)
    payload = json.loads(out.read_text())
    (shape,) = payload["shapes"]
    a, b = shape["pipelines"]
    assert (a["label"], b["label"]) == ("a", "b")
    assert b["settings"]["precision"] == "bf16" and a["settings"]["kind"] == "reference"
    for pipeline in (a, b):
        assert len(pipeline["train_img_per_s"]) == 1 and pipeline["train_median"] > 0
        assert set(pipeline["eval_img_per_s"]) == {"16", "32"}
        assert pipeline["memory"]["peak_rss_mib"] >= pipeline["memory"]["rss_start_mib"] > 0
        # the whole epoch: all 242 training images (16 batches), then at least 40 evaluated
        epoch = pipeline["epoch"]
        assert epoch["train_images"] == 242 and epoch["eval_images"] >= 40
        assert epoch["seconds"] == pytest.approx(epoch["train_seconds"] + epoch["eval_seconds"])
        assert epoch["first_seconds"] > 0 and epoch["first_train_seconds"] > 0
        assert pipeline["setup_seconds"] > 0
    assert any(line.startswith("  whole-epoch ratio a/b (fmnist): ") for line in lines)
    limit = shape["limit"]
    assert 0.2 < limit["gflop_per_image"] < 0.4  # ResNet-32 on 1×28×28: ~0.31 GFLOP (SPEC §10)
    assert set(limit["peak_gflops"]) == {"fp32", "bf16"}
    for pipeline, precision in ((a, "fp32"), (b, "bf16")):
        expected = pipeline["train_median"] * limit["gflop_per_image"] / limit["peak_gflops"][precision]
        assert pipeline["limit_fraction"] == pytest.approx(expected)
    assert float(lines[-1].split()[1]) == pytest.approx(b["train_median"] / a["train_median"], abs=0.006)


def test_benchmark_script_has_the_same_options():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "speed.py"), "--help"],
        capture_output=True, text=True, check=True,
    ).stdout
    for option in ("--precision", "--channels-last", "--compile", "--data-on-device", "--ablation", "--profile"):
        assert option in out


def test_limit_fraction_is_rate_times_flops_over_peak():
    def result(label, kind, precision, rate):
        r = harness.PipelineResult(harness.Pipeline(label, kind, precision=precision))
        r.train = [{"images": rate, "seconds": 1.0, "data_seconds": 0.0}]
        return r

    # a (fp32) at 100 img/s, b (bf16) at 500 img/s; 0.3 GFLOP per image; peaks 120 and 600 GFLOP/s
    limit = {"gflop_per_image": 0.3, "peak_gflops": {"fp32": 120.0, "bf16": 600.0}, "device": "cpu",
             "limit_img_per_s": {"fp32": 400.0, "bf16": 2000.0}}
    shape = harness.ShapeResult(harness.SHAPES["fmnist"], 100,
                              [result("a", "reference", "fp32", 100), result("b", "longtail", "bf16", 500)], None, limit)
    assert shape.limit_fraction(shape.results[0]) == pytest.approx(100 * 0.3 / 120)  # 25%
    assert shape.limit_fraction(shape.results[1]) == pytest.approx(500 * 0.3 / 600)  # 25%
    line = report.format_limit(shape)
    assert line.startswith("of the FLOP-bound limit (fmnist): a 25.0%, b 25.0% — 0.300 GFLOP per training image")
    assert "fp32 120 GFLOP/s → 400 img/s" in line and "bf16 600 GFLOP/s → 2,000 img/s" in line
    assert harness.ShapeResult(harness.SHAPES["fmnist"], 100, shape.results).limit_fraction(shape.results[0]) is None


def test_profile_report_says_what_the_target_ratio_would_need():
    def result(label, rate):
        r = harness.PipelineResult(harness.Pipeline(label, "longtail"))
        r.train = [{"images": rate, "seconds": 1.0, "data_seconds": 0.0}]
        return r

    # a at 100 img/s, b at 256 img/s: batch 128 → b's step is 500 ms; ×4 needs 400 img/s = 320 ms
    profile = {
        "phases": {"data": 0.01, "forward+loss": 0.2, "backward": 0.28, "optimizer": 0.01},
        "steps": 2, "table": "",
        # profiler self times sum to 1,000 ms (2× the unprofiled step): 400 conv + 600 rest
        "ms_per_step": {"convolutions": 400.0, "compiled kernels": 0.0, "batch norm": 300.0,
                        "ReLU, add, casts": 250.0, "other": 50.0},
        "conv_gflop_per_step": 10.0, "peak_gflops": 1000.0,
    }
    shape = harness.ShapeResult(harness.SHAPES["cifar10"], 100, [result("a", 100), result("b", 256)], profile)
    lines = report.format_profile(shape, harness.SpeedOptions())
    text = "\n".join(lines)
    assert re.search(r"convolutions +400\.0 ms +40\.0%", text)
    # in the real step the convolutions take 200 ms: 10 GFLOP / 0.2 s = 50 GFLOP/s, 5% of the peak
    assert "in 200.0 ms = 50 GFLOP/s" in text and "(5% of it reached)" in text
    # scaled to the real step: conv 200 ms + rest 300 ms; need 320 → rest must drop to 120 (×2.5),
    # or with the rest unchanged the convolutions would get 20 ms: 10 GFLOP / 0.02 s = 500 GFLOP/s
    assert "×4 needs 400 img/s = 320 ms per step (now 500: convolutions 200 + the rest 300)" in text
    assert "the rest from 300 to 120 ms (×2.5 faster)" in text
    assert "convolutions at 500 GFLOP/s (50% of the matrix-product rate)" in text
    shape.results[1].train[0]["images"] = 400
    assert report.format_profile(shape, harness.SpeedOptions())[-1] == "  ratio ×4 reached"
