"""Plots, ``analysis.json`` and one self-contained ``report.html`` from the analyses of one or more runs.

The input is what :func:`longtail.analysis.collect.analyze_run` returns — a JSON-ready dict per run
(keys listed in :data:`RUN_KEYS`) — so a report can be rebuilt from ``analysis.json`` alone
(:func:`write_report` reads nothing else). Several runs are overlaid on the per-class plots, as
in the CDT paper's Figure 3 (ERM vs CDT), and labelled by run name.

matplotlib is imported inside the plotting functions, with the Agg canvas and no ``pyplot`` state.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RUN_KEYS = (
    "name", "run_dir", "epoch", "num_classes", "class_names", "class_counts", "test_counts", "head",
    "summary", "train_accuracy", "test_accuracy", "classifier_norms", "feature_deviation",
    "deviation_K", "deviation_rounds", "decision_values", "confusion", "margins", "tsne", "epochs",
    "calibration", "cdt_table1", "pre_annealing_probe",
)  # fmt: skip


# ----------------------------------------------------------------------------------------- numbers


def spearman(x: Sequence[float | None], y: Sequence[float | None]) -> float | None:
    """Spearman rank correlation over the positions where both values exist (average ranks for ties).

    ``None`` when fewer than three pairs remain or one side is constant.
    """
    import numpy as np

    pairs = [(a, b) for a, b in zip(x, y) if a is not None and b is not None]
    if len(pairs) < 3:
        return None

    def ranks(values: np.ndarray) -> np.ndarray:
        order = np.argsort(values, kind="stable")
        sorted_vals = values[order]
        r = np.empty(len(values), dtype=np.float64)
        i = 0
        while i < len(values):
            j = i
            while j + 1 < len(values) and sorted_vals[j + 1] == sorted_vals[i]:
                j += 1
            r[order[i : j + 1]] = (i + j) / 2.0
            i = j + 1
        return r

    a = ranks(np.array([p[0] for p in pairs], dtype=np.float64))
    b = ranks(np.array([p[1] for p in pairs], dtype=np.float64))
    if a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _thirds(counts: Sequence[int]) -> tuple[list[int], list[int]]:
    """Indices of the largest and the smallest third of the classes by training count."""
    order = sorted(range(len(counts)), key=lambda c: (-counts[c], c))
    k = max(1, len(counts) // 3)
    return order[:k], order[-k:]


def _fmt(value: float | None, pct: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{100 * value:.1f}%" if pct else f"{value:.3g}"


def findings(run: dict[str, Any]) -> list[tuple[str, str]]:
    """What this run shows for each of the CDT paper's observations, as ``(topic, sentence)`` pairs.

    Correlations are Spearman's ρ between the training class size N_c and the per-class statistic;
    "major"/"minor" are the largest/smallest third of the classes by N_c.
    """
    counts = run["class_counts"]
    major, minor = _thirds(counts)

    def group(values: Sequence[float | None], idx: list[int]) -> float | None:
        return _mean([values[c] for c in idx])

    out: list[tuple[str, str]] = []
    tr, te = run["train_accuracy"], run["test_accuracy"]
    out.append(
        (
            "accuracy",
            f"training accuracy major/minor classes {_fmt(group(tr, major), True)} / {_fmt(group(tr, minor), True)}; "
            f"test accuracy {_fmt(group(te, major), True)} / {_fmt(group(te, minor), True)}. The paper (ERM): "
            "training accuracy ≈100% for all classes, test accuracy drops for minor classes (over-fitting).",
        )
    )
    rho = spearman(counts, run["classifier_norms"])
    out.append(
        (
            "classifier norms",
            f"ρ(N_c, ‖w_c‖) = {_fmt(rho)}"
            + (" — norms grow with class size, as the paper reports for ERM." if rho is not None and rho > 0.3
               else " — norms are not biased towards major classes here (the paper: biased for ERM, "
               "more uniform with re-weighting/re-sampling).")
        )
    )  # fmt: skip
    dev = run.get("feature_deviation")
    if dev is not None:
        rho = spearman(counts, dev)
        out.append(
            (
                "feature deviation",
                f"ρ(N_c, dis(c)) = {_fmt(rho)}; dis major/minor {_fmt(group(dev, major))} / {_fmt(group(dev, minor))}"
                + (" — minor classes deviate more, as in the paper's Figure 3 (d)." if rho is not None and rho < -0.3
                   else " — the paper finds dis(c) growing as N_c shrinks; this run does not show that clearly.")
            )
        )  # fmt: skip
    diag = run.get("decision_diagonal")
    if diag is not None:
        drop = [
            (a - b) if a is not None and b is not None else None for a, b in zip(diag["train"], diag["test"])
        ]
        rho = spearman(counts, drop)
        out.append(
            (
                "decision values",
                f"diagonal drop from training to test, major/minor {_fmt(group(drop, major))} / "
                f"{_fmt(group(drop, minor))} (ρ(N_c, drop) = {_fmt(rho)})"
                + (" — test features of minor classes move to lower decision values, as in Figure 4."
                   if rho is not None and rho < -0.3 else " — the paper sees the largest drop for minor classes."),
            )
        )  # fmt: skip
    calibration = run.get("calibration")
    if calibration is not None:
        out.append(("calibration", calibration_sentence(calibration)))
    table1 = run.get("cdt_table1")
    if table1 is not None:
        out.append(
            (
                "classifiers on the same features (CDT Table 1)",
                f"test top-1: linear {_fmt(table1['linear']['top1'], True)}, NCM with training-set means "
                f"{_fmt(table1['ncm-train-means']['top1'], True)}; NCM with test-set means (a diagnostic, not a model) "
                f"{_fmt(table1['ncm-test-means']['top1'], True)}. The paper (ERM, CIFAR-10 ρ=100): 71.1 / 77.0 / 79.5.",
            )
        )
    probe = run.get("pre_annealing_probe")
    if probe is not None:
        out.append(
            (
                "features before lr annealing (LDAM Fig. 6)",
                f"a linear classifier trained on a balanced set ({probe['probe_examples']} images) on the frozen "
                f"features of epoch {probe['epoch']} reaches test top-1 {_fmt(probe['top1'], True)} (the model "
                f"itself at that epoch: {_fmt(probe['model_at_snapshot']['top1'], True)}). The paper: ERM's "
                "features beat RW's and RS's.",
            )
        )
    margins = run.get("margins")
    if margins is not None:
        rho = spearman(counts, margins)
        out.append(
            (
                "margins",
                f"training margin γ_j major/minor {_fmt(group(margins, major))} / {_fmt(group(margins, minor))} "
                f"(ρ(N_c, γ_j) = {_fmt(rho)}). LDAM enlarges the margins of minor classes (γ_j ∝ N_j^(−1/4)).",
            )
        )
    return out


def calibration_sentence(calibration: dict[str, Any]) -> str:
    """ECE overall and per group, before and (when a held-out split gave T) after temperature scaling."""
    def eces(report: dict[str, Any]) -> str:
        groups = ", ".join(f"{g} {_fmt(v['ece'], True)}" for g, v in report["groups"].items() if v["num_examples"])
        return f"{_fmt(report['overall']['ece'], True)} ({groups})"

    text = f"test ECE (15 bins) {eces(calibration['plain'])}"
    temperature = calibration.get("temperature")
    if temperature is not None and calibration.get("scaled") is not None:
        text += (f"; after temperature scaling with T = {temperature['value']:.3g} (fitted on the held-out split, "
                 f"{temperature['num_examples']} images) {eces(calibration['scaled'])}")
    else:
        text += "; no held-out split, so no temperature scaling (train with data.heldout_per_class=K)"
    return text + "."


# ------------------------------------------------------------------------------------------- plots


def _figure(nrows: int = 1, ncols: int = 1, size: tuple[float, float] = (6.4, 4.0)) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=100, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _nan(values: Sequence[float | None]) -> list[float]:
    return [float("nan") if v is None else float(v) for v in values]


def class_order(run: dict[str, Any]) -> list[int]:
    """Classes by decreasing training size (ties by index): the papers' re-indexing for the plots."""
    counts = run["class_counts"]
    return sorted(range(len(counts)), key=lambda c: (-counts[c], c))


