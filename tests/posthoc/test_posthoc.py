"""Post-hoc rules: hand-computed predictions, formulas re-written in float64, NCM vs a loop, tuning, cRT/LWS."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from longtail.errors import ConfigError, DataError
from longtail.metrics import balanced_accuracy
from longtail.models.heads import LinearHead, NormedLinearHead
from longtail.posthoc import tune
from longtail.registry import POSTHOC

D64 = torch.float64


class StandInHead:
    """A minimal head: class_weight_matrix() -> [C, D] and bias."""

    def __init__(self, weight, bias=None):
        self.weight = torch.tensor(weight, dtype=D64)
        self.bias = None if bias is None else torch.tensor(bias, dtype=D64)

    def class_weight_matrix(self):
        return self.weight


# W rows: w_0 = (4, 0) (‖·‖ = 4), w_1 = (0, 1) (1), w_2 = (1, 1) (√2); b = (0.5, 0, −0.4).
HEAD = StandInHead([[4.0, 0.0], [0.0, 1.0], [1.0, 1.0]], [0.5, 0.0, -0.4])
# Wx: x_0 → (4, 2, 3); x_1 → (2, 3, 3.5); x_2 → (8, 0.5, 2.5).
X = torch.tensor([[1.0, 2.0], [0.5, 3.0], [2.0, 0.5]], dtype=D64)
Y = torch.tensor([0, 1, 2])


def _fit(name, features=X, labels=Y, head=HEAD, counts=(5, 5, 5), **params):
    return POSTHOC.create(name, **params).fit(features, labels, head, list(counts))


@pytest.mark.parametrize(
    "tau, bias, expected",
    [
        # τ=0, drop: (4,2,3) (2,3,3.5) (8,.5,2.5)
        (0.0, "drop", [0, 2, 0]),
        # τ=0, keep: (4.5,2,2.6) (2.5,3,3.1) (8.5,.5,2.1)
        (0.0, "keep", [0, 2, 0]),
        # τ=1, drop: (1,2,2.121) (.5,3,2.475) (2,.5,1.768)
        (1.0, "drop", [2, 1, 0]),
        # τ=1, keep: (1.5,2,1.721) (1,3,2.075) (2.5,.5,1.368)
        (1.0, "keep", [1, 1, 0]),
        # τ=1, scale (b/‖w‖ = .125, 0, −.283): (1.125,2,1.838) (.625,3,2.192) (2.125,.5,1.485)
        (1.0, "scale", [1, 1, 0]),
        # τ=0.5, drop (‖w‖^.5 = 2, 1, 1.189): (2,2,2.523) (1,3,2.943) (4,.5,2.102)
        (0.5, "drop", [2, 1, 0]),
    ],
)
def test_tau_norm_hand_computed(tau, bias, expected):
    rule = _fit("tau-norm", tau=tau, bias=bias)
    assert rule.predict(X).tolist() == expected
    # The formula, written out per class in float64.
    W, b = HEAD.weight, HEAD.bias
    for i in range(3):
        for c in range(3):
            norm = math.sqrt(float((W[c] ** 2).sum())) ** tau
            want = (
                float(W[c] @ X[i]) / norm
                + {"drop": 0.0, "keep": float(b[c]), "scale": float(b[c]) / norm}[bias]
            )
            assert math.isclose(float(rule.scores(X)[i, c]), want, rel_tol=1e-12, abs_tol=1e-12)


def test_tau_norm_default_drops_bias():
    assert POSTHOC.create("tau-norm").bias == "drop"


IDENTITY = StandInHead([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # z = f
COUNTS = (100, 10, 1)
F3 = torch.tensor([[3.0, 2.0, 0.5]], dtype=D64)


@pytest.mark.parametrize(
    "tau, expected",
    [
        (0.0, 0),  # (3, 2, .5)
        (0.5, 1),  # n^.5 = (10, 3.162, 1): (.3, .632, .5)
        (1.0, 2),  # (.03, .2, .5)
    ],
)
def test_nc_tau_hand_computed(tau, expected):
    rule = _fit("nc-tau", features=F3, labels=torch.tensor([0]), head=IDENTITY, counts=COUNTS, tau=tau)
    assert rule.predict(F3).tolist() == [expected]
    want = torch.tensor([[3.0 / 100**tau, 2.0 / 10**tau, 0.5]], dtype=D64)
    torch.testing.assert_close(rule.scores(F3), want)


@pytest.mark.parametrize("bias", ["scale", "drop", "keep"])
def test_nc_tau_bias_modes_formula(bias):
    counts = (40, 9, 2)
    rule = _fit("nc-tau", counts=counts, tau=0.7, bias=bias)
    W, b = HEAD.weight, HEAD.bias
    for i in range(3):
        for c in range(3):
            div = counts[c] ** 0.7
            wx = float(W[c] @ X[i])
            want = {"scale": (wx + float(b[c])) / div, "drop": wx / div, "keep": wx / div + float(b[c])}[bias]
            assert math.isclose(float(rule.scores(X)[i, c]), want, rel_tol=1e-12)


@pytest.mark.parametrize(
    "tau, expected",
    [
        # log π = log(n/111) = (−.104, −2.408, −4.710)
        (0.2, 0),  # (3.021, 2.482, 1.442)
        (0.5, 1),  # (3.052, 3.204, 2.855)
        (1.0, 2),  # (3.104, 4.408, 5.210)
    ],
)
def test_logit_adjust_hand_computed(tau, expected):
    rule = _fit("logit-adjust", features=F3, labels=torch.tensor([0]), head=IDENTITY, counts=COUNTS, tau=tau)
    assert rule.predict(F3).tolist() == [expected]
    want = torch.tensor([[3.0, 2.0, 0.5]], dtype=D64) - tau * torch.log(torch.tensor(COUNTS, dtype=D64) / 111)
    torch.testing.assert_close(rule.scores(F3), want)


def test_logit_adjust_includes_bias():
    rule = _fit("logit-adjust", counts=(6, 3, 1), tau=0.0)
    torch.testing.assert_close(rule.scores(X), X @ HEAD.weight.t() + HEAD.bias)


# NCM: class 0 ← (1,0),(2,0) → μ_0 = (1,0); class 1 ← (0,1),(0,3) → μ_1 = (0,1);
# class 2 ← (1,1),(0,1) → μ_2 = ((1/√2)/2, (1/√2 + 1)/2) = (.354, .854), ‖μ_2‖ = .924.
NCM_TRAIN = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 3.0], [1.0, 1.0], [0.0, 1.0]], dtype=D64)
NCM_LABELS = torch.tensor([0, 0, 1, 1, 2, 2])
# q_0 = (.6,.8): euclidean distances (.894, .632, .252), cosines (.6, .8, .969) → 2 and 2.
# q_1 = (.2, 1) → (.196, .981): distances (1.268, .197, .202) → 1; cosines (.196, .9806, .9810) → 2.
NCM_QUERY = torch.tensor([[0.6, 0.8], [0.2, 1.0]], dtype=D64)


@pytest.mark.parametrize("metric, expected", [("euclidean", [2, 1]), ("cosine", [2, 2])])
def test_ncm_hand_computed(metric, expected):
    rule = _fit("ncm", features=NCM_TRAIN, labels=NCM_LABELS, head=None, counts=(2, 2, 2), metric=metric)
    assert rule.predict(NCM_QUERY).tolist() == expected


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_ncm_matches_nearest_mean_loop(metric):
    g = torch.Generator().manual_seed(0)
    train = torch.randn(60, 5, generator=g, dtype=D64)
    labels = torch.randint(0, 4, (60,), generator=g)
    labels[:4] = torch.arange(4)
    query = torch.randn(25, 5, generator=g, dtype=D64)
    rule = _fit("ncm", features=train, labels=labels, head=None, counts=[10] * 4, metric=metric)
    scores = rule.scores(query)
    for i in range(query.shape[0]):
        q = [float(v) for v in query[i]]
        qn = math.sqrt(sum(v * v for v in q))
        q = [v / qn for v in q]
        best, best_value = None, -math.inf
        for c in range(4):
            members = [train[j] for j in range(60) if int(labels[j]) == c]
            mean = [0.0] * 5
            for m in members:
                n = math.sqrt(sum(float(v) ** 2 for v in m))
                mean = [a + float(v) / n / len(members) for a, v in zip(mean, m)]
            if metric == "euclidean":
                value = -math.sqrt(sum((a - b) ** 2 for a, b in zip(q, mean)))
            else:
                value = sum(a * b for a, b in zip(q, mean)) / math.sqrt(sum(b * b for b in mean))
            assert math.isclose(float(scores[i, c]), value, rel_tol=1e-9, abs_tol=1e-12)
            if value > best_value:
                best, best_value = c, value
        assert int(scores[i].argmax()) == best


def test_ncm_class_without_training_examples_never_predicted():
    rule = _fit("ncm", features=NCM_TRAIN[:4], labels=NCM_LABELS[:4], head=None, counts=(2, 2, 0))
    scores = rule.scores(NCM_QUERY)
    assert torch.isinf(scores[:, 2]).all() and rule.predict(NCM_QUERY).tolist() == [1, 1]


def test_rules_on_real_heads():
    g = torch.Generator().manual_seed(3)
    feats = torch.randn(20, 6, generator=g)
    labels = torch.randint(0, 4, (20,), generator=g)
    counts = [50, 20, 5, 2]
    normed = NormedLinearHead(6, 4, generator=g)
    cosines = normed(feats)
    # τ = 1 on a normed (cosine) head ranks like the model; nc-tau at τ = 0 is the model's logits.
    tau = POSTHOC.create("tau-norm", tau=1.0).fit(feats, labels, normed, counts)
    assert torch.equal(tau.predict(feats), cosines.argmax(1))
    nc = POSTHOC.create("nc-tau", tau=0.0).fit(feats, labels, normed, counts)
    torch.testing.assert_close(nc.scores(feats), cosines)
    nc = POSTHOC.create("nc-tau", tau=0.3).fit(feats, labels, normed, counts)
    torch.testing.assert_close(nc.scores(feats), cosines / torch.tensor(counts, dtype=torch.float32) ** 0.3)
    linear = LinearHead(6, 4, generator=g)
    la = POSTHOC.create("logit-adjust", tau=0.0).fit(feats, labels, linear, counts)
    torch.testing.assert_close(la.scores(feats), linear(feats))
    plain = torch.nn.Linear(6, 4)  # nn.Linear works too: weight is [C, D]
    tn = POSTHOC.create("tau-norm", tau=0.0, bias="keep").fit(feats, labels, plain, counts)
    torch.testing.assert_close(tn.scores(feats), plain(feats).detach())


def test_tune_picks_the_only_correct_tau():
    # nc-tau, z = f, counts (100, 1): class 1 predicted iff z_1 > z_0 / 100^τ = z_0 · 10^(−2τ).
    # held-out class-1 example z = (1, .3): correct iff τ > −log10(.3)/2 = .261;
    # held-out class-0 example z = (1, .2): correct iff τ < −log10(.2)/2 = .349  →  only τ = .30 of the grid.
    head = StandInHead([[1.0, 0.0], [0.0, 1.0]])
    train = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=D64)
    heldout = torch.tensor([[1.0, 0.3], [1.0, 0.2]], dtype=D64)
    best, table = tune(
        "nc-tau", None, train, torch.tensor([0, 1]), head, [100, 1], heldout, torch.tensor([1, 0])
    )
    assert best == pytest.approx(0.30)
    assert [row["param"] for row in table] == pytest.approx([i * 0.05 for i in range(21)])
    by_param = {round(row["param"], 2): row["balanced_accuracy"] for row in table}
    assert by_param[0.3] == 1.0 and by_param[0.25] == 0.5 and by_param[0.35] == 0.5 and by_param[0.0] == 0.5


def test_tune_ties_go_to_the_neutral_value():
    # Every τ classifies both examples correctly: the unmodified classifier (τ = 0) wins the tie.
    head = StandInHead([[1.0, 0.0], [0.0, 1.0]])
    feats = torch.tensor([[5.0, 0.0], [0.0, 5.0]], dtype=D64)
    labels = torch.tensor([0, 1])
    best, table = tune("logit-adjust", [0.5, 0.2, 0.0, 1.0], feats, labels, head, [3, 2], feats, labels)
    assert best == 0.0 and all(row["balanced_accuracy"] == 1.0 for row in table)
    best, _ = tune("logit-adjust", [0.5, -0.1, 0.1], feats, labels, head, [3, 2], feats, labels)
    assert best == -0.1  # equally close to 0: the smaller value


def test_default_grids():
    assert POSTHOC.get("tau-norm").default_grid == pytest.approx([i * 0.05 for i in range(21)])
    assert POSTHOC.get("nc-tau").default_grid == pytest.approx([i * 0.05 for i in range(21)])
    assert POSTHOC.get("logit-adjust").default_grid == pytest.approx([i * 0.1 for i in range(21)])


def test_balanced_accuracy_is_mean_per_class_recall():
    labels = torch.tensor([0, 0, 0, 0, 1, 2, 2])
    preds = torch.tensor([0, 0, 0, 1, 0, 2, 0])
    assert balanced_accuracy(labels, preds) == pytest.approx((3 / 4 + 0 + 1 / 2) / 3)


def _imbalanced_problem():
    """Overlapping Gaussian classes, 400/100/25/8 training examples, and an ERM head trained on them."""
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(4, 8, generator=g, dtype=D64)

    def make(counts):
        ys = torch.repeat_interleave(torch.arange(4), torch.tensor(counts))
        return (centers[ys] + torch.randn(len(ys), 8, generator=g, dtype=D64)).float(), ys

    counts = [400, 100, 25, 8]
    train, train_y = make(counts)
    test, test_y = make([200] * 4)
    head = LinearHead(8, 4, generator=torch.Generator().manual_seed(1))
    opt = torch.optim.SGD(head.parameters(), lr=0.1, momentum=0.9)
    for _ in range(300):
        loss = F.cross_entropy(head(train), train_y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return train, train_y, test, test_y, head, counts


@pytest.mark.parametrize("name", ["crt", "lws"])
def test_retraining_improves_balanced_accuracy_and_is_seeded(name):
    train, train_y, test, test_y, head, counts = _imbalanced_problem()
    with torch.no_grad():
        erm = balanced_accuracy(test_y, head(test).argmax(1))
    rule = POSTHOC.create(name, epochs=5, lr=0.1, batch_size=64, seed=4).fit(train, train_y, head, counts)
    after = balanced_accuracy(test_y, rule.predict(test, head))
    assert after > erm + 0.02, (erm, after)
    again = POSTHOC.create(name, epochs=5, lr=0.1, batch_size=64, seed=4).fit(train, train_y, head, counts)
    assert torch.equal(rule.scores(test, head), again.scores(test, head))
    other = POSTHOC.create(name, epochs=5, lr=0.1, batch_size=64, seed=5).fit(train, train_y, head, counts)
    assert not torch.equal(rule.scores(test, head), other.scores(test, head))
    # The head itself is frozen.
    assert torch.equal(head.weight, _imbalanced_problem()[4].weight)


def test_lws_scales_the_logits():
    train, train_y, test, _, head, counts = _imbalanced_problem()
    rule = POSTHOC.create("lws", epochs=2, seed=0).fit(train, train_y, head, counts)
    assert rule.scales.shape == (4,) and not torch.equal(rule.scales, torch.ones(4))
    with torch.no_grad():
        torch.testing.assert_close(rule.scores(test, head), head(test) * rule.scales)


def test_crt_exposes_a_head_and_init_from_head():
    train, train_y, test, _, head, counts = _imbalanced_problem()
    rule = POSTHOC.create("crt", epochs=1, lr=0.0, init="head").fit(train, train_y, head, counts)
    with torch.no_grad():  # lr = 0: the re-trained classifier is the head itself
        torch.testing.assert_close(rule.scores(test), head(test))
    assert rule.class_weight_matrix().shape == (4, 8) and rule.bias.shape == (4,)


def test_crt_with_instance_sampling_is_plain_sgd_over_permutations():
    """CDT Table 5 re-trains a classifier on a given set as it is: the loop written out again in float64."""
    import math

    from longtail.samplers.samplers import InstanceSampler

    train, train_y, test, test_y, head, counts = _imbalanced_problem()
    train64 = train.double()
    rule = POSTHOC.create("crt", epochs=3, lr=0.05, batch_size=50, seed=7, sampler="instance",
                          weight_decay=1e-3, momentum=0.9).fit(train64, train_y, head, counts)
    # by hand: the same initialisation, permutations, cosine lr, momentum SGD with weight decay
    g = torch.Generator().manual_seed(7)
    bound = 1 / math.sqrt(8)
    w = (torch.rand(4, 8, generator=g, dtype=D64) * 2 - 1) * bound
    b = (torch.rand(4, generator=g, dtype=D64) * 2 - 1) * bound
    vw, vb = torch.zeros_like(w), torch.zeros_like(b)
    sampler = InstanceSampler(train_y, seed=7)
    steps = 3 * math.ceil(len(train_y) / 50)
    step = 0
    for epoch in range(3):
        sampler.set_epoch(epoch)
        order = sampler.epoch_indices()
        assert sorted(order.tolist()) == list(range(len(train_y)))  # every example once: no re-balancing
        for start in range(0, len(order), 50):
            idx = order[start:start + 50]
            x, y = train64[idx], train_y[idx]
            p = torch.softmax(x @ w.T + b, dim=1)
            p[torch.arange(len(y)), y] -= 1
            gw, gb = p.T @ x / len(y) + 1e-3 * w, p.sum(0) / len(y) + 1e-3 * b
            lr = 0.5 * 0.05 * (1 + math.cos(math.pi * step / steps))
            vw, vb = 0.9 * vw + gw if step else gw, 0.9 * vb + gb if step else gb
            w, b = w - lr * vw, b - lr * vb
            step += 1
    torch.testing.assert_close(rule.weight, w)
    torch.testing.assert_close(rule.bias, b)
    # on long-tailed features, instance sampling keeps the head-class bias that class-balanced cRT removes
    balanced = POSTHOC.create("crt", epochs=3, lr=0.05, batch_size=50, seed=7).fit(train64, train_y, head, counts)
    assert balanced_accuracy(test_y, balanced.predict(test.double())) > balanced_accuracy(test_y, rule.predict(test.double()))
    with pytest.raises(ConfigError, match="sampler must be one of class-balanced, instance"):
        POSTHOC.create("crt", sampler="square-root")


def test_errors_name_the_problem():
    with pytest.raises(ConfigError, match="before fit"):
        POSTHOC.create("tau-norm").scores(X, HEAD)
    with pytest.raises(DataError, match="class count > 0"):
        _fit("nc-tau", counts=(5, 0, 5))
    with pytest.raises(DataError, match="3 classes but class_counts has 2"):
        _fit("tau-norm", counts=(5, 5), labels=torch.tensor([0, 1, 1]))
    with pytest.raises(ConfigError, match="bias must be one of"):
        POSTHOC.create("tau-norm", bias="maybe")
    with pytest.raises(ConfigError, match="no parameter to tune"):
        tune("ncm", None, X, Y, None, [1, 1, 1], X, Y)
    with pytest.raises(DataError, match="train_labels"):
        _fit("tau-norm", labels=torch.tensor([0, 1]))
    with pytest.raises(ConfigError, match="needs the model's head"):
        _fit("tau-norm", head=None)
    with pytest.raises(ConfigError, match="epochs"):
        POSTHOC.create("crt", epochs=0)
    with pytest.raises(ConfigError, match="unknown parameter.*gamma.*known: tau, bias"):
        POSTHOC.create("tau-norm", gamma=1.0)


def test_every_rule_registered_with_summary():
    assert set(POSTHOC.names()) >= {"tau-norm", "nc-tau", "ncm", "logit-adjust", "crt", "lws"}
    for name in POSTHOC.names():
        assert POSTHOC.summary(name)
