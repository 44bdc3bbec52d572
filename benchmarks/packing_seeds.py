"""Do packed runs give what solo runs give? The same seeds trained one after another and as one packed model.

    python benchmarks/packing_seeds.py [key=value ...] [--config CONFIG] [--seeds 0,1,2] [--out DIR] [--json FILE]

Trains CONFIG (default: the papers'-regime ERM of ``configs/fashion-mnist-lt-500`` shortened to 40 epochs,
400 steps per run, its schedule scaled: warm-up 1, lr decays at epochs 32 and 36; the key=value
overrides are applied after that shortening) for every seed twice
with ``longtail train --seeds``: ``--pack 1`` (``OUT/solo/seed-<s>``) and ``--pack K`` with K = the number
of seeds (``OUT/packed/seed-<s>``, one batched model, :mod:`longtail.engine.packed`). Finished runs are
reused, killed ones resumed. Prints, per metric, each seed's solo and packed value, the two means ± sample
std, and the verdict: the packed mean is **indistinguishable** from the solo mean when
|mean_p − mean_s| ≤ 2·√(s_p²/n + s_s²/n) (two standard errors of the difference, ≈ a two-sided 5% test),
and per seed how far apart the same seed lands (bit-equality is not expected: the packed model's batched
kernels round differently, and 400 steps amplify it into a different trajectory of the same distribution).

Issue 17 asks this over 3 seeds; the unit test ``tests/engine/test_packed.py`` checks the parameters after
20 fp32 steps to 1e-4, the independence of the seeds' streams and the exact resume.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "configs" / "fashion-mnist-lt-500" / "erm.yaml"
DEFAULT_OVERRIDES = ["train.epochs=40", "optim.warmup_epochs=1", "optim.milestones=[32,36]",
                     "train.checkpoint_every=10", "runtime.progress=none"]
METRICS = ("balanced_accuracy", "top1", "many", "medium", "few", "train_acc")


def train(config: str, overrides: list[str], seeds: list[int], pack: int, out: Path) -> float:
    """``longtail train CONFIG overrides --seeds … --pack K --out OUT`` (or ``--resume OUT``); seconds."""
    base = [sys.executable, "-m", "longtail", "train"]
    seeds_arg = ["--seeds", ",".join(map(str, seeds)), "--pack", str(pack)]
    if (out / "config.yaml").is_file():
        command = base + ["--resume", str(out)] + seeds_arg
    else:
        command = base + [config, *overrides, "--out", str(out), "--overwrite"] + seeds_arg
    print("$ " + " ".join(command), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - start


def final_metrics(run_dir: Path) -> dict[str, float]:
    """A finished run's headline test metrics (``engine.summary.headline``), its training accuracy at the
    last epoch and its training seconds."""
    from longtail.engine.summary import headline

    results = json.loads((run_dir / "results.json").read_text())
    out = {k: float(v) for k, v in headline(results).items() if v is not None}
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    out["train_acc"] = float(json.loads(lines[-1])["train_acc"])
    out["train_seconds"] = float(results["timing"]["train_seconds"])
    return out


def compare(solo: dict[int, dict[str, float]], packed: dict[int, dict[str, float]]) -> dict[str, dict]:
    """Per metric: values per seed, means ± sample std, the difference and its two-standard-error bound."""
    out = {}
    seeds = sorted(solo)
    for metric in METRICS:
        s = [solo[seed][metric] for seed in seeds if metric in solo[seed]]
        p = [packed[seed][metric] for seed in seeds if metric in packed[seed]]
        if len(s) != len(seeds) or len(p) != len(seeds):
            continue
        n = len(seeds)
        sd_s = statistics.stdev(s) if n > 1 else 0.0
        sd_p = statistics.stdev(p) if n > 1 else 0.0
        diff = statistics.fmean(p) - statistics.fmean(s)
        bound = 2 * math.sqrt(sd_s**2 / n + sd_p**2 / n)
        out[metric] = {"solo": s, "packed": p, "solo_mean": statistics.fmean(s), "solo_std": sd_s,
                       "packed_mean": statistics.fmean(p), "packed_std": sd_p, "difference": diff,
                       "two_se": bound, "indistinguishable": abs(diff) <= bound if n > 1 else None,
                       "max_same_seed_gap": max(abs(a - b) for a, b in zip(s, p))}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", help="key=value, after the default 40-epoch shortening")
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="config to train (default: %(default)s)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", default="runs/packing-seeds")
    parser.add_argument("--json", help="write the comparison here")
    args = parser.parse_args(argv)
    from longtail.bench.report import machine

    seeds = [int(s) for s in args.seeds.split(",")]
    if any("=" not in o for o in args.overrides):
        parser.error("overrides are key=value; give the config with --config")
    overrides = (DEFAULT_OVERRIDES if args.config == str(DEFAULT_CONFIG) else []) + args.overrides
    out = Path(args.out)
    seconds = {"solo": train(args.config, overrides, seeds, 1, out / "solo"),
               "packed": train(args.config, overrides, seeds, len(seeds), out / "packed")}
    solo = {s: final_metrics(out / "solo" / f"seed-{s}") for s in seeds}
    packed = {s: final_metrics(out / "packed" / f"seed-{s}") for s in seeds}
    result = compare(solo, packed)
    print(f"\n{len(seeds)} seeds, solo (one after another) vs packed (K={len(seeds)}), accuracy in %:")
    for metric, r in result.items():
        cells = " ".join(f"{a * 100:6.2f}/{b * 100:6.2f}" for a, b in zip(r["solo"], r["packed"]))
        verdict = {True: "indistinguishable", False: "DIFFERENT", None: "n/a"}[r["indistinguishable"]]
        print(f"  {metric:24s} solo {r['solo_mean'] * 100:6.2f} ± {r['solo_std'] * 100:4.2f}  "
              f"packed {r['packed_mean'] * 100:6.2f} ± {r['packed_std'] * 100:4.2f}  "
              f"Δ {r['difference'] * 100:+5.2f} (2 SE {r['two_se'] * 100:4.2f}) {verdict}; per seed solo/packed: {cells}")
    # solo runs train one after another (their times add up); every run of a pack records the pack's time
    train_s = {"solo": sum(m["train_seconds"] for m in solo.values()),
               "packed": max(m["train_seconds"] for m in packed.values())}
    print(f"  training seconds for the {len(seeds)} runs: solo {train_s['solo']:.0f} (one after another), packed "
          f"{train_s['packed']:.0f} (one pack): packing gain {train_s['solo'] / train_s['packed']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"config": args.config, "overrides": overrides, "seeds": seeds,
                                               "training_seconds": train_s, "seconds_last_call": seconds,
                                               "cpu": machine(), "metrics": result}, indent=2) + "\n")
    held = all(r["indistinguishable"] is not False for r in result.values())
    print(f"packed vs solo: {'indistinguishable' if held else 'DIFFERENT'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