def _class_axis(ax: Any, order: list[int]) -> None:
    C = len(order)
    ax.set_xlabel("class, by decreasing training size")
    if C <= 20:
        ax.set_xticks(range(C), [str(c) for c in order])
    ax.grid(alpha=0.3)


def _save(fig: Any, path: Path) -> Path:
    fig.savefig(path, format="png")
    return path


def _lookup(run: dict[str, Any], key: str | tuple[str, ...]) -> Any:
    if isinstance(key, str):
        return run[key]
    value: Any = run
    for part in key:
        value = value[part]
    return value


def plot_per_class(
    runs: list[dict[str, Any]], keys: Sequence[tuple[Any, str]], path: Path, pct: bool = False,
    same_scale: bool = False,
) -> Path:
    """One panel per statistic (``(key, title)``; a tuple key walks nested dicts), one line per run."""
    fig, axes = _figure(1, len(keys), size=(5.2 * len(keys), 3.8))
    order = class_order(runs[0])
    for ax, (key, title) in zip(axes[0], keys):
        for run in runs:
            values = _nan([_lookup(run, key)[c] for c in order])
            if pct:
                values = [100 * v for v in values]
            ax.plot(range(len(values)), values, marker="o", ms=3, label=run["name"])
        ax.set_title(title)
        _class_axis(ax, order)
        if pct:
            ax.set_ylim(-2, 102)
            ax.set_ylabel("%")
        ax.legend(fontsize=8)
    if same_scale:
        lows, highs = zip(*(ax.get_ylim() for ax in axes[0]))
        for ax in axes[0]:
            ax.set_ylim(min(lows), max(highs))
    return _save(fig, path)


