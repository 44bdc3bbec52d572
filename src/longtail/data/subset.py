"""Seeded, machine-independent long-tailed subsets, held-out splits and test distributions.

SPEC §1. Which examples are kept depends only on (labels, counts, seed, class order): each class
draws from its own PCG64 stream seeded with ``SeedSequence([seed, purpose, class])`` and keeps
the examples with the smallest uniform keys (a seeded shuffle, then the first n_i — as the LDAM
reference code does with ``np.random.shuffle``). Uniform doubles of PCG64 are part of numpy's
stable stream contract, and a stable argsort breaks no ties by platform, so the same indices come
out on every machine; :func:`fingerprint` pins them in a short hash stored with each run.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from longtail.errors import ConfigError, DataError

CLASS_ORDERS = ("natural", "reversed", "permuted")
SUBSET_RULES = ("seeded", "reference")

# Stream tags: the subset, the held-out split, the class permutation and the test distribution
# draw from unrelated streams even with the same seed.
_TAG_SUBSET, _TAG_HELDOUT, _TAG_ORDER, _TAG_TEST = 0, 1, 2, 3


def _rng(seed: int, tag: int, *extra: int) -> np.random.Generator:
    if seed < 0:
        raise ConfigError(f"seed must be >= 0, got {seed}")
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), tag, *extra])))


def _labels_array(labels: object) -> np.ndarray:
    array = np.asarray(labels.numpy() if hasattr(labels, "numpy") else labels)  # type: ignore[union-attr]
    if array.ndim != 1:
        raise DataError(f"labels must be a 1-d array, got shape {array.shape}")
    if array.size and array.min() < 0:
        raise DataError(f"labels must be >= 0, found {int(array.min())}")
    return array.astype(np.int64, copy=False)


def _shuffled(indices: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    keys = rng.random(indices.shape[0])
    return indices[np.argsort(keys, kind="stable")]


def class_rank_order(num_classes: int, class_order: str = "natural", seed: int = 0) -> list[int]:
    """The class that receives the r-th largest count, for r = 0 … C−1 (SPEC §9).

    ``natural``: class r (class 0 largest, as in the papers); ``reversed``: class C−1−r;
    ``permuted``: a permutation drawn from ``seed``.
    """
    if class_order == "natural":
        return list(range(num_classes))
    if class_order == "reversed":
        return list(range(num_classes - 1, -1, -1))
    if class_order == "permuted":
        keys = _rng(seed, _TAG_ORDER).random(num_classes)
        return np.argsort(keys, kind="stable").tolist()
    raise ConfigError(f"unknown class order {class_order!r}; use one of: {', '.join(CLASS_ORDERS)}")


def per_class_counts(profile_counts: Sequence[int], class_order: str = "natural", seed: int = 0) -> list[int]:
    """Counts indexed by class label: profile count r goes to ``class_rank_order(...)[r]``."""
    ranks = class_rank_order(len(profile_counts), class_order, seed)
    counts = [0] * len(profile_counts)
    for rank, cls in enumerate(ranks):
        counts[cls] = int(profile_counts[rank])
    return counts


def longtail_indices(
    labels: object,
    class_counts: Sequence[int],
    seed: int,
    class_order: str = "natural",
) -> np.ndarray:
    """Sorted int64 indices of a long-tailed subset of a (balanced) labelled set.

    ``class_counts`` is the profile, largest first (:func:`~longtail.data.profiles.longtail_counts`);
    ``class_order`` decides which label gets which count (:func:`class_rank_order`). For each class
    c the kept examples are the first n_c of a seeded shuffle of its examples.
    """
    array = _labels_array(labels)
    counts = per_class_counts(class_counts, class_order, seed)
    available = np.bincount(array, minlength=len(counts))
    if available.shape[0] > len(counts):
        raise DataError(
            f"labels go up to {available.shape[0] - 1} but only {len(counts)} class counts were given"
        )
    kept = []
    for cls, wanted in enumerate(counts):
        if wanted > available[cls]:
            raise DataError(
                f"class {cls} has {available[cls]} examples, fewer than the {wanted} asked for; "
                "lower N_max or the imbalance ratio"
            )
        members = np.flatnonzero(array == cls)
        kept.append(_shuffled(members, _rng(seed, _TAG_SUBSET, cls))[:wanted])
    return np.sort(np.concatenate(kept)).astype(np.int64) if kept else np.zeros(0, np.int64)


def reference_counts(num_classes: int, n_max: int, imbalance_ratio: float, profile: str = "exp",
                     minority_fraction: float = 0.5) -> list[int]:
    """Class counts as the LDAM-DRW reference code computes them (``IMBALANCECIFAR10.get_img_num_per_cls``).

    In floating point, with imb_factor = 1/ρ: ``exp``: n_c = int(N_max · imb_factor^(c/(C−1.0)));
    ``step``: N_max for the first C//2 classes, int(N_max · imb_factor) for the rest. The code fixes
    μ = ½, so another minority fraction is refused.
    """
    if profile not in ("exp", "step"):
        raise ConfigError(f"data.subset_rule=reference needs profile exp or step, got {profile!r}")
    if profile == "step" and minority_fraction != 0.5:
        raise ConfigError(
            f"data.subset_rule=reference draws the reference code's step profile (half of the classes are "
            f"minority classes); minority fraction {minority_fraction:g} needs data.subset_rule=seeded"
        )
    img_max, imb_factor = float(n_max), 1.0 / float(imbalance_ratio)
    if profile == "exp":
        counts = [int(img_max * (imb_factor ** (c / (num_classes - 1.0)))) for c in range(num_classes)]
    else:
        counts = [int(img_max)] * (num_classes // 2) + [int(img_max * imb_factor)] * (num_classes - num_classes // 2)
    if counts[-1] < 1:
        raise ConfigError(
            f"imbalance ratio {imbalance_ratio:g} leaves the smallest class empty (N_max = {n_max}); "
            f"use a ratio <= {n_max}"
        )
    return counts


def reference_longtail_indices(
    labels: object,
    class_counts: Sequence[int],
    seed: int = 0,
    class_order: str = "natural",
) -> np.ndarray:
    """The long-tailed subset drawn exactly as the LDAM-DRW reference code draws it (SPEC §10).

    ``IMBALANCECIFAR10.gen_imbalanced_data`` after ``np.random.seed(seed)``: for each class c in
    ascending label order, the indices of class c in file order are shuffled with
    ``np.random.shuffle`` and the first n_c kept; the kept indices are stacked class by class (this
    order is returned, not sorted: it is the order of the reference's training set). The legacy
    global stream is reproduced with a local ``np.random.RandomState(seed)`` (the same MT19937 stream
    and shuffle algorithm, stable across numpy versions), so global NumPy state is never touched.

    ``class_counts`` is the profile, largest first (:func:`reference_counts`). With ``class_order``
    other than ``natural`` the order only decides which label receives which count
    (:func:`per_class_counts`); the shuffles are the reference's, drawn class by class in ascending
    label order as before, so class c keeps the first n_c of the same shuffled list.
    """
    array = _labels_array(labels)
    counts = per_class_counts(class_counts, class_order, seed)
    available = np.bincount(array, minlength=len(counts))
    if available.shape[0] > len(counts):
        raise DataError(
            f"labels go up to {available.shape[0] - 1} but only {len(counts)} class counts were given"
        )
    if seed < 0:
        raise ConfigError(f"seed must be >= 0, got {seed}")
    rng = np.random.RandomState(int(seed))
    kept = []
    for cls, wanted in enumerate(counts):
        if available[cls] == 0:
            raise DataError(
                f"class {cls} has no example; data.subset_rule=reference draws from every class of a "
                "balanced set (use data.subset_rule=seeded)"
            )
        if wanted > available[cls]:
            raise DataError(
                f"class {cls} has {available[cls]} examples, fewer than the {wanted} asked for; "
                "lower N_max or the imbalance ratio"
            )
        members = np.flatnonzero(array == cls).astype(np.int64)
        rng.shuffle(members)
        kept.append(members[:wanted])
    return np.concatenate(kept).astype(np.int64) if kept else np.zeros(0, np.int64)


def fingerprint(indices: Sequence[int] | np.ndarray) -> str:
    """sha256 of the indices as int64 little-endian bytes, first 16 hex characters."""
    data = np.ascontiguousarray(np.asarray(indices, dtype="<i8")).tobytes()
    return hashlib.sha256(data).hexdigest()[:16]


def heldout_split(labels: object, per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A balanced held-out split of K = ``per_class`` examples per class (CDT paper, appendix B.6).

    Returns ``(train_idx, heldout_idx)``, both sorted, disjoint, covering every index. Classes with
    fewer than K + 1 examples (the held-out split must not take a class's last training example)
    are left out of the held-out split with a warning naming them. K < 0, or K larger than what
    every class can give, is an error. K = 0 returns everything as training data.
    """
    array = _labels_array(labels)
    if per_class < 0:
        raise ConfigError(f"held-out examples per class must be >= 0, got {per_class}")
    all_idx = np.arange(array.shape[0], dtype=np.int64)
    if per_class == 0:
        return all_idx, np.zeros(0, np.int64)
    available = np.bincount(array)
    present = np.flatnonzero(available > 0)
    eligible = [int(c) for c in present if available[c] > per_class]
    if not eligible:
        raise DataError(
            f"held-out split asks for {per_class} examples per class but the largest class has "
            f"{int(available.max()) if available.size else 0}; use fewer held-out examples per class "
            "(every class must keep at least one training example)"
        )
    skipped = [int(c) for c in present if available[c] <= per_class]
    if skipped:
        warnings.warn(
            f"held-out split: {len(skipped)} classes have {per_class} or fewer examples and are left "
            f"out of it: {', '.join(map(str, skipped[:50]))}{' …' if len(skipped) > 50 else ''}",
            stacklevel=2,
        )
    held = [_shuffled(np.flatnonzero(array == c), _rng(seed, _TAG_HELDOUT, c))[:per_class] for c in eligible]
    heldout = np.sort(np.concatenate(held)).astype(np.int64)
    mask = np.ones(array.shape[0], dtype=bool)
    mask[heldout] = False
    return all_idx[mask], heldout


def heldout_classes(class_counts: Sequence[int], per_class: int,
                    names: Sequence[str] | None = None) -> dict[str, object]:
    """Which classes a held-out split of K = ``per_class`` per class tunes on, and which it leaves out.

    ``class_counts``: the long-tailed training set's counts BEFORE the split. A class is tuned on when it
    has more than K examples (it gives K and keeps at least one for training: the rule of
    :func:`heldout_split`); classes with 1..K examples are left out (empty classes are neither).
    Returns ``{"heldout_per_class": K, "classes_tuned_on": [...], "classes_left_out": [...]}`` with
    entries ``{"class", "name", "count"}`` — what ``eval-<rule>.json``, ``longtail tune`` and the
    ``reproduce`` notes report. :func:`require_tunable` refuses fewer than two classes to tune on.
    """
    names = list(names or [])
    entries = [{"class": c, "name": names[c] if c < len(names) else str(c), "count": int(n)}
               for c, n in enumerate(class_counts) if n > 0]
    return {"heldout_per_class": int(per_class),
            "classes_tuned_on": [e for e in entries if e["count"] > per_class],
            "classes_left_out": [e for e in entries if e["count"] <= per_class]}


def require_tunable(classes: dict, what: str = "a held-out split") -> None:
    """``ConfigError`` when ``classes`` (:func:`heldout_classes`) leaves fewer than two classes to tune
    on: a choice made on one class (or none) is no balanced choice at all."""
    tuned, left, k = classes["classes_tuned_on"], classes["classes_left_out"], classes["heldout_per_class"]
    if len(tuned) >= 2:
        return
    named = ", ".join(f"{e['class']} ({e['name']}, {e['count']})" for e in left[:10])
    raise ConfigError(
        f"{what}: holding out {k} images per class leaves {len(tuned)} class(es) to tune on (need at least 2); classes "
        f"with {k} or fewer images are left out: {named}{' …' if len(left) > 10 else ''}; "
        "lower --heldout-per-class (data.heldout_per_class)"
    )


def format_classes(entries: Sequence[dict]) -> str:
    """``[{"class": 5, ...}, {"class": 6, ...}, {"class": 7, ...}, {"class": 9, ...}]`` → ``"5-7, 9"``."""
    ids = sorted(int(e["class"]) for e in entries)
    parts: list[str] = []
    start = prev = None
    for c in ids + [None]:
        if c is not None and prev is not None and c == prev + 1:
            prev = c
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = c
    return ", ".join(parts)


def distribution_counts(available: Sequence[int], proportions: Sequence[float]) -> list[int]:
    """The largest counts n_c = floor(s · p_c) with n_c ≤ available_c for every class.

    s = min over classes with p_c > 0 of available_c / p_c, computed exactly (proportions read as
    the decimals they print as), so the class that binds keeps all its examples.
    """
    if len(proportions) != len(available):
        raise ConfigError(
            f"test distribution has {len(proportions)} proportions but the data set has "
            f"{len(available)} classes"
        )
    fractions = []
    for p in proportions:
        if not math.isfinite(float(p)) or p < 0:
            raise ConfigError(f"test distribution proportions must be finite and >= 0, got {p}")
        fractions.append(Fraction(str(float(p))))
    if not any(fractions):
        raise ConfigError("test distribution proportions are all zero; give at least one positive value")
    scale = min(Fraction(int(a)) / p for a, p in zip(available, fractions) if p > 0)
    return [math.floor(scale * p) for p in fractions]


def apply_test_distribution(labels: object, proportions: Sequence[float], seed: int) -> np.ndarray:
    """Sorted indices of a subset of a balanced test set following known class proportions.

    The LDAM paper (appendix C.5) evaluates with a known non-uniform test label distribution;
    this draws it from the balanced test set: class c keeps n_c examples
    (:func:`distribution_counts`), chosen by a seeded shuffle.
    """
    array = _labels_array(labels)
    available = np.bincount(array, minlength=len(proportions)).tolist()
    counts = distribution_counts(available, proportions)
    kept = [_shuffled(np.flatnonzero(array == c), _rng(seed, _TAG_TEST, c))[:n] for c, n in enumerate(counts)]
    return np.sort(np.concatenate(kept)).astype(np.int64)
