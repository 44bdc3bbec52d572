"""The CDT paper's diagnostics (Ye et al., section 3) and LDAM's per-class margins, as pure functions.

Every function takes tensors and returns tensors or plain lists; nothing here reads files, touches
global random state or imports a plotting library. Per-class statistics of a class with no examples
are ``None`` (never NaN), so the results go into JSON unchanged.

Notation: C classes, features f(x) ∈ R^D, classifier rows w_c (``head.class_weight_matrix()``),
logits z = W f (+ b).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from longtail.errors import LongtailError

_CHUNK = 16384  # rows converted to float64 at a time


def _as_long(labels: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(labels).reshape(-1).long().cpu()


def _to_optional_list(values: torch.Tensor, present: torch.Tensor) -> list[float | None]:
    return [float(v) if ok else None for v, ok in zip(values.tolist(), present.tolist())]


def class_sizes(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Number of examples of each class, int64 [C]."""
    return torch.bincount(_as_long(labels), minlength=num_classes)[:num_classes]


def classifier_norms(weight: torch.Tensor) -> torch.Tensor:
    """‖w_c‖₂ for each row of the classifier matrix W [C, D] → float64 [C] (CDT paper Figure 3 (c))."""
    return torch.linalg.vector_norm(weight.detach().double(), dim=1)


def row_normalise(matrix: torch.Tensor) -> torch.Tensor:
    """Each row divided by its sum (float64); an all-zero row stays zero."""
    matrix = matrix.double()
    sums = matrix.sum(dim=1, keepdim=True)
    return torch.where(sums > 0, matrix / sums.clamp(min=1e-300), torch.zeros_like(matrix))