def plot_class_counts(runs: list[dict[str, Any]], path: Path) -> Path:
    fig, axes = _figure(size=(6.4, 3.4))
    ax = axes[0][0]
    width = 0.8 / len(runs)
    order = class_order(runs[0])
    for i, run in enumerate(runs):
        ax.bar([c + (i - (len(runs) - 1) / 2) * width for c in range(len(order))],
               [run["class_counts"][c] for c in order], width=width, label=run["name"])  # fmt: skip
    ax.set_yscale("log")
    ax.set_ylabel("training examples N_c")
    ax.set_title("Training class sizes")
    _class_axis(ax, order)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _heatmap(
    fig: Any, ax: Any, matrix: Any, order: list[int], title: str, vmin: float, vmax: float, cmap: str
) -> None:
    import numpy as np

    m = np.asarray(matrix, dtype=np.float64)[np.ix_(order, order)]
    image = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("column: classifier c′ / predicted label")
    ax.set_ylabel("row: true class c")
    C = m.shape[0]
    if C <= 20:
        ax.set_xticks(range(C), [str(c) for c in order])
        ax.set_yticks(range(C), [str(c) for c in order])
    if C <= 12:
        middle = vmin + 0.5 * (vmax - vmin)
        for i in range(C):
            for j in range(C):
                ax.text(j, i, f"{m[i, j]:.2g}", ha="center", va="center", fontsize=6, in_layout=False,
                        color="white" if (m[i, j] < middle) == (cmap == "viridis") else "black")  # fmt: skip
    fig.colorbar(image, ax=ax, shrink=0.8)


