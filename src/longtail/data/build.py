"""``build_longtail``: from a data set name to the long-tailed training set, held-out and test splits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from longtail.data.datasets import DatasetInfo, dataset_info, load_split
from longtail.data.profiles import PROFILES, longtail_counts, validate_profile_args
from longtail.data.split import Split
from longtail.data.subset import (
    SUBSET_RULES,
    apply_test_distribution,
    fingerprint,
    heldout_split,
    longtail_indices,
    reference_counts,
    reference_longtail_indices,
)
from longtail.errors import ConfigError


@dataclass
class LongTailData:
    """A long-tailed training set (SPEC §1) with its held-out and (balanced) test splits.

    ``class_counts`` are those of ``train`` (after the held-out split); ``fingerprint`` hashes
    ``train_indices``, the indices into the data set's original training split that are trained
    on — store it with every run.
    """

    train: Split
    heldout: Split | None
    test: Split | None
    class_counts: list[int]
    fingerprint: str
    num_classes: int
    info: DatasetInfo
    train_indices: np.ndarray
    heldout_indices: np.ndarray | None = None
    test_indices: np.ndarray | None = None  # None: the whole test split


# The keyword arguments of build_longtail read from a config's ``data`` section (or from ``longtail data``'s
# arguments, which bear the same names).
SECTION_KEYS = ("root", "profile", "imbalance_ratio", "minority_fraction", "seed", "class_order",
                "heldout_per_class", "test_distribution", "n_max", "train_list", "test_list", "subset_rule")


def build_from(section: Any, **overrides: Any) -> LongTailData:
    """:func:`build_longtail` with ``section.name`` and each of :data:`SECTION_KEYS` that ``section`` has."""
    kwargs = {key: getattr(section, key) for key in SECTION_KEYS if hasattr(section, key)}
    return build_longtail(section.name, **{**kwargs, **overrides})


def heldout_classes_for(section: Any, per_class: int | None = None) -> dict[str, Any]:
    """:func:`~longtail.data.subset.heldout_classes` of the long-tailed training set a config's ``data``
    section builds (the test split is not read), with K = ``per_class`` or ``section.heldout_per_class``:
    the classes a held-out split tunes on and those too small to give K — known before any training."""
    from longtail.data.subset import heldout_classes

    data = build_from(section, heldout_per_class=0, with_test=False)
    k = section.heldout_per_class if per_class is None else per_class
    return heldout_classes(data.class_counts, k, list(data.train.classes))


def build_longtail(
    name: str,
    root: str | Path | None = None,
    profile: str = "exp",
    imbalance_ratio: float = 100.0,
    minority_fraction: float = 0.5,
    seed: int = 0,
    class_order: str = "natural",
    heldout_per_class: int = 0,
    test_distribution: str | Sequence[float] | None = None,
    n_max: int | None = None,
    with_test: bool = True,
    train_list: str | None = None,
    test_list: str | None = None,
    subset_rule: str = "seeded",
) -> LongTailData:
    """Read data set ``name`` and make its long-tailed training set.

    1. counts n_i from the profile (``exp``/``step``, :func:`longtail_counts`; ``none`` keeps the
       data as it is, for naturally long-tailed sets such as iNaturalist), with N_max = ``n_max`` or
       the smallest class of the original training split;
    2. a seeded subset with those counts, class order ``natural``/``reversed``/``permuted``;
       ``subset_rule="seeded"`` draws each class from its own PCG64 stream (indices sorted),
       ``"reference"`` exactly as the LDAM-DRW reference code (SPEC §10: its float counts, one legacy
       MT19937 stream shuffling class by class, indices stacked class by class);
    3. a balanced held-out split of ``heldout_per_class`` examples per class taken from it (CDT
       appendix B.6; 0 = none);
    4. the test split, balanced, or following ``test_distribution`` (class proportions, or
       ``"train"`` for the training distribution; LDAM appendix C.5).

    ``train_list`` / ``test_list``: split files of list-file sets (see :func:`load_split`).
    """
    info = dataset_info(name)
    if profile != "none":
        validate_profile_args(imbalance_ratio, minority_fraction, profile)
    elif class_order != "natural":
        raise ConfigError("class order only applies to the exp and step profiles, not to profile 'none'")
    if profile not in (*PROFILES, "none"):
        raise ConfigError(f"unknown imbalance profile {profile!r}; use one of: exp, step, none")
    if subset_rule not in SUBSET_RULES:
        raise ConfigError(f"unknown subset rule {subset_rule!r}; use one of: {', '.join(SUBSET_RULES)}")
    if subset_rule == "reference" and profile == "none":
        raise ConfigError("data.subset_rule=reference draws a long-tailed subset; it needs profile exp or step, "
                          "not 'none' (use subset_rule=seeded)")
    if heldout_per_class < 0:
        raise ConfigError(f"held-out examples per class must be >= 0, got {heldout_per_class}")

    lists = {"train_list": train_list, "test_list": test_list}
    full_train = load_split(name, root, train=True, **lists)
    num_classes = full_train.num_classes
    available = full_train.class_counts()
    if profile == "none":
        subset_idx = np.arange(len(full_train), dtype=np.int64)
    else:
        largest = min(available) if n_max is None else int(n_max)
        if subset_rule == "reference":
            counts = reference_counts(num_classes, largest, imbalance_ratio, profile, minority_fraction)
            subset_idx = reference_longtail_indices(full_train.labels, counts, seed, class_order)
        else:
            counts = longtail_counts(num_classes, largest, imbalance_ratio, profile, minority_fraction)
            subset_idx = longtail_indices(full_train.labels, counts, seed, class_order)
    longtail = full_train.subset(subset_idx)

    keep_idx, held_idx = heldout_split(longtail.labels, heldout_per_class, seed)
    train = longtail.subset(keep_idx)
    heldout = longtail.subset(held_idx) if heldout_per_class > 0 else None
    train_indices = subset_idx[keep_idx]

    test = test_indices = None
    if with_test:
        test = load_split(name, root, train=False, **lists)
        if test_distribution is not None:
            if isinstance(test_distribution, str):
                if test_distribution == "uniform":
                    proportions: Sequence[float] = [1.0] * num_classes
                elif test_distribution == "train":
                    proportions = [float(c) for c in train.class_counts()]
                else:
                    raise ConfigError(
                        f"unknown test distribution {test_distribution!r}; use 'uniform', 'train' "
                        "or a list of one proportion per class"
                    )
            else:
                proportions = [float(p) for p in test_distribution]
            test_indices = apply_test_distribution(test.labels, proportions, seed)
            test = test.subset(test_indices)

    return LongTailData(
        train=train,
        heldout=heldout,
        test=test,
        class_counts=train.class_counts(),
        fingerprint=fingerprint(train_indices),
        num_classes=num_classes,
        info=info,
        train_indices=train_indices,
        heldout_indices=subset_idx[held_idx] if heldout is not None else None,
        test_indices=test_indices,
    )


def describe(data: LongTailData, section: Any) -> dict[str, Any]:
    """What ``longtail data --json`` prints: the build's arguments (from ``section``, as :func:`build_from`
    reads them), the class counts, totals and the fingerprint."""
    counts = data.class_counts
    keys = ("profile", "imbalance_ratio", "minority_fraction", "class_order", "seed", "heldout_per_class",
            "subset_rule")
    return {
        "dataset": section.name,
        **{key: getattr(section, key, "seeded" if key == "subset_rule" else None) for key in keys},
        "num_classes": data.num_classes,
        "classes": data.train.classes,
        "class_counts": counts,
        "total": sum(counts),
        "heldout_total": len(data.heldout) if data.heldout is not None else 0,
        "fingerprint": data.fingerprint,
    }


def count_histogram(classes: list[str], counts: list[int], width: int = 40, limit: int = 100) -> list[str]:
    """One text line per class: index, name, count and a bar (the middle classes elided past ``limit``)."""
    largest = max(counts) if counts else 0
    name_width = min(24, max((len(c) for c in classes), default=4))
    rows = list(range(len(counts)))
    if len(rows) > limit:
        rows = rows[: limit // 2] + [-1] + rows[-limit // 2 :]
    lines = [f"{'class':>5}  {'name':<{name_width}}  {'count':>7}"]
    for i in rows:
        if i < 0:
            lines.append(f"{'…':>5}  ({len(counts) - limit} classes not shown)")
            continue
        bar = "█" * (round(width * counts[i] / largest) if largest else 0)
        if counts[i] and not bar:
            bar = "▏"
        lines.append(f"{i:>5}  {classes[i][:name_width]:<{name_width}}  {counts[i]:>7}  {bar}")
    return lines
