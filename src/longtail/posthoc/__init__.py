"""Post-hoc decision rules on frozen features: tau-norm, nc-tau, ncm, logit-adjust, crt, lws.

``POSTHOC.create(name, **params)`` → rule; ``rule.fit(train_features, train_labels, head,
class_counts)``; ``rule.scores(features, head) -> [N, C]``; :func:`tune` grid-searches a rule's
parameter by balanced accuracy on a held-out split.
"""

from __future__ import annotations

from longtail.posthoc.base import (
    PosthocRule,
    head_bias,
    head_logits,
    head_weight,
    tune,
)
from longtail.posthoc.retrain import ClassifierRetraining, LearnableWeightScaling
from longtail.posthoc.rules import LogitAdjust, NcTau, NearestClassMean, TauNorm

__all__ = [
    "ClassifierRetraining",
    "LearnableWeightScaling",
    "LogitAdjust",
    "NcTau",
    "NearestClassMean",
    "PosthocRule",
    "TauNorm",
    "head_bias",
    "head_logits",
    "head_weight",
    "tune",
]