def plot_matrices(run: dict[str, Any], path: Path) -> Path:
    """CDT Figures 4/5: mean decision values and predicted labels (row-normalised), training vs test."""
    import numpy as np

    fig, axes = _figure(2, 2, size=(10.5, 9.0))
    dv = run["decision_values"]
    both = np.array(dv["train"] + dv["test"], dtype=np.float64)
    lo, hi = float(both.min()), float(both.max())
    order = class_order(run)
    _heatmap(fig, axes[0][0], dv["train"], order, "decision values, training set", lo, hi, "viridis")
    _heatmap(fig, axes[0][1], dv["test"], order, "decision values, test set", lo, hi, "viridis")
    for ax, split in ((axes[1][0], "train"), (axes[1][1], "test")):
        counts = np.array(run["confusion"][split], dtype=np.float64)
        sums = counts.sum(axis=1, keepdims=True)
        frac = np.divide(counts, sums, out=np.zeros_like(counts), where=sums > 0)
        _heatmap(fig, ax, frac, order, f"predicted labels (row fraction), {'training' if split == 'train' else 'test'} set",
                 0.0, 1.0, "Blues")  # fmt: skip
    fig.suptitle(run["name"])
    return _save(fig, path)


def plot_tsne(run: dict[str, Any], path: Path) -> Path:
    """CDT Figure 16: training (circle) and test (cross) features, one colour per class."""
    import numpy as np
    from matplotlib import colormaps

    tsne = run["tsne"]
    coords = np.asarray(tsne["coords"], dtype=np.float64)
    labels = np.asarray(tsne["labels"], dtype=np.int64)
    is_test = np.asarray(tsne["is_test"], dtype=bool)
    shown = sorted(set(labels.tolist()))
    C = len(shown)
    cmap = colormaps["tab10" if C <= 10 else "tab20" if C <= 20 else "turbo"]
    fig, axes = _figure(size=(6.4, 5.6))
    ax = axes[0][0]
    for i, c in enumerate(shown):
        colour = cmap(i if C <= 20 else i / max(C - 1, 1))
        for test, marker in ((False, "o"), (True, "x")):
            sel = (labels == c) & (is_test == test)
            if sel.any():
                ax.scatter(coords[sel, 0], coords[sel, 1], marker=marker, s=18, color=colour,
                           facecolors="none" if not test else None, linewidths=1.0,
                           label=f"{c}" if not test and C <= 20 else None)  # fmt: skip
    ax.set_title(f"{run['name']}: t-SNE, training ○ vs test ×")
    ax.set_xticks([])
    ax.set_yticks([])
    if C <= 20:
        ax.legend(fontsize=7, title="class", ncols=2, loc="best")
    return _save(fig, path)


def plot_epochs(run: dict[str, Any], path: Path) -> Path:
    """CDT Figure 7: per-class statistics along training epochs, one line per class."""
    from matplotlib import colormaps

    epochs = run["epochs"]
    panels = [
        ("train_accuracy", "training accuracy", True),
        ("test_accuracy", "test accuracy", True),
        ("classifier_norms", "classifier norm ‖w_c‖", False),
        ("feature_deviation", "feature deviation dis(c)", False),
    ]
    panels = [p for p in panels if epochs.get(p[0])]
    ncols = 2 if len(panels) > 1 else 1
    nrows = (len(panels) + 1) // 2
    fig, axes = _figure(nrows, ncols, size=(5.4 * ncols, 3.6 * nrows))
    flat = [ax for row in axes for ax in row]
    for ax in flat[len(panels) :]:
        ax.set_visible(False)
    C = run["num_classes"]
    cmap = colormaps["viridis"]
    for ax, (key, title, pct) in zip(flat, panels):
        series = epochs[key]  # [E][C]
        for rank, c in enumerate(class_order(run)):
            ys = [float("nan") if row[c] is None else (100 if pct else 1) * row[c] for row in series]
            ax.plot(epochs["epoch"], ys, color=cmap(rank / max(C - 1, 1)), lw=1.2,
                    label=str(c) if C <= 10 else None)  # fmt: skip
        ax.set_title(title)
        ax.set_xlabel("epoch")
        if pct:
            ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
    if C <= 10:
        flat[0].legend(fontsize=7, title="class", ncols=2)
    fig.suptitle(f"{run['name']}: along epochs (colour: largest → smallest class)")
    return _save(fig, path)


