"""Synthetic features/logits with the CDT paper's pattern, for the report tests (no training)."""

from __future__ import annotations

import torch

from longtail.analysis.collect import Outputs, analyze_outputs

COUNTS = [60, 30, 15, 8, 4]


def synthetic_outputs(seed: int, counts=COUNTS, test_per_class: int = 12, dim: int = 8, deviation: float = 1.5):
    """Class centres; test features of class c shifted by a random offset growing with c (minor classes
    deviate more); classifier rows = centres scaled down for minor classes (biased norms)."""
    g = torch.Generator().manual_seed(seed)
    C = len(counts)
    centres = 3 * torch.randn(C, dim, generator=g)
    train_labels = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    test_labels = torch.arange(C).repeat_interleave(test_per_class)
    train = centres[train_labels] + torch.randn(len(train_labels), dim, generator=g)
    offsets = torch.randn(C, dim, generator=g) * torch.linspace(0, deviation, C)[:, None]
    test = centres[test_labels] + offsets[test_labels] + torch.randn(len(test_labels), dim, generator=g)
    weight = centres / centres.norm(dim=1, keepdim=True) * torch.linspace(6.0, 3.0, C)[:, None]
    return Outputs(train, train @ weight.t(), train_labels), Outputs(test, test @ weight.t(), test_labels), weight


def synthetic_run(name: str, seed: int, tsne_per_class: int = 0, epochs: int = 0) -> dict:
    train, test, weight = synthetic_outputs(seed)
    run = analyze_outputs(name, train, test, weight, COUNTS, rounds=20, seed=seed, tsne_per_class=tsne_per_class,
                          epoch=7)  # fmt: skip
    if epochs:
        from longtail.analysis.collect import epoch_statistics

        series: dict = {"epoch": []}
        for e in range(1, epochs + 1):
            stats = epoch_statistics(train, test, weight * e / epochs, rounds=5, seed=seed)
            series["epoch"].append(e)
            for key, value in stats.items():
                series.setdefault(key, []).append(value)
        run["epochs"] = series
    return run
