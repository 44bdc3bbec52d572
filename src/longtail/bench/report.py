"""The speed benchmark's report: the text tables (pipelines, ablation, profile) and the JSON file."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
from collections.abc import Sequence

from longtail.bench.harness import ShapeResult, SpeedOptions, ablation_rows
from longtail.engine.accel import cpu_flags


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    flags = ""
    if hasattr(torch.backends, "cpu") and hasattr(torch.backends.cpu, "get_cpu_capability"):
        flags = f", {torch.backends.cpu.get_cpu_capability()}"
    flags += "".join(f", {f}" for f in cpu_flags())
    emulated = [f"{k}={os.environ[k]}" for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA") if os.environ.get(k)]
    if emulated:
        flags += f", emulated: {' '.join(emulated)}"
    return f"{cpu} ({os.cpu_count()} cpus{flags}), torch {torch.__version__}"


def percent(fraction: float | None) -> str:
    return "—" if fraction is None else f"{100 * fraction:.1f}%"


def format_limit(result: ShapeResult) -> str:
    """``of the FLOP-bound limit (fmnist): a 12.3%, b 25.0% — …`` for the pipelines a and b."""
    limit = result.limit
    assert limit is not None
    a, b = result.results[0], result.results[1]
    peaks = ", ".join(
        f"{name} {peak:.0f} GFLOP/s → {limit['limit_img_per_s'][name]:,.0f} img/s"
        for name, peak in limit["peak_gflops"].items()
    )
    return (
        f"of the FLOP-bound limit ({result.shape.name}): a {percent(result.limit_fraction(a))}, "
        f"b {percent(result.limit_fraction(b))} — {limit['gflop_per_image']:.3f} GFLOP per training image; "
        f"2048² matrix product {peaks}"
    )


def format_shape(result: ShapeResult, options: SpeedOptions) -> list[str]:
    """The tables of one shape: pipelines, ablation (if measured), profile (if measured)."""
    shape = result.shape
    lines = [
        f"{shape.name}-LT shape: {result.num_images:,} training images {shape.channels}×{shape.image_size}×"
        f"{shape.image_size} (ρ={shape.imbalance_ratio:g}), batch {options.batch_size}, "
        f"{options.windows} windows × {options.steps} steps, interleaved; "
        f"{result.results[0].threads} threads",
        f"  {'':15} {'pipeline':<68} {'train img/s':>11} {'min–max':>11} {'data%':>6} "
        f"{'eval img/s':>10} {'@bs':>5} {'peak MiB':>9} {'Δ MiB':>7} {'% limit':>8}",
    ]
    for r in result.results:
        rates = r.train_rates
        eval_bs, eval_rate = r.best_eval()
        delta = r.memory["peak_rss_mib"] - r.memory["rss_start_mib"]
        lines.append(
            f"  {r.pipeline.label[:15]:15} {r.pipeline.describe()[:68]:<68} {r.train_median:11.1f} "
            f"{min(rates):5.0f}–{max(rates):<5.0f} {100 * r.data_fraction:5.1f}% {eval_rate:10.0f} {eval_bs:5d} "
            f"{r.memory['peak_rss_mib']:9.0f} {delta:7.0f} {percent(result.limit_fraction(r)):>8}"
        )
    for r in result.results[:2]:
        medians = ", ".join(f"bs {bs}: {rate:.0f}" for bs, rate in r.eval_medians().items())
        lines.append(f"  eval img/s of {r.pipeline.label}: {medians}")
    lines.append("  setup s (data, model, warm-up; compilation included): "
                 + ", ".join(f"{r.pipeline.label or '?'} {r.setup_seconds:.1f}" for r in result.results))
    a_epoch, b_epoch = result.results[0].epoch, result.results[1].epoch
    if a_epoch and b_epoch:
        for label, e in (("a", a_epoch), ("b", b_epoch)):
            lines.append(
                f"  whole epoch of {label}: {e['seconds']:.1f} s = train {e['train_images']:,} images in "
                f"{e['train_seconds']:.1f} s + evaluate {e['eval_images']:,} in {e['eval_seconds']:.1f} s "
                f"(the first epoch: {e['first_seconds']:.1f} s)"
            )
        lines.append(f"  whole-epoch ratio a/b ({shape.name}): {a_epoch['seconds'] / b_epoch['seconds']:.2f}")
    lines.append(f"  ratio b/a ({shape.name}): {result.ratio:.2f}")
    if result.limit:
        lines.append("  " + format_limit(result))
    if len(result.results) > 2:
        base = result.results[0].train_median
        by_key = {r.pipeline.settings_key(): r for r in result.results}
        b_key = result.results[1].pipeline.settings_key()
        lines.append(f"  ablation ({shape.name}), median train img/s in the same run (b = the row marked *):")
        previous = None
        for label, pipeline in ablation_rows(options):
            key = pipeline.settings_key()
            r = by_key[key]
            outside = label.startswith("a, ")  # outside the ladder: against a only
            step = "" if previous is None or outside else f"  ×{r.train_median / previous:.2f} vs previous row"
            mark = "*" if key == b_key else " "
            lines.append(
                f"   {mark}{label:<20} {r.train_median:8.1f}  ×{r.train_median / base:.2f} vs a{step}"
            )
            previous = r.train_median
        if b_key not in {p.settings_key() for _, p in ablation_rows(options)}:
            lines.append(f"    b: {result.results[1].pipeline.describe()}: {result.results[1].train_median:.1f}")
    if result.profile is not None:
        lines.extend(format_profile(result, options))
    return lines


def format_profile(result: ShapeResult, options: SpeedOptions, target: float = 4.0) -> list[str]:
    """Where (b)'s step time goes, and what a (b)/(a) ratio of ``target`` would need."""
    profile = result.profile
    assert profile is not None
    phases = profile["phases"]
    total = sum(phases.values())
    split = ", ".join(f"{name} {100 * s / total:.0f}%" for name, s in phases.items())
    lines = [f"  profile of b ({profile['steps']} steps, profiler on): {split}"]
    lines.extend("  " + line for line in profile["table"].splitlines())
    ms = profile["ms_per_step"]
    step_ms = sum(ms.values())
    lines.append(f"  where b's step goes (profiler self time, ms per batch-{options.batch_size} step, "
                 f"{step_ms:.1f} in all):")
    for name, value in ms.items():
        lines.append(f"    {name:<18} {value:7.1f} ms  {100 * value / step_ms:5.1f}%")
    conv_ms = ms["convolutions"]
    gflop = profile["conv_gflop_per_step"]
    peak = profile["peak_gflops"]
    a_rate, b_rate = result.results[0].train_median, result.results[1].train_median
    now_ms = 1000 * options.batch_size / b_rate
    scale = now_ms / step_ms  # the profiler's own overhead taken out: shares of the unprofiled step
    conv_now, rest_now = conv_ms * scale, (step_ms - conv_ms) * scale
    achieved = gflop / (conv_now / 1000) if conv_now > 0 else float("nan")
    lines.append(
        f"  convolutions: {gflop:.1f} GFLOP per step in {conv_now:.1f} ms = {achieved:.0f} GFLOP/s; "
        f"a 2048² matrix product in the same precision runs at {peak:.0f} GFLOP/s here "
        f"({100 * achieved / peak:.0f}% of it reached)"
    )
    if b_rate >= target * a_rate:
        lines.append(f"  ratio ×{target:g} reached")
        return lines
    need_ms = 1000 * options.batch_size / (target * a_rate)
    lines.append(f"  ×{target:g} needs {target * a_rate:.0f} img/s = {need_ms:.0f} ms per step (now {now_ms:.0f}: "
                 f"convolutions {conv_now:.0f} + the rest {rest_now:.0f})")
    if need_ms > conv_now:
        lines.append(f"    at today's convolution speed: the rest from {rest_now:.0f} to {need_ms - conv_now:.0f} ms "
                     f"(×{rest_now / (need_ms - conv_now):.1f} faster)")
    else:
        lines.append(f"    the convolutions alone ({conv_now:.0f} ms) already take longer")
    if need_ms > rest_now:
        conv_needed = gflop / ((need_ms - rest_now) / 1000)
        lines.append(f"    with the rest unchanged: convolutions at {conv_needed:.0f} GFLOP/s "
                     f"({100 * conv_needed / peak:.0f}% of the matrix-product rate)")
    else:
        lines.append(f"    the rest alone ({rest_now:.0f} ms) already takes longer: both must shrink")
    return lines


def write_json(options: SpeedOptions, results: Sequence[ShapeResult], path: str) -> None:
    payload = {
        "options": dataclasses.asdict(options),
        "machine": machine(),
        "shapes": [
            {
                "shape": r.shape.name,
                "num_images": r.num_images,
                "ratio": r.ratio,
                "limit": r.limit,
                "pipelines": [
                    {
                        "label": p.pipeline.label,
                        "settings": dataclasses.asdict(p.pipeline),
                        "train_img_per_s": p.train_rates,
                        "train_median": p.train_median,
                        "limit_fraction": r.limit_fraction(p),
                        "data_fraction": p.data_fraction,
                        "eval_img_per_s": p.eval_medians(),
                        "memory": p.memory,
                        "setup_seconds": p.setup_seconds,
                        "epoch": p.epoch,
                    }
                    for p in r.results
                ],
            }
            for r in results
        ],
    }
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2)