def plot_reliability(run: dict[str, Any], path: Path) -> Path:
    """Reliability diagrams (Guo et al. 2017, Fig. 1): accuracy per confidence bin against the diagonal,
    overall and per shot group; bars before temperature scaling, a line after it when T was fitted."""
    calibration = run["calibration"]
    panels = [("overall", calibration["plain"]["overall"], (calibration.get("scaled") or {}).get("overall"))]
    for name, report in calibration["plain"]["groups"].items():
        if report["num_examples"]:
            panels.append((f"{name}-shot classes", report, ((calibration.get("scaled") or {}).get("groups") or {}).get(name)))
    fig, axes = _figure(1, len(panels), size=(3.6 * len(panels), 3.8))
    for ax, (title, plain, scaled) in zip(axes[0], panels):
        bins = plain["bins"]
        B = len(bins["count"])
        centres = [(b + 0.5) / B for b in range(B)]
        acc = [float("nan") if a is None else a for a in bins["accuracy"]]
        ax.bar(centres, acc, width=1 / B, edgecolor="black", linewidth=0.5, alpha=0.7, label="before temperature scaling")
        ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
        label = f"{title}\nECE {_fmt(plain['ece'], True)}"
        if scaled is not None:
            acc_t = [float("nan") if a is None else a for a in scaled["bins"]["accuracy"]]
            conf_t = [float("nan") if c is None else c for c in scaled["bins"]["confidence"]]
            ax.plot(conf_t, acc_t, marker="o", ms=3, color="tab:red", label="after temperature scaling")
            label += f" → {_fmt(scaled['ece'], True)} with T"
        ax.set_title(label, fontsize=9)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence (max softmax probability)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("accuracy in the bin")
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"{run['name']}: reliability on the test set (15 bins)")
    return _save(fig, path)


# ------------------------------------------------------------------------------------------ report

CAPTIONS = {
    "class_counts": "Training examples per class N_c (log scale), class 0 the largest. CDT paper Figure 1 (top-left).",
    "accuracy": "Per-class accuracy on the training set (left) and the test set (right), runs overlaid. "
    "CDT paper Figure 3 (a, b): with ERM the training accuracy is ≈100% for every class while the test "
    "accuracy drops drastically for minor classes — the ConvNet over-fits to minor classes; CDT keeps training "
    "accuracy of minor classes lower and raises their test accuracy.",
    "norms": "Per-class classifier norms ‖w_c‖₂. CDT paper Figure 3 (c): ERM learns larger norms for major classes; "
    "re-weighting and re-sampling make them more uniform; CDT does not remove the trend.",
    "deviation": "Feature deviation dis(c): distance between the mean of K sub-sampled training features and the "
    "mean of the test features of class c (ℓ2-normalised features, K = the smallest class size, averaged over R "
    "rounds). CDT paper Figure 3 (d): dis(c) grows as N_c decreases — training and test features of minor "
    "classes occupy different regions.",
    "margins": "Per-class training margin γ_j = min over class-j training examples of z_y − max_{j'≠y} z_{j'} "
    "(LDAM paper eq. 3). Negative: some training example of the class is misclassified. LDAM's bound asks for "
    "larger margins on minor classes (γ_j ∝ N_j^(−1/4)).",
    "diagonal": "Diagonal of the decision-value matrices: the mean decision value w_cᵀ f(x) of class c's own "
    "classifier over class-c examples, training (left) vs test (right), runs overlaid (cosines for a normed-linear "
    "head). CDT paper section 3.3: with ERM the training diagonal is similar across classes, while the test "
    "diagonal drops, most for minor classes; CDT (section 4) raises the minor classes' training diagonal so that "
    "the test diagonal is balanced.",
    "matrices": "Top: mean decision values w_{c'}ᵀ f(x) over the examples of class c (row) for every classifier c' "
    "(column), training (left) vs test (right), on one colour scale (bias excluded, as in the paper's eq. 1; cosines "
    "for a normed-linear head). Bottom: predicted labels, row fractions. "
    "CDT paper Figure 4 (ERM): the diagonal drops from training to test, most for minor classes, while the "
    "off-diagonal values barely change (some in the lower triangle rise) — minor-class test examples are "
    "predicted as major classes. Figure 5 (CDT): minor classes get larger diagonal values in training, and the "
    "test diagonal is more balanced.",
    "tsne": "t-SNE of sampled training (circles) and test (crosses) features, one colour per class. CDT paper "
    "Figures 1 (bottom) and 16: training and test features of minor classes are visibly displaced.",
    "calibration": "Reliability diagrams of the test set (15 equal-width confidence bins), overall and per shot "
    "group (many / medium / few by training size): the bars are the accuracy of the examples whose confidence falls "
    "in the bin, the dashed line is perfect calibration; ECE = Σ_b |B_b|/N · |acc(B_b) − conf(B_b)|. The red line "
    "is the same after temperature scaling, T fitted by NLL on the run's held-out split (never on the test set); "
    "absent when the run has no held-out split. Long-tailed models tend to be over-confident, most on the tail.",
    "epochs": "Per-class training and test accuracy, classifier norms and feature deviation along the epochs "
    "(colour from the largest to the smallest class). CDT paper Figure 7: with ERM the training accuracy of major "
    "classes reaches ≈100% early; all norms rise sharply, major classes' highest; the deviation rises too, minor "
    "classes' highest. CDT keeps these trends but balances the training accuracy across classes.",
}