def decision_value_matrix(
    features: torch.Tensor,
    labels: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean decision values M[c, c'] = (1/N_c) Σ_{i: y_i = c} (w_{c'}ᵀ f(x_i) + b_{c'}), float64 [C, C].

    Rows are the true class c, columns the classifier c' (CDT paper Figures 4 and 5, where the
    paper's decision value has no bias: pass ``bias=None``). The row of a class with no examples
    is all zeros; use :func:`class_sizes` to tell it apart.
    """
    weight = weight.detach().double().cpu()
    num_classes = weight.shape[0]
    labels = _as_long(labels)
    features = features.detach().cpu()
    sums = torch.zeros(num_classes, num_classes, dtype=torch.float64)
    for start in range(0, features.shape[0], _CHUNK):  # chunks keep float64 copies small
        values = features[start : start + _CHUNK].double() @ weight.t()
        if bias is not None:
            values = values + bias.detach().double().cpu()
        sums.index_add_(0, labels[start : start + _CHUNK], values)
    counts = class_sizes(labels, num_classes).double().clamp(min=1)
    return sums / counts[:, None]


def example_margins(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """γ(x, y) = z_y − max_{j ≠ y} z_j for every example, float64 [N] (LDAM paper eq. 2)."""
    logits = logits.detach().cpu()
    labels = _as_long(labels)
    out = torch.empty(logits.shape[0], dtype=torch.float64)
    for start in range(0, logits.shape[0], _CHUNK):
        z = logits[start : start + _CHUNK].double()
        y = labels[start : start + _CHUNK, None]
        out[start : start + _CHUNK] = z.gather(1, y).squeeze(1) - z.scatter(1, y, float("-inf")).max(dim=1).values
    return out


def class_margins(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> list[float | None]:
    """Training margin of class j: γ_j = min_{i: y_i = j} (z_{y_i} − max_{j' ≠ y_i} z_{j'}).

    LDAM paper (Cao et al., NeurIPS 2019) section 3.1, eq. 3. A negative γ_j means some example of
    class j is misclassified. ``None`` for a class with no examples.
    """
    labels = _as_long(labels)
    margins = example_margins(logits, labels)
    mins = torch.full((num_classes,), float("inf"), dtype=torch.float64)
    mins = mins.scatter_reduce(0, labels, margins, reduce="amin", include_self=True)
    return _to_optional_list(mins, class_sizes(labels, num_classes) > 0)


def draw_subset_keys(generator: torch.Generator, rounds: int, class_size: int) -> torch.Tensor:
    """The random keys that define R subsets of one class: uniform float64 [R, N_c].

    Subset r is the K positions with the smallest keys in row r (a uniform K-subset without
    replacement). Both the vectorised :func:`feature_deviation` and a direct per-round loop draw
    the keys with this function, class by class in label order, so one seed gives one set of
    subsets.
    """
    return torch.rand(rounds, class_size, generator=generator, dtype=torch.float64)


def feature_deviation(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    num_classes: int | None = None,
    K: int | None = None,
    rounds: int = 1000,
    seed: int = 0,
) -> list[float | None]:
    """Feature deviation between training and test features of each class (CDT paper, section 3.3).

    With ℓ2-normalised features,
    dis(c) = (1/R) Σ_r ‖mean(S_K^r(train features of c)) − mean(test features of c)‖₂,
    where S_K^r is a uniform K-subset (without replacement) of class c's training features and K
    is the smallest training-class size by default, so that every class's distance is measured
    from means of the same number of examples (footnote 3 of the paper). All R rounds are computed
    at once: a 0/1 membership matrix [R, N_c] (from :func:`draw_subset_keys` and ``topk``) times
    the class's features [N_c, D]. ``None`` for a class with no training or no test examples.
    """
    train_labels, test_labels = _as_long(train_labels), _as_long(test_labels)
    if num_classes is None:
        num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    if rounds < 1:
        raise LongtailError(f"feature deviation needs rounds >= 1, got {rounds}")
    train = train_features.detach().cpu()
    test = test_features.detach().cpu()
    train_sizes = class_sizes(train_labels, num_classes)
    test_sizes = class_sizes(test_labels, num_classes)
    present = (train_sizes > 0) & (test_sizes > 0)
    if not bool(present.any()):
        return [None] * num_classes
    smallest = int(train_sizes[train_sizes > 0].min())
    if K is None:
        K = smallest
    if not 1 <= K <= smallest:
        raise LongtailError(
            f"feature deviation subset size K={K} must be between 1 and the smallest training class "
            f"size {smallest}; lower K or leave it unset"
        )
    generator = torch.Generator().manual_seed(int(seed))
    test_means = torch.zeros(num_classes, train.shape[1], dtype=torch.float64)
    for start in range(0, test.shape[0], _CHUNK):  # normalised in float64, a chunk at a time
        chunk = F.normalize(test[start : start + _CHUNK].double(), dim=1)
        test_means.index_add_(0, test_labels[start : start + _CHUNK], chunk)
    test_means /= test_sizes.clamp(min=1).double()[:, None]
    order = torch.argsort(train_labels, stable=True)
    starts = torch.cumsum(train_sizes, 0) - train_sizes
    result: list[float | None] = [None] * num_classes
    for c in range(num_classes):
        n_c = int(train_sizes[c])
        if n_c == 0:
            continue
        # Keys are drawn for every class with training data (even one without test data) so a
        # class's subsets do not depend on which other classes appear in the test set.
        keys = draw_subset_keys(generator, rounds, n_c)
        if not bool(present[c]):
            continue
        chosen = keys.topk(K, dim=1, largest=False, sorted=False).indices
        membership = torch.zeros(rounds, n_c, dtype=torch.float64).scatter_(1, chosen, 1.0)
        feats = F.normalize(train[order[int(starts[c]) : int(starts[c]) + n_c]].double(), dim=1)
        subset_means = membership @ feats / K
        result[c] = float(torch.linalg.vector_norm(subset_means - test_means[c], dim=1).mean())
    return result


@dataclass
class TSNEResult:
    """A 2-D t-SNE embedding of sampled training and test features."""

    coords: np.ndarray  # float64 [M, 2]
    labels: np.ndarray  # int64 [M]
    is_test: np.ndarray  # bool [M]

    def to_dict(self) -> dict[str, Any]:
        return {
            "coords": self.coords.tolist(),
            "labels": self.labels.tolist(),
            "is_test": self.is_test.tolist(),
        }


def sample_per_class(labels: torch.Tensor, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of up to ``per_class`` examples of each class, drawn without replacement, sorted."""
    labels_np = _as_long(labels).numpy()
    chosen = []
    for c in np.unique(labels_np):
        idx = np.flatnonzero(labels_np == c)
        take = min(per_class, idx.size)
        chosen.append(rng.choice(idx, size=take, replace=False))
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def tsne_embedding(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    per_class: int = 25,
    seed: int = 0,
    perplexity: float = 30.0,
) -> TSNEResult:
    """t-SNE of ``per_class`` training and ``per_class`` test features of each class, embedded together.

    CDT paper Figures 1 (bottom) and 16: 25 training (circle) and test (cross) instances per class.
    Features are ℓ2-normalised first (as for the feature deviation). scikit-learn's TSNE (PCA
    initialisation, ``random_state=seed``); the samples are drawn with ``numpy`` seeded by ``seed``.
    """
    from sklearn.manifold import TSNE  # heavy: imported only when asked for

    rng = np.random.default_rng(seed)
    train_idx = sample_per_class(train_labels, per_class, rng)
    test_idx = sample_per_class(test_labels, per_class, rng)
    feats = torch.cat([train_features[train_idx], test_features[test_idx]]).detach().double().cpu()
    feats = F.normalize(feats, dim=1).numpy()
    labels = np.concatenate([_as_long(train_labels).numpy()[train_idx], _as_long(test_labels).numpy()[test_idx]])
    is_test = np.concatenate([np.zeros(train_idx.size, dtype=bool), np.ones(test_idx.size, dtype=bool)])
    m = feats.shape[0]
    if m < 3:
        raise LongtailError(f"t-SNE needs at least 3 sampled features, got {m}; raise --tsne-per-class")
    tsne = TSNE(
        n_components=2,
        perplexity=min(perplexity, (m - 1) / 3.0),
        init="pca",
        random_state=seed,
    )
    coords = tsne.fit_transform(feats).astype(np.float64)
    return TSNEResult(coords=coords, labels=labels.astype(np.int64), is_test=is_test)
