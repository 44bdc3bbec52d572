"""The papers' diagnostics: classifier norms, feature deviation, decision-value
matrices, margins, t-SNE (:mod:`.stats`), gathered from a run directory (:mod:`.collect`) and drawn
into PNGs, ``analysis.json`` and a self-contained ``report.html`` (:mod:`.report`).

Importing this package imports torch and numpy only; scikit-learn and matplotlib are imported when
a t-SNE or a plot is asked for.
"""

from __future__ import annotations

from longtail.analysis.stats import (
    TSNEResult,
    class_margins,
    class_sizes,
    classifier_norms,
    decision_value_matrix,
    draw_subset_keys,
    example_margins,
    feature_deviation,
    row_normalise,
    sample_per_class,
    tsne_embedding,
)

__all__ = [
    "TSNEResult",
    "class_margins",
    "class_sizes",
    "classifier_norms",
    "decision_value_matrix",
    "draw_subset_keys",
    "example_margins",
    "feature_deviation",
    "row_normalise",
    "sample_per_class",
    "tsne_embedding",
]