def _safe_name(name: str) -> str:
    keep = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
    return keep or "run"


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def make_plots(runs: list[dict[str, Any]], out_dir: Path) -> list[tuple[str, str, Path]]:
    """Draw every plot into ``out_dir``; returns ``(section, title, path)`` in report order."""
    plots: list[tuple[str, str, Path]] = []
    plots.append(("class_counts", "Class sizes", plot_class_counts(runs, out_dir / "class_counts.png")))
    plots.append(("accuracy", "Per-class accuracy", plot_per_class(
        runs, [("train_accuracy", "training accuracy"), ("test_accuracy", "test accuracy")],
        out_dir / "per_class_accuracy.png", pct=True)))  # fmt: skip
    plots.append(("norms", "Classifier norms", plot_per_class(
        runs, [("classifier_norms", "classifier norm ‖w_c‖")], out_dir / "classifier_norms.png")))  # fmt: skip
    if all(run.get("feature_deviation") is not None for run in runs):
        plots.append(("deviation", "Feature deviation", plot_per_class(
            runs, [("feature_deviation", "feature deviation dis(c)")], out_dir / "feature_deviation.png")))  # fmt: skip
    if all(run.get("margins") is not None for run in runs):
        plots.append(("margins", "Training margins", plot_per_class(
            runs, [("margins", "training margin γ_j")], out_dir / "margins.png")))  # fmt: skip
    if all(run.get("decision_diagonal") is not None for run in runs):
        plots.append(("diagonal", "Diagonal decision values", plot_per_class(
            runs, [(("decision_diagonal", "train"), "training set: mean w_cᵀ f(x), class c"),
                   (("decision_diagonal", "test"), "test set: mean w_cᵀ f(x), class c")],
            out_dir / "decision_diagonal.png", same_scale=True)))  # fmt: skip
    used: set[str] = set()
    for i, run in enumerate(runs):
        stem = _safe_name(run["name"])
        if stem in used:
            stem = f"{stem}-{i}"
        used.add(stem)
        if run.get("decision_values") is not None:
            plots.append(("matrices", f"Decision values and predictions — {run['name']}",
                          plot_matrices(run, out_dir / f"matrices_{stem}.png")))  # fmt: skip
        if run.get("tsne") is not None:
            plots.append(("tsne", f"t-SNE — {run['name']}", plot_tsne(run, out_dir / f"tsne_{stem}.png")))
        if run.get("calibration") is not None:
            plots.append(("calibration", f"Reliability — {run['name']}",
                          plot_reliability(run, out_dir / f"reliability_{stem}.png")))  # fmt: skip
        if run.get("epochs") and run["epochs"].get("epoch"):
            plots.append(("epochs", f"Along epochs — {run['name']}", plot_epochs(run, out_dir / f"epochs_{stem}.png")))
    return plots


