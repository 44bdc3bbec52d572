"""Every reproducible table of the two papers, declared once: rows, their configs and the published numbers.

A :class:`Table` names its source (paper and table) and holds its :class:`Row` s. A row is one cell
group of the paper table: ``(setting, method, posthoc)``, the config (path under ``configs/``) whose
training run produces it, and the paper's numbers for it as printed (one per metric). Three readers:
``tools/make_configs.py`` writes the configs the rows name (and their ``variants``), ``longtail
reproduce`` runs the rows (:mod:`longtail.reproduce.runner`) and :func:`paper_number` looks the
published numbers up. Post-hoc rows are NOT separate trainings: a row with ``posthoc="nc-tau"``
evaluates the run of its config with that rule, its parameter chosen on the run's held-out split
(``data.heldout_per_class``), never on the test set. Rows with ``config=None`` cannot be run yet;
``note`` says what is missing.

Table ids: ``ldam-table1`` (IMDB), ``ldam-table2`` (CIFAR), ``ldam-table3`` (iNaturalist),
``ldam-tiny`` (Tiny-ImageNet, LDAM appendix C.2 as quoted by the CDT paper), ``cdt-table2`` …
``cdt-table9``; ``imagenet-lt`` and ``places-lt`` (not in either paper: the decoupling recipe, each
published number naming its source, "—" where there is none); the analyses ``cdt-table1`` (linear vs
NCM; rows with ``diagnostic`` report an analysis of the run, here NCM with test-set means — never a
model), ``ldam-fig6`` (the pre-annealing linear probe) and ``cdt-erm-pd`` (ERM-PD: a run started from a
``pretrain`` run with its backbone frozen). Sources: LDAM = Cao et al., "Learning Imbalanced Datasets with Label-Distribution-Aware
Margin Loss", NeurIPS 2019; CDT = Ye et al., "Identifying and Compensating for Feature Deviation in
Imbalanced Deep Learning". Every number was checked cell by cell against the two papers' texts.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from longtail.errors import ConfigError


@dataclass(frozen=True)
class Tune:
    """Choose a training hyper-parameter on the held-out split, then retrain (CDT appendix B.6).

    Each value of ``grid`` is trained with ``heldout_config`` (K per class held out); the value with
    the best held-out balanced accuracy (ties: the smaller value) is retrained with the row's
    config on the full training set.
    """

    key: str  # dotted config key, e.g. "loss.params.gamma"
    grid: tuple[float, ...]
    heldout_config: str


@dataclass(frozen=True)
class Row:
    table: str
    setting: str  # e.g. "cifar10-exp100"
    method: str  # the paper's row, e.g. "ldam-drw"; "features/classifier" for cdt-table5
    posthoc: str | None  # post-hoc rule name (longtail list posthoc) or None (the plain classifier)
    config: str | None  # path relative to configs/, None when not runnable yet
    metrics: tuple[str, ...] = ("top1",)
    note: str = ""
    tune: Tune | None = None
    # other parameters of the post-hoc rule, e.g. (("sampler", "instance"),) for cRT
    posthoc_params: tuple[tuple[str, object], ...] = ()
    # fit the post-hoc rule on the training split of this config (under configs/) instead of the
    # run's own (``longtail eval --fit-on``): CDT Table 5 re-trains classifiers on another set
    fit_on: str | None = None
    # the config (under configs/) of the run whose HELD-OUT split chooses the post-hoc parameter (τ), then
    # applied to the run of ``config`` (trained on the full set): CDT appendix B.6 for post-hoc rows,
    # ``longtail eval RUN --posthoc RULE --tau-from HELDOUT_RUN``. None: a rule without a parameter (NCM)
    # or a row whose ``tune`` chooses it jointly with a training value.
    tau_from: str | None = None
    paper: tuple[float | None, ...] = ()  # the published numbers as printed, one per metric (None: "—")
    variants: tuple[str, ...] = ()  # variant files generated beside ``config``: "300ep" (<stem>.300ep.yaml)
    # an analysis of the finished run instead of its test accuracy (longtail.analysis.probes.DIAGNOSTICS):
    # "ncm-test-means" (CDT Table 1's upper bound, never a model), "pre-annealing-probe" (LDAM Fig. 6)
    diagnostic: str | None = None
    # extra config overrides of this row's runs (their run directories are tagged with them), e.g.
    # ("analysis.track_every=160",) for the snapshot LDAM Fig. 6 probes
    overrides: tuple[str, ...] = ()
    # config (under configs/) of a run trained first whose weights start this row's run
    # (``model.init_from=<its run directory>``): CDT's ERM-PD, features pre-trained on Tiny-ImageNet
    pretrain: str | None = None

    @property
    def label(self) -> str:
        post = f" + {POSTHOC_LABELS.get(self.posthoc, self.posthoc)}" if self.posthoc else ""
        diag = f" [{DIAGNOSTIC_LABELS.get(self.diagnostic, self.diagnostic)}]" if self.diagnostic else ""
        return f"{METHOD_LABELS.get(self.method, self.method)}{post}{diag}"


@dataclass(frozen=True)
class Table:
    """One paper table: its rows and where its numbers come from."""

    id: str
    title: str
    source: str  # the paper and table the published numbers are copied from
    rows: tuple[Row, ...]
    printed: str = "accuracy"  # "error": the paper prints 100 − accuracy (LDAM)

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def paper_number(self, setting: str, method: str, posthoc: str | None = None,
                     metric: str = "top1", diagnostic: str | None = None) -> float | None:
        """The published accuracy in % of one cell, or None where the paper has none.

        ``posthoc=None`` also finds a method's only row when a rule is how we produce it (CDT Table 5's
        "imbalanced/balanced" is cRT on the balanced split); ``diagnostic`` selects a diagnostic row."""
        same = [r for r in self.rows if (r.setting, r.method) == (setting, method) and metric in r.metrics
                and r.diagnostic == diagnostic]
        rows = [r for r in same if r.posthoc == posthoc] or (same if posthoc is None and len(same) == 1 else [])
        value = rows[0].paper[rows[0].metrics.index(metric)] if rows and rows[0].paper else None
        return value if value is None or self.printed == "accuracy" else round(100.0 - value, 2)


METHOD_LABELS = {
    "erm": "ERM", "focal": "Focal", "ldam": "LDAM", "cb-rs": "CB-RS", "cb-rw": "CB-RW",
    "cb-focal": "CB-Focal", "cb": "CB", "hg-drs": "HG-DRS", "ldam-hg-drs": "LDAM-HG-DRS", "m-drw": "M-DRW",
    "ldam-drw": "LDAM-DRW", "erm-drw": "ERM-DRW", "rs": "RS", "rw": "RW", "cdt": "CDT",
    "erm-pd": "ERM-PD", "rw-pd": "RW-PD",
}
DIAGNOSTIC_LABELS = {"ncm-test-means": "NCM, test-set means: diagnostic, not a model",
                     "pre-annealing-probe": "linear probe on a balanced set, features before lr annealing"}
POSTHOC_LABELS = {"tau-norm": "‖w‖^τ", "nc-tau": "N_c^τ", "ncm": "NCM", "crt": "cRT", "lws": "LWS"}

_FAMILY = {"cifar10": "cifar10-lt", "cifar100": "cifar100-lt", "tiny-imagenet": "tiny-imagenet-lt"}


def setting_dir(setting: str) -> str:
    """``cifar10-exp100`` → ``cifar10-lt/exp100``; ``inaturalist2018`` → ``inaturalist2018``."""
    for dataset, family in _FAMILY.items():
        prefix = f"{dataset}-"
        if setting.startswith(prefix):
            return f"{family}/{setting[len(prefix):]}"
    return setting


def config_for(setting: str, stem: str, heldout: bool = False) -> str:
    return f"{setting_dir(setting)}/{stem}{'-heldout' if heldout else ''}.yaml"


Cells = Mapping[str | tuple[str, str | None], Sequence[float | None]]


def grid(table: str, settings: Sequence[str], cells: Cells, metrics: tuple[str, ...] = ("top1",), *,
         configs: Mapping[str, str] | None = None, omit: Sequence[tuple[str, str]] = (),
         variants: Mapping[str, tuple[str, ...]] | None = None, note: str = "",
         notes: Mapping[str, str] | None = None, tune: Mapping[str, Tune] | None = None) -> tuple[Row, ...]:
    """The rows of a table printed as a grid: one row per setting and cell key, setting by setting.

    ``cells``: ``method`` or ``(method, posthoc)`` → the printed numbers, setting-major (for each
    setting, one per metric), as the paper's columns. ``configs``: the paper's method name → our
    config stem where they differ, per table (CDT Table 2's "CB" is ``cb-focal``, its Table 7's
    ``cb-rs``). ``omit``: (setting, method) cells the paper leaves out and we do not run.
    ``variants``: method → variant files generated for its rows (default: ``last-decay`` for the
    deferred methods, :data:`DEFERRED`). ``notes``: method → a note on its rows (after ``note``).
    ``tune``: method → the training value its rows choose on the held-out run (the ``Tune``'s
    ``heldout_config`` is filled in per setting: ``<stem>-heldout.yaml``).

    Post-hoc rows (CDT appendix B.6): the rule is applied to the run of the method's config (trained on
    the full set); a rule with a parameter (:data:`TUNED_RULES`) takes it from the held-out split of
    the ``<stem>-heldout.yaml`` run (``tau_from``), or jointly with the tuned training value.
    """
    configs, width, tune = configs or {}, len(metrics), tune or {}
    variants = {**{m: ("last-decay",) for m in DEFERRED}, **(variants or {})}
    notes = notes or {}
    rows = []
    for i, setting in enumerate(settings):
        for key, numbers in cells.items():
            method, posthoc = (key, None) if isinstance(key, str) else key
            if (setting, method) in omit:
                continue
            assert len(numbers) == width * len(settings), (table, key)
            stem = configs.get(method, method)
            text = " ".join(t for t in (note, notes.get(method, "")) if t)
            stem_variants = variants.get(method, ()) if setting not in NO_DECAY else ()
            tuned = tune.get(method)
            if tuned is not None:
                tuned = Tune(tuned.key, tuned.grid, config_for(setting, stem, heldout=True))
            tau_from = (config_for(setting, stem, heldout=True)
                        if posthoc in TUNED_RULES and tuned is None else None)
            rows.append(Row(table, setting, method, posthoc, config_for(setting, stem), metrics, note=text,
                            tune=tuned, tau_from=tau_from, paper=tuple(numbers[i * width:(i + 1) * width]),
                            variants=stem_variants))
    return tuple(rows)


def _cifar(profile: str, ratios: tuple[int, ...]) -> list[str]:
    return [f"{d}-{profile}{r}" for d in ("cifar10", "cifar100") for r in ratios]


TOP15 = ("top1", "top5")
TAU, NC, NCM = "tau-norm", "nc-tau", "ncm"
# post-hoc rules with a parameter chosen on a held-out split (the registry's rules with a ``param_name``;
# a test checks the two agree — this module imports no torch)
TUNED_RULES = frozenset({"tau-norm", "nc-tau", "logit-adjust"})
# CDT's RW baseline weights N_c^(-γ) with γ "a hyperparameter" (§5.1): chosen on the held-out split
RW_TUNE = {"rw": Tune("rebalance.params.power", (0.25, 0.5, 0.75, 1.0), "")}
RW_NOTE = {"rw": "RW power gamma chosen on the held-out split from {0.25, 0.5, 0.75, 1}, then retrained on the full set"}
# methods with a deferred schedule (DRW / DRS from the FIRST lr decay, as the reference code and LDAM Fig. 3
# do); each gets a ``last-decay`` variant: the LDAM text's literal "until the last learning rate decay"
DEFERRED = ("ldam-drw", "m-drw", "erm-drw", "hg-drs", "ldam-hg-drs")
NO_DECAY = ("imdb", "imagenet-lt")  # constant / cosine lr: no last decay to start at, no last-decay variant

# The CDT paper's "CB" rows, per table (CDT prints them without saying which CB loss). Checked cell by cell
# against LDAM Table 2's CB-RS / CB-RW / CB-Focal rows (100 − error, to the printed decimal;
# tests/reproduce/test_reproduce.py recomputes it):
# - Table 7 (step CIFAR): every cell is LDAM's CB-RS (61.9 = 100 − 38.14, 84.6 = 100 − 15.41,
#   33.8 = 100 − 66.23, 53.1 = 100 − 46.92; CB-RW fits only CIFAR-10 ρ=100).
# - Table 2 (long-tailed CIFAR, "best reported results taken from [5, 8]"): CIFAR-10 ρ=100 (74.6) and
#   CIFAR-100 ρ=10 (58.0) are LDAM's CB-Focal; CIFAR-10 ρ=10 (87.5) and CIFAR-100 ρ=100 (39.6) match no
#   LDAM CB row, and ρ=200 is not in LDAM Table 2: those come from Cui et al. (2019) directly, whose best
#   CB loss differs per column. CB-Focal is the closest single config.
# - Table 3 (iNaturalist, reproduced by CDT with Cui et al.'s code): CB-Focal, Cui et al.'s iNaturalist
#   loss (LDAM Table 3's CB-Focal, 61.12 / 81.03, is close to but not CDT's 61.5 / 80.9).
# - Tables 4 and 8 / ldam-tiny (Tiny-ImageNet, "reported results from [5]", LDAM appendix C.2): no LDAM
#   Table 2 cell to check against and the appendix is not in the LDAM text we have, so which CB loss it
#   ran is unchecked; CB-Focal (the CB loss of Cui et al.'s own large-scale experiments) stays.
CB_CONFIGS = {
    "cdt-table2": {"cb": "cb-focal"},
    "cdt-table3": {"cb": "cb-focal"},
    "cdt-table7": {"cb": "cb-rs"},
    "tiny": {"cb": "cb-focal"},  # cdt-table4, cdt-table8, ldam-tiny
}
CB_NOTES = {
    "cdt-table2": {"cb": "CB = CB-Focal: cells at CIFAR-10 rho=100 and CIFAR-100 rho=10 are LDAM Table 2's CB-Focal; "
                         "87.5 / 39.6 and rho=200 are Cui et al.'s best CB loss per column (not CB-Focal everywhere)"},
    "cdt-table3": {"cb": "CB = CB-Focal (Cui et al.'s iNaturalist loss, reproduced by the CDT paper)"},
    "cdt-table7": {"cb": "CB = CB-RS: every cell is LDAM Table 2's CB-RS (100 - error)"},
    "tiny": {"cb": "CB = CB-Focal, unchecked: the numbers are LDAM appendix C.2's, which names no loss we could "
                   "check (not in LDAM Table 2)"},
}

# --- CDT paper, Table 5: (im)balanced features × (im)balanced classifiers, CIFAR-10 ρ=100 ---------------
# Features trained on a balanced (imbalanced) set, the linear classifier re-trained on the imbalanced
# (balanced) one: cRT with instance sampling (the set as it is) fitted on the other config's training
# split. The balanced set has 1,240 images per class, the size of the long-tailed one (12,400 vs 12,406).
_BALANCED, _IMBALANCED = "cifar10-lt/balanced12400/erm.yaml", config_for("cifar10-exp100", "erm")
_RETRAIN = dict(posthoc_params=(("sampler", "instance"),),
                note="classifier re-trained on frozen features: cRT, instance sampling, 10 epochs (our recipe)")

# --- CDT paper, Table 9: selected on the test set (first number) vs on the held-out split (second) ------
_T9 = {  # setting: (tuned key, grid, {posthoc: (test-selected, held-out-selected)})
    "cifar10-exp100": ("loss.params.gamma", (0.1, 0.2, 0.3, 0.4), {None: (79.36, 79.11), NC: (79.36, 79.31)}),
    "cifar100-exp100": ("loss.params.gamma", (0.05, 0.1, 0.15, 0.2), {None: (44.26, 43.92), NC: (44.26, 43.92)}),
    "inaturalist2018": ("rebalance.params.gamma", (0.025, 0.05, 0.075, 0.1), {None: (63.69, 63.40),
                                                                              NC: (63.84, 63.40)}),
}

# --- ImageNet-LT / Places-LT (Liu et al., CVPR 2019) with the decoupling recipe (SPEC §10) -------------
# Neither seed paper reports them. ERM = the decoupling paper's "Joint"; cRT, tau-norm and LWS are its
# classifier-learning rows, here post-hoc rules on the ERM run's features (tau chosen on held-out images).
_LT_CELLS = ("erm", "ldam-drw", "cdt", ("erm", "crt"), ("erm", TAU), ("erm", "lws"))
_KANG_IMAGENET_LT = {"erm": 44.4, ("erm", "crt"): 49.6, ("erm", TAU): 49.4, ("erm", "lws"): 49.9}

# --- CDT paper, Table 1: the same features under three classifiers, CIFAR-10 rho=100 ---------------------
# (linear, NCM with training-set means, NCM with test-set means) per training objective, as printed.
_T1 = {"erm": (71.1, 77.0, 79.5), "rs": (71.2, 72.3, 75.8), "rw": (72.6, 77.0, 79.3), "cdt": (79.4, 78.8, 79.4)}
_T1_ROWS = tuple(
    row for method, (linear, train_means, test_means) in _T1.items() for row in (
        Row("cdt-table1", "cifar10-exp100", method, None, config_for("cifar10-exp100", method), paper=(linear,),
            note="the learned linear classifier"),
        Row("cdt-table1", "cifar10-exp100", method, NCM, config_for("cifar10-exp100", method), paper=(train_means,),
            note="NCM with the training-set class means, on the full run (no parameter to tune)"),
        Row("cdt-table1", "cifar10-exp100", method, None, config_for("cifar10-exp100", method), paper=(test_means,),
            diagnostic="ncm-test-means",
            note="diagnostic, not a model: the class centres are the TEST set's means (the paper's upper bound)"),
    ))

# --- LDAM paper, Figure 6 (appendix C.3): features before lr annealing, linear classifier on a balanced set --
# The figure prints no numbers (our text of the paper lacks the appendix). ERM and LDAM's re-weighting /
# re-sampling baselines as its Figure 3 names them (CB RW, CB RS), CIFAR-10 rho=100 as in Figure 3; the
# snapshot after epoch 160 (the first decay) is kept by analysis.track_every=160.
_FIG6_ROWS = tuple(
    Row("ldam-fig6", "cifar10-exp100", method, None, config_for("cifar10-exp100", method), paper=(None,),
        diagnostic="pre-annealing-probe", overrides=("analysis.track_every=160",),
        note="linear classifier trained on the whole balanced CIFAR-10 training set over the frozen features "
             "of epoch 160 (before the first lr decay); the paper shows this as a figure without numbers")
    for method in ("erm", "cb-rw", "cb-rs"))

# --- CDT paper, section 3.5 / appendix C.1 (Figures 3 and 14): ERM-PD -----------------------------------
# A ResNet-32 pre-trained on the original (balanced) Tiny-ImageNet at 32x32, its features frozen, a linear
# softmax classifier trained on long-tailed CIFAR with ERM (ERM-PD) or re-weighting (RW-PD). Needs the
# config keys model.init_from / model.freeze (issue #15); until the schema has them the rows cannot run.
ERM_PD_PRETRAIN = "tiny-imagenet-32/resnet32.yaml"


def _has_init_keys() -> bool:
    from longtail.config import ModelConfig

    return {"init_from", "freeze"} <= set(ModelConfig.__dataclass_fields__)


_PD_READY = _has_init_keys()
_PD_ROWS = tuple(
    Row("cdt-erm-pd", setting, method, None, config_for(setting, method) if _PD_READY else None, paper=(None,),
        pretrain=ERM_PD_PRETRAIN if _PD_READY else None,
        note="frozen ResNet-32 features pre-trained on Tiny-ImageNet (32x32), linear classifier trained on the "
             "long-tailed set; the paper plots it (Figs. 3, 14) without numbers"
             + ("" if _PD_READY else "; needs the config keys model.init_from and model.freeze (issue #15)"))
    for setting in ("cifar10-exp100", "cifar100-exp100") for method in ("erm-pd", "rw-pd"))

DECLARED: tuple[Table, ...] = (
    Table("ldam-table1", "LDAM paper, Table 1: IMDB (90% of negative reviews removed), 2-layer BiLSTM",
          "LDAM paper, Table 1 (mean error %)", printed="error", rows=grid(
              "ldam-table1", ["imdb"], {"erm": (36.82,), "rs": (26.50,), "rw": (23.66,), "ldam-drw": (17.84,)},
              configs={"rw": "rw-inverse"}, note="our number: balanced accuracy = 100 - the paper's mean error")),
    Table("ldam-table2", "LDAM paper, Table 2: imbalanced CIFAR-10/100, ResNet-32",
          "LDAM paper, Table 2 (top-1 validation error %)", printed="error", rows=grid(
              "ldam-table2", ["cifar10-exp100", "cifar10-exp10", "cifar10-step100", "cifar10-step10",
                              "cifar100-exp100", "cifar100-exp10", "cifar100-step100", "cifar100-step10"], {
                  "erm": (29.64, 13.61, 36.70, 17.50, 61.68, 44.30, 61.45, 45.37),
                  "focal": (29.62, 13.34, 36.09, 16.36, 61.59, 44.22, 61.43, 46.54),
                  "ldam": (26.65, 13.04, 33.42, 15.00, 60.40, 43.09, 60.42, 43.73),
                  "cb-rs": (29.45, 13.21, 38.14, 15.41, 66.56, 44.94, 66.23, 46.92),
                  "cb-rw": (27.63, 13.46, 38.06, 16.20, 66.01, 42.88, 78.69, 47.52),
                  "cb-focal": (25.43, 12.90, 39.73, 16.54, 63.98, 42.01, 80.24, 49.98),
                  "hg-drs": (27.16, 14.03, 29.93, 14.85, None, None, None, None),
                  "ldam-hg-drs": (24.42, 12.72, 24.53, 12.82, None, None, None, None),
                  "m-drw": (24.94, 13.57, 27.67, 13.17, 59.49, 43.78, 58.91, 44.72),
                  "ldam-drw": (22.97, 11.84, 23.08, 12.19, 57.96, 41.29, 54.64, 40.54),
              }, omit=[(s, m) for s in _cifar("exp", (100, 10)) + _cifar("step", (100, 10))
                       if s.startswith("cifar100") for m in ("hg-drs", "ldam-hg-drs")])),  # CIFAR-10 only
    Table("ldam-table3", "LDAM paper, Table 3: iNaturalist 2018, ResNet-50",
          "LDAM paper, Table 3 (top-1 / top-5 error %)", printed="error", rows=grid(
              "ldam-table3", ["inaturalist2018"], {
                  "erm": (42.86, 21.31), "cb-focal": (38.88, 18.97), "erm-drw": (36.27, 16.55),
                  "ldam": (35.42, 16.48), "ldam-drw": (32.00, 14.82)}, TOP15)),
    # LDAM appendix C.2 as reported in the CDT paper's Tables 4 and 8 (rows marked "#": reported results
    # of [5]; the LDAM text we have omits its appendix).
    Table("ldam-tiny", "LDAM paper, appendix C.2: imbalanced Tiny-ImageNet, ResNet-18",
          "LDAM paper, appendix C.2, as quoted in CDT paper Tables 4 and 8 (top-1 / top-5 accuracy %)", rows=grid(
              "ldam-tiny", ["tiny-imagenet-exp100", "tiny-imagenet-exp10", "tiny-imagenet-step100",
                            "tiny-imagenet-step10"], {
                  "erm": (33.8, 57.4, 49.7, 73.3, 36.2, 55.9, 49.1, 72.9),
                  "cb": (27.3, 47.4, 48.4, 71.1, 25.1, 40.9, 45.5, 66.8),
                  "ldam": (36.0, 59.5, 51.9, 75.2, 37.5, 60.7, 50.9, 75.5),
                  "ldam-drw": (37.5, 60.9, 52.8, 76.2, 39.4, 61.9, 52.6, 76.7),
              }, TOP15, configs=CB_CONFIGS["tiny"], notes=CB_NOTES["tiny"])),
    # Table 2 as printed (one decimal). Its reproduced rows mostly round Table 6, but three cells differ
    # in the paper itself: RW CIFAR-10 ρ=200 (68.6 vs 66.53), RW CIFAR-10 ρ=10 (87.1 vs 87.20) and RS
    # CIFAR-100 ρ=10 (54.2 vs 53.48).
    Table("cdt-table2", "CDT paper, Table 2: long-tailed CIFAR-10/100, ResNet-32",
          "CDT paper, Table 2 (top-1 accuracy %)", rows=grid(
              "cdt-table2", _cifar("exp", (200, 100, 10)), {
                  "focal": (65.3, 70.4, 86.8, 35.6, 38.7, 55.8),
                  "cb": (68.9, 74.6, 87.5, 36.2, 39.6, 58.0),
                  "ldam": (69.4, 73.4, 87.0, 36.7, 39.6, 56.9),
                  "ldam-drw": (74.6, 77.0, 88.2, 39.5, 42.0, 58.7),
                  "erm": (65.6, 71.1, 87.2, 35.9, 40.1, 56.9),
                  "rs": (64.4, 71.2, 86.5, 30.6, 34.7, 54.2),
                  "rw": (68.6, 72.6, 87.1, 35.0, 40.5, 57.3),
                  "cdt": (74.7, 79.4, 88.4, 37.8, 44.3, 58.7),
                  ("erm", TAU): (70.3, 75.1, 87.8, 39.3, 43.6, 57.4),
                  ("erm", NC): (75.2, 77.8, 88.3, 40.1, 44.0, 58.1),
                  ("cdt", TAU): (75.3, 79.4, 88.5, 38.8, 44.5, 58.7),
                  ("cdt", NC): (75.5, 79.4, 88.4, 38.1, 44.3, 58.7),
              }, configs=CB_CONFIGS["cdt-table2"], notes={**CB_NOTES["cdt-table2"], **RW_NOTE}, tune=RW_TUNE)),
    Table("cdt-table3", "CDT paper, Table 3: iNaturalist 2018, ResNet-50",
          "CDT paper, Table 3 (top-1 / top-5 accuracy %)", rows=grid(
              "cdt-table3", ["inaturalist2018"], {
                  "ldam": (64.6, 83.5), "ldam-drw": (68.0, 85.2), "erm": (58.8, 80.1), "cb": (61.5, 80.9),
                  "cdt": (63.7, 82.5),
                  ("erm", TAU): (62.8, 82.0), ("erm", NC): (63.1, 82.4),
                  ("cb", TAU): (61.5, 81.2), ("cb", NC): (61.6, 81.4),
                  ("cdt", TAU): (63.8, 82.5), ("cdt", NC): (63.8, 82.5),
              }, TOP15, configs=CB_CONFIGS["cdt-table3"], notes=CB_NOTES["cdt-table3"])),
    Table("cdt-table4", "CDT paper, Table 4: long-tailed Tiny-ImageNet, ResNet-18",
          "CDT paper, Table 4 (top-1 / top-5 accuracy %)", rows=grid(
              "cdt-table4", ["tiny-imagenet-exp100", "tiny-imagenet-exp10"], {
                  "erm": (33.2, 56.3, 49.1, 72.3), "cb": (27.3, 47.4, 48.4, 71.1),
                  "ldam": (36.0, 59.5, 51.9, 75.2), "ldam-drw": (37.5, 60.9, 52.8, 76.2),
                  "cdt": (37.9, 61.4, 52.7, 75.6),
                  ("erm", TAU): (36.4, 59.8, 49.6, 72.8), ("erm", NC): (36.0, 59.9, 49.8, 73.1),
                  ("cdt", TAU): (37.9, 61.4, 52.7, 75.6), ("cdt", NC): (37.9, 61.4, 52.7, 75.6),
              }, TOP15, configs=CB_CONFIGS["tiny"], notes=CB_NOTES["tiny"])),
    Table("cdt-table5", "CDT paper, Table 5: (im)balanced features x (im)balanced classifiers, CIFAR-10 rho=100",
          "CDT paper, Table 5 (top-1 accuracy %)", rows=(
              Row("cdt-table5", "cifar10-exp100", "balanced/balanced", None, _BALANCED, paper=(85.6,)),
              Row("cdt-table5", "cifar10-exp100", "balanced/imbalanced", "crt", _BALANCED, fit_on=_IMBALANCED,
                  paper=(82.2,), **_RETRAIN),
              Row("cdt-table5", "cifar10-exp100", "imbalanced/balanced", "crt", _IMBALANCED, fit_on=_BALANCED,
                  paper=(77.7,), **_RETRAIN),
              Row("cdt-table5", "cifar10-exp100", "imbalanced/imbalanced", None, _IMBALANCED, paper=(71.1,)),
          )),
    Table("cdt-table6", "CDT paper, Table 6: long-tailed CIFAR-10/100, every training objective x post-processing",
          "CDT paper, Table 6 (top-1 accuracy %, two decimals)", rows=grid(
              "cdt-table6", _cifar("exp", (200, 100, 10)), {
                  "erm": (65.62, 71.08, 87.21, 35.91, 40.07, 56.93),
                  "rs": (64.41, 71.22, 86.52, 30.58, 34.74, 53.48),
                  "rw": (66.53, 72.63, 87.20, 35.03, 40.51, 57.32),
                  "cdt": (74.65, 79.36, 88.43, 37.79, 44.26, 58.71),
                  ("erm", TAU): (70.26, 75.13, 87.77, 39.33, 43.62, 57.41),
                  ("erm", NC): (75.21, 77.78, 88.27, 40.08, 44.01, 58.08),
                  ("erm", NCM): (73.16, 77.02, 88.20, 39.42, 42.79, 55.87),
                  ("rs", TAU): (64.41, 71.22, 86.52, 30.58, 34.74, 53.48),
                  ("rs", NC): (66.42, 74.84, 87.16, 32.71, 37.06, 55.13),
                  ("rs", NCM): (66.02, 72.28, 87.31, 31.97, 36.10, 54.06),
                  ("rw", TAU): (66.55, 74.86, 87.76, 37.63, 42.81, 57.71),
                  ("rw", NC): (68.13, 78.65, 88.23, 38.05, 43.23, 58.56),
                  ("rw", NCM): (66.31, 76.95, 88.04, 37.25, 42.46, 55.78),
                  ("cdt", TAU): (75.27, 79.39, 88.45, 38.78, 44.48, 58.71),
                  ("cdt", NC): (75.53, 79.36, 88.43, 38.14, 44.26, 58.71),
                  ("cdt", NCM): (74.75, 78.78, 88.05, 37.89, 42.69, 55.74),
              }, notes=RW_NOTE, tune=RW_TUNE)),
    # 300-epoch variants of the runs the CDT paper trained itself: it trains "some" step-imbalanced runs
    # this long (appendix A.3) without saying which.
    Table("cdt-table7", "CDT paper, Table 7: step-imbalanced CIFAR-10/100, ResNet-32",
          "CDT paper, Table 7 (top-1 accuracy %)", rows=grid(
              "cdt-table7", _cifar("step", (200, 100, 10)), {
                  "focal": (None, 63.9, 83.6, None, 38.6, 53.5),
                  "cb": (None, 61.9, 84.6, None, 33.8, 53.1),
                  "ldam": (60.0, 66.6, 85.0, 39.1, 39.6, 56.3),
                  "ldam-drw": (73.6, 76.9, 87.8, 42.4, 45.4, 59.5),
                  "erm": (60.0, 65.3, 85.1, 38.7, 39.9, 54.6),
                  "rs": (61.3, 65.0, 84.5, 38.0, 38.4, 52.1),
                  "rw": (62.6, 67.3, 85.8, 38.2, 40.1, 55.7),
                  "cdt": (67.6, 76.5, 88.8, 39.0, 43.5, 59.6),
                  ("erm", TAU): (68.8, 73.0, 87.3, 43.2, 45.2, 57.7),
                  ("erm", NC): (74.7, 77.6, 88.3, 41.6, 46.5, 59.8),
                  ("cdt", TAU): (74.1, 76.8, 88.8, 39.7, 46.1, 59.6),
                  ("cdt", NC): (74.4, 76.5, 88.8, 39.6, 43.8, 59.6),
              }, configs=CB_CONFIGS["cdt-table7"], notes={**CB_NOTES["cdt-table7"], **RW_NOTE}, tune=RW_TUNE,
              variants={**{m: ("300ep",) for m in ("erm", "rs", "rw", "cdt", "ldam")},
                        "ldam-drw": ("300ep", "last-decay")})),
    Table("cdt-table8", "CDT paper, Table 8: step-imbalanced Tiny-ImageNet, ResNet-18",
          "CDT paper, Table 8 (top-1 / top-5 accuracy %)", rows=grid(
              "cdt-table8", ["tiny-imagenet-step100", "tiny-imagenet-step10"], {
                  "erm": (36.1, 54.9, 48.6, 72.8), "cb": (25.1, 40.9, 45.5, 66.8),
                  "ldam": (37.5, 60.7, 50.9, 75.5), "ldam-drw": (39.4, 61.9, 52.6, 76.7),
                  "cdt": (39.6, 60.9, 53.3, 76.2),
                  ("erm", TAU): (40.0, 61.9, 51.7, 75.2), ("erm", NC): (40.2, 61.6, 51.7, 75.9),
                  ("cdt", TAU): (40.6, 63.9, 53.3, 76.2), ("cdt", NC): (40.6, 60.9, 53.3, 76.2),
              }, TOP15, configs=CB_CONFIGS["tiny"], notes=CB_NOTES["tiny"])),
    Table("cdt-table9", "CDT paper, Table 9: hyper-parameters chosen on a held-out split, then retrained",
          "CDT paper, Table 9 (top-1 accuracy %, the held-out-selected column)", rows=tuple(
              Row("cdt-table9", setting, "cdt", posthoc, config_for(setting, "cdt"), paper=(heldout,),
                  note="gamma (and tau) chosen on the held-out split, then retrained on the full set "
                       f"(the paper's number with them chosen on the test set: {on_test})",
                  tune=Tune(key, values, config_for(setting, "cdt", heldout=True)))
              for setting, (key, values, cells) in _T9.items() for posthoc, (on_test, heldout) in cells.items())),
    Table("imagenet-lt", "ImageNet-LT (Liu et al. 2019), ResNeXt-50 32x4d, decoupling recipe",
          "Kang et al., ICLR 2020 (Decoupling Representation and Classifier), ImageNet-LT ResNeXt-50, 'All' "
          "top-1 accuracy %: the Classifier-learning table of the authors' classifier-balancing README (Joint "
          "= ERM, cRT, Tau-normalization, LWS); LDAM-DRW and CDT: no published number (—)", rows=grid(
              "imagenet-lt", ["imagenet-lt"], {cell: (_KANG_IMAGENET_LT.get(cell),) for cell in _LT_CELLS})),
    Table("places-lt", "Places-LT (Liu et al. 2019), ImageNet-pretrained ResNet-152, decoupling recipe",
          "no published number transcribed (—): neither seed paper reports Places-LT; Kang et al., ICLR 2020 "
          "report it (ResNet-152) but their numbers are not checked into this table", rows=grid(
              "places-lt", ["places-lt"], {cell: (None,) for cell in _LT_CELLS})),
)

DECLARED += (
    Table("cdt-table1", "CDT paper, Table 1: linear classifier vs nearest class mean on the same features, "
          "CIFAR-10 rho=100", "CDT paper, Table 1 (average test accuracy %)", rows=_T1_ROWS),
    Table("ldam-fig6", "LDAM paper, Figure 6: features before lr annealing (ERM vs RW vs RS), a linear classifier "
          "trained on a balanced set", "LDAM paper, Figure 6 (appendix C.3; plotted, no printed numbers)",
          rows=_FIG6_ROWS),
    Table("cdt-erm-pd", "CDT paper, section 3.5 / appendix C.1: ERM-PD, a linear classifier on features "
          "pre-trained on Tiny-ImageNet", "CDT paper, Figures 3 and 14 (plotted, no printed numbers)", rows=_PD_ROWS),
)

TABLES: dict[str, Table] = {table.id: table for table in DECLARED}
TABLE_TITLES = {table.id: table.title for table in DECLARED}


def table_rows(table: str) -> list[Row]:
    """The rows of ``table`` (``ConfigError`` naming the known tables otherwise)."""
    try:
        return list(TABLES[table].rows)
    except KeyError:
        raise ConfigError(f"unknown table {table!r}; choose one of: {', '.join(TABLES)}") from None


def paper_number(table: str, setting: str, method: str, posthoc: str | None = None,
                 metric: str = "top1", diagnostic: str | None = None) -> float | None:
    """The paper's top-1 (or top-5) accuracy in % for one cell, or None where the paper has none."""
    if metric not in ("top1", "top5"):
        raise KeyError(f"unknown metric {metric!r}; use top1 or top5")
    if table not in TABLES:
        raise KeyError(f"unknown table {table!r}")
    return TABLES[table].paper_number(setting, method, posthoc, metric, diagnostic)


def variant_path(config: str, variant: str | None) -> str:
    """``a/b.yaml`` → ``a/b.<variant>.yaml`` (the caller checks that it exists)."""
    if not variant:
        return config
    return config[: -len(".yaml")] + f".{variant}.yaml"
