"""Temperature scaling (Guo et al., ICML 2017), the post-hoc step applied last (SPEC §10).

p = softmax(s / T) with one T > 0 for all classes, where s are the final decision values (the
model's logits, or the scores of a post-hoc rule such as τ-norm). T minimises the NLL on a held-out
split — never on the test set:

    T* = argmin_T  (1/N) Σ_i [ logsumexp_c(s_ic / T) − s_iy_i / T ].

With β = 1/T the objective L(β) = mean(logsumexp(β s) − β s_y) is convex in β: L'(β) = mean(E_p[s] −
s_y) with p = softmax(β s), L''(β) = mean Var_p(s) ≥ 0. :func:`fit_temperature` therefore finds the
root of L' by bisection on log β within [1/T_MAX, 1/T_MIN]; when L' does not change sign there, T is
the bound the NLL decreases towards (reported as such by ``at_bound``). T does not change the argmax,
so accuracy is unchanged; only the probabilities move.

It is not a registered decision rule (``longtail list posthoc``): it composes with any of them and
is applied after them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from longtail.errors import DataError

T_MIN = 1e-2
T_MAX = 1e2


def _nll_slope(scores: torch.Tensor, labels: torch.Tensor, beta: float) -> float:
    """dL/dβ = mean over examples of (E_{softmax(β s)}[s] − s_y)."""
    finite = torch.where(torch.isfinite(scores), scores, torch.zeros_like(scores))
    p = torch.softmax(beta * scores, dim=1)
    expected = (p * finite).sum(dim=1)
    return float((expected - finite.gather(1, labels.view(-1, 1)).squeeze(1)).mean())


@dataclass(frozen=True)
class TemperatureFit:
    """The fitted temperature, the NLL before (T = 1) and after, and whether T hit a bound."""

    temperature: float
    nll_before: float
    nll_after: float
    num_examples: int
    at_bound: bool

    def to_dict(self) -> dict[str, float | int | bool]:
        return {"value": self.temperature, "nll_before": self.nll_before, "nll_after": self.nll_after,
                "num_examples": self.num_examples, "at_bound": self.at_bound}  # fmt: skip


def fit_temperature(scores: torch.Tensor, labels: torch.Tensor, iterations: int = 200) -> TemperatureFit:
    """T > 0 minimising the mean NLL of softmax(``scores`` / T) on (``scores``, ``labels``) — a held-out split.

    Pure function (float64 inside); ``scores`` [N, C] are final decision values, ``labels`` [N].
    """
    from longtail.metrics.calibration import negative_log_likelihood

    if not isinstance(scores, torch.Tensor) or scores.dim() != 2 or scores.shape[0] == 0:
        raise DataError("temperature scaling needs a non-empty [N, C] tensor of held-out scores")
    labels = torch.as_tensor(labels).long().view(-1)
    if labels.numel() != scores.shape[0]:
        raise DataError(f"temperature scaling: {labels.numel()} labels for {scores.shape[0]} held-out scores")
    s = scores.detach().to(torch.float64).cpu()
    labels = labels.cpu()
    lo, hi = math.log(1.0 / T_MAX), math.log(1.0 / T_MIN)  # bounds on log β
    at_bound = False
    if _nll_slope(s, labels, math.exp(lo)) >= 0:
        log_beta, at_bound = lo, True
    elif _nll_slope(s, labels, math.exp(hi)) <= 0:
        log_beta, at_bound = hi, True
    else:
        for _ in range(iterations):
            mid = 0.5 * (lo + hi)
            if _nll_slope(s, labels, math.exp(mid)) < 0:
                lo = mid
            else:
                hi = mid
            if hi - lo < 1e-13:
                break
        log_beta = 0.5 * (lo + hi)
    temperature = math.exp(-log_beta)
    return TemperatureFit(
        temperature=temperature,
        nll_before=negative_log_likelihood(s, labels),
        nll_after=negative_log_likelihood(s / temperature, labels),
        num_examples=int(labels.numel()),
        at_bound=at_bound,
    )


def apply_temperature(scores: torch.Tensor, temperature: float) -> torch.Tensor:
    """``scores / T`` (T > 0): the last step of a decision, after any post-hoc rule."""
    if not (temperature > 0 and math.isfinite(temperature)):
        raise DataError(f"temperature must be a finite number > 0, got {temperature}")
    return scores / temperature


def calibration_fields(scores: torch.Tensor, labels: torch.Tensor, class_counts: list[int], eval_config: Any,
                       temperature: dict[str, Any] | None) -> dict[str, Any]:
    """``eval-<rule>.json``'s ``calibration`` of softmax(scores / T) on the test split; with a temperature
    (``{"value": T, "source": ...}``, as :func:`longtail.inference.decision.build_decision` records it: fitted
    on a held-out split or given — the test split is only scored, never fitted on) also
    ``calibration_before_temperature`` and ``temperature``."""
    from longtail.metrics.calibration import calibration_report

    many, few = eval_config.many_threshold, eval_config.few_threshold
    if temperature is None:
        return {"calibration": calibration_report(scores, labels, class_counts, many, few)}
    return {
        "calibration": calibration_report(apply_temperature(scores, temperature["value"]), labels, class_counts, many, few),
        "calibration_before_temperature": calibration_report(scores, labels, class_counts, many, few),
        "temperature": dict(temperature),
    }