def _summary_table(runs: list[dict[str, Any]]) -> str:
    head = ("run", "epoch", "classes", "N_max/N_min", "train acc (mean per class)", "test acc (mean per class)",
            "test top-1", "test acc, major third", "test acc, minor third", "head")  # fmt: skip
    rows = []
    for run in runs:
        s = run.get("summary", {})
        major, minor = _thirds(run["class_counts"])
        counts = [n for n in run["class_counts"] if n > 0]
        ratio = f"{max(counts) / min(counts):.0f}" if counts else "–"
        epoch = run.get("epoch")
        cells = (run["name"], "–" if epoch is None else str(epoch), str(run["num_classes"]), ratio,
                 _fmt(s.get("train_balanced_accuracy"), True), _fmt(s.get("test_balanced_accuracy"), True),
                 _fmt(s.get("test_top1"), True), _fmt(_mean([run["test_accuracy"][c] for c in major]), True),
                 _fmt(_mean([run["test_accuracy"][c] for c in minor]), True), str(run.get("head", "–")))  # fmt: skip
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    return (
        "<table><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr></thead><tbody>"
        + "".join(rows) + "</tbody></table>"
    )  # fmt: skip


_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1150px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 1em 0; } td, th { border: 1px solid #ccc; padding: 4px 8px; }
th { background: #f3f3f3; } figure { margin: 1.5em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.92em; color: #444; max-width: 60em; } ul.findings li { margin: 0.3em 0; }
"""


def render_html(runs: list[dict[str, Any]], plots: list[tuple[str, str, Path]]) -> str:
    """One HTML page; every PNG embedded as a base64 data URI (no external file, script or style)."""
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>longtail analysis</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>longtail analysis: feature deviation, classifier norms, decision values, margins</h1>",
        "<p>Diagnostics of Ye et al., <i>Identifying and Compensating for Feature Deviation in Imbalanced "
        "Deep Learning</i> (CDT), section 3, and the per-class margins of Cao et al., <i>LDAM</i>, section 3.1. "
        "Every number is in <code>analysis.json</code> next to this file.</p>",
        _summary_table(runs),
    ]
    parts.append("<h2>What these runs show</h2>")
    for run in runs:
        parts.append(f"<h3>{html.escape(run['name'])}</h3><ul class='findings'>")
        for topic, sentence in findings(run):
            parts.append(f"<li><b>{html.escape(topic)}</b>: {html.escape(sentence)}</li>")
        parts.append("</ul>")
    section_titles = {
        "class_counts": "Class sizes", "accuracy": "Per-class accuracy", "norms": "Classifier norms",
        "deviation": "Feature deviation", "margins": "Training margins", "diagonal": "Diagonal decision values",
        "matrices": "Decision-value and prediction matrices", "tsne": "t-SNE of features", "epochs": "Along epochs",
        "calibration": "Calibration",
    }  # fmt: skip
    current = None
    for section, title, path in plots:
        if section != current:
            parts.append(f"<h2>{html.escape(section_titles[section])}</h2>")
            parts.append(f"<p class='caption'>{html.escape(CAPTIONS[section])}</p>")
            current = section
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        parts.append(
            f"<figure><img alt='{html.escape(title, quote=True)}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{html.escape(title)} (<code>{html.escape(path.name)}</code>)</figcaption></figure>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(runs: list[dict[str, Any]], out_dir: str | Path) -> Path:
    """Write ``analysis.json``, the PNGs and ``report.html`` into ``out_dir``; returns the HTML path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    payload = {"runs": _jsonable(runs), "findings": {run["name"]: findings(run) for run in runs}}
    (out / "analysis.json").write_text(json.dumps(payload, indent=1) + "\n")
    plots = make_plots(runs, out)
    page = out / "report.html"
    page.write_text(render_html(runs, plots), encoding="utf-8")
    return page
