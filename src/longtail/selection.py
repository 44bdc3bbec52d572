"""The one rule that picks a setting from scored candidates: the best score, ties to the neutral setting.

Used by every tuned number in longtail: ``longtail tune`` (training hyper-parameters, jointly with a
post-hoc rule's τ), ``longtail eval --tune heldout`` (:func:`longtail.posthoc.tune`) and
``longtail reproduce`` (CDT Table 9, through ``longtail.tune``).

A setting is a tuple of values, one per tuned key, in the order the keys were given (the grids of
``longtail tune`` in command-line order, then the post-hoc parameter). Among the settings whose score
is within ``TIE_TOLERANCE`` of the best, the chosen one is the smallest under the lexicographic order
of :func:`tie_key`: the first key decides first — its value closest to that key's neutral value (the
setting that leaves the method unchanged: γ = 0 for CDT, τ = 0 for the post-hoc rules, s = 1 for
LDAM's scale, 0 unless declared), then the smaller value —, then the second key the same way, and so
on. Non-numeric values (e.g. a grid over ``loss.name``) are ordered after every number, by their
position in the grid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

TIE_TOLERANCE = 1e-12  # scores (balanced accuracies, means over seeds) closer than this are tied

TIE_RULE = (
    "best held-out balanced accuracy; ties (within 1e-12) go to the value closest to the neutral setting "
    "(gamma = 0, tau = 0, ...), then to the smaller value, key by key in grid order"
)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value))


def tie_key(setting: Sequence[Any], neutral: Sequence[float], grids: Sequence[Sequence[Any]] | None = None) -> tuple:
    """The order in which tied settings are preferred (smaller first); see the module docstring."""
    key: list[tuple] = []
    for i, (value, zero) in enumerate(zip(setting, neutral)):
        if _is_number(value):
            key.append((0, abs(float(value) - float(zero)), float(value)))
        else:
            position = list(grids[i]).index(value) if grids is not None and value in grids[i] else 0
            key.append((1, position, str(value)))
    return tuple(key)


def choose(
    scores: Sequence[tuple[Sequence[Any], float]],
    neutral: Sequence[float],
    grids: Sequence[Sequence[Any]] | None = None,
    tolerance: float = TIE_TOLERANCE,
) -> int:
    """Index into ``scores`` (``(setting, score)`` pairs; None / NaN scores never win) of the chosen
    setting: the best score, ties broken by :func:`tie_key`."""
    valid = [i for i, (_, s) in enumerate(scores) if s is not None and not math.isnan(s)]
    if not valid:
        raise ValueError("no candidate has a score to choose from")
    best = max(scores[i][1] for i in valid)
    tied = [i for i in valid if math.isclose(scores[i][1], best, rel_tol=0.0, abs_tol=tolerance)]
    return min(tied, key=lambda i: tie_key(scores[i][0], neutral, grids))
