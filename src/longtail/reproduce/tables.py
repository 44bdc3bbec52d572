"""Every reproducible table of the two papers as a list of rows.

A row is one cell group of a paper table: ``(table, setting, method, posthoc)`` plus the config
(path under ``configs/``) whose training run produces it. Post-hoc columns are NOT separate
trainings: a row with ``posthoc="nc-tau"`` evaluates the run of its config with that rule, its
parameter chosen on the run's held-out split (``data.heldout_per_class``), never on the test set.
Rows with ``config=None`` cannot be run yet; ``note`` says what is missing.

Table ids: ``ldam-table1`` (IMDB), ``ldam-table2`` (CIFAR), ``ldam-table3`` (iNaturalist),
``ldam-tiny`` (Tiny-ImageNet, LDAM appendix C.2 as quoted by the CDT paper), ``cdt-table2`` …
``cdt-table9``.
"""

from __future__ import annotations

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
    setting: str  # e.g. "cifar10-exp100" (the paper_numbers column id)
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

    @property
    def label(self) -> str:
        post = f" + {POSTHOC_LABELS.get(self.posthoc, self.posthoc)}" if self.posthoc else ""
        return f"{METHOD_LABELS.get(self.method, self.method)}{post}"


METHOD_LABELS = {
    "erm": "ERM", "focal": "Focal", "ldam": "LDAM", "cb-rs": "CB-RS", "cb-rw": "CB-RW",
    "cb-focal": "CB-Focal", "cb": "CB", "hg-drs": "HG-DRS", "ldam-hg-drs": "LDAM-HG-DRS", "m-drw": "M-DRW",
    "ldam-drw": "LDAM-DRW", "erm-drw": "ERM-DRW", "rs": "RS", "rw": "RW", "cdt": "CDT",
}
POSTHOC_LABELS = {"tau-norm": "‖w‖^τ", "nc-tau": "N_c^τ", "ncm": "NCM", "crt": "cRT"}

TABLE_TITLES = {
    "ldam-table1": "LDAM paper, Table 1: IMDB (90% of negative reviews removed), 2-layer BiLSTM",
    "ldam-table2": "LDAM paper, Table 2: imbalanced CIFAR-10/100, ResNet-32",
    "ldam-table3": "LDAM paper, Table 3: iNaturalist 2018, ResNet-50",
    "ldam-tiny": "LDAM paper, appendix C.2: imbalanced Tiny-ImageNet, ResNet-18",
    "cdt-table2": "CDT paper, Table 2: long-tailed CIFAR-10/100, ResNet-32",
    "cdt-table3": "CDT paper, Table 3: iNaturalist 2018, ResNet-50",
    "cdt-table4": "CDT paper, Table 4: long-tailed Tiny-ImageNet, ResNet-18",
    "cdt-table5": "CDT paper, Table 5: (im)balanced features x (im)balanced classifiers, CIFAR-10 rho=100",
    "cdt-table6": "CDT paper, Table 6: long-tailed CIFAR-10/100, every training objective x post-processing",
    "cdt-table7": "CDT paper, Table 7: step-imbalanced CIFAR-10/100, ResNet-32",
    "cdt-table8": "CDT paper, Table 8: step-imbalanced Tiny-ImageNet, ResNet-18",
    "cdt-table9": "CDT paper, Table 9: hyper-parameters chosen on a held-out split, then retrained",
}

_FAMILY = {"cifar10": "cifar10-lt", "cifar100": "cifar100-lt", "tiny-imagenet": "tiny-imagenet-lt"}
# The paper's method name -> our config file stem, where they differ.
_CONFIG_STEM = {"cb": "cb-focal"}
_POSTHOC = ("tau-norm", "nc-tau", "ncm")


def setting_dir(setting: str) -> str:
    """``cifar10-exp100`` → ``cifar10-lt/exp100``; ``inaturalist2018`` → ``inaturalist2018``."""
    for dataset, family in _FAMILY.items():
        prefix = f"{dataset}-"
        if setting.startswith(prefix):
            return f"{family}/{setting[len(prefix):]}"
    return setting


def config_for(setting: str, method: str, heldout: bool = False) -> str:
    stem = _CONFIG_STEM.get(method, method)
    return f"{setting_dir(setting)}/{stem}{'-heldout' if heldout else ''}.yaml"


def _cifar(profile: str, ratios: tuple[int, ...], datasets: tuple[str, ...] = ("cifar10", "cifar100")) -> list[str]:
    return [f"{d}-{profile}{r}" for d in datasets for r in ratios]


def _ldam_table1() -> list[Row]:
    stems = {"erm": "erm", "rs": "rs", "rw": "rw-inverse", "ldam-drw": "ldam-drw"}
    return [Row("ldam-table1", "imdb", m, None, f"imdb/{stem}.yaml",
                note="our number: balanced accuracy = 100 - the paper's mean error")
            for m, stem in stems.items()]


def _ldam_table2() -> list[Row]:
    rows = []
    methods = ["erm", "focal", "ldam", "cb-rs", "cb-rw", "cb-focal", "hg-drs", "ldam-hg-drs", "m-drw", "ldam-drw"]
    for setting in _cifar("exp", (100, 10)) + _cifar("step", (100, 10)):
        for method in methods:
            if method in ("hg-drs", "ldam-hg-drs") and setting.startswith("cifar100"):
                continue  # CIFAR-10 only in the paper
            rows.append(Row("ldam-table2", setting, method, None, config_for(setting, method)))
    return rows


def _ldam_table3() -> list[Row]:
    return [Row("ldam-table3", "inaturalist2018", m, None, config_for("inaturalist2018", m), ("top1", "top5"))
            for m in ("erm", "cb-focal", "erm-drw", "ldam", "ldam-drw")]


def _ldam_tiny() -> list[Row]:
    return [Row("ldam-tiny", f"tiny-imagenet-{s}", m, None, config_for(f"tiny-imagenet-{s}", m), ("top1", "top5"))
            for s in ("exp100", "exp10", "step100", "step10") for m in ("erm", "cb", "ldam", "ldam-drw")]


def _posthoc_rows(table: str, setting: str, methods: tuple[str, ...], rules: tuple[str, ...],
                  metrics: tuple[str, ...] = ("top1",)) -> list[Row]:
    return [Row(table, setting, m, rule, config_for(setting, m, heldout=True), metrics)
            for m in methods for rule in rules]


def _cdt_cifar(table: str, profile: str, reported: tuple[str, ...], rules_for: dict[str, tuple[str, ...]]) -> list[Row]:
    rows = []
    for setting in _cifar(profile, (200, 100, 10)):
        for method in reported + ("erm", "rs", "rw", "cdt"):
            rows.append(Row(table, setting, method, None, config_for(setting, method)))
        for method, rules in rules_for.items():
            rows.extend(_posthoc_rows(table, setting, (method,), rules))
    return rows


def _cdt_table3() -> list[Row]:
    s, metrics = "inaturalist2018", ("top1", "top5")
    rows = [Row("cdt-table3", s, m, None, config_for(s, m), metrics) for m in ("ldam", "ldam-drw", "erm", "cb", "cdt")]
    return rows + _posthoc_rows("cdt-table3", s, ("erm", "cb", "cdt"), ("tau-norm", "nc-tau"), metrics)


def _cdt_tiny(table: str, profile: str) -> list[Row]:
    rows, metrics = [], ("top1", "top5")
    for ratio in (100, 10):
        s = f"tiny-imagenet-{profile}{ratio}"
        rows += [Row(table, s, m, None, config_for(s, m), metrics) for m in ("erm", "cb", "ldam", "ldam-drw", "cdt")]
        rows += _posthoc_rows(table, s, ("erm", "cdt"), ("tau-norm", "nc-tau"), metrics)
    return rows


def _cdt_table5() -> list[Row]:
    """Features trained on a balanced (imbalanced) set, the linear classifier re-trained on the
    imbalanced (balanced) one: cRT with instance sampling (the set as it is) fitted on the other
    config's training split. The balanced set has 1,240 images per class, the size of the
    long-tailed one (12,400 vs 12,406)."""
    s = "cifar10-exp100"
    balanced, imbalanced = "cifar10-lt/balanced12400/erm.yaml", config_for(s, "erm")
    retrain = (("sampler", "instance"),)
    note = "classifier re-trained on frozen features: cRT, instance sampling, 10 epochs (our recipe)"
    return [
        Row("cdt-table5", s, "balanced/balanced", None, balanced),
        Row("cdt-table5", s, "balanced/imbalanced", "crt", balanced, note=note,
            posthoc_params=retrain, fit_on=imbalanced),
        Row("cdt-table5", s, "imbalanced/balanced", "crt", imbalanced, note=note,
            posthoc_params=retrain, fit_on=balanced),
        Row("cdt-table5", s, "imbalanced/imbalanced", None, imbalanced),
    ]


_T9_GRIDS = {
    "cifar10-exp100": ("loss.params.gamma", (0.1, 0.2, 0.3, 0.4)),
    "cifar100-exp100": ("loss.params.gamma", (0.05, 0.1, 0.15, 0.2)),
    "inaturalist2018": ("rebalance.params.gamma", (0.025, 0.05, 0.075, 0.1)),
}


def _cdt_table9() -> list[Row]:
    rows = []
    for setting, (key, grid) in _T9_GRIDS.items():
        metrics = ("top1",)  # Table 9 reports top-1 only
        tune = Tune(key, grid, config_for(setting, "cdt", heldout=True))
        for posthoc in (None, "nc-tau"):
            rows.append(Row("cdt-table9", setting, "cdt", posthoc, config_for(setting, "cdt"), metrics,
                            note="gamma (and tau) chosen on the held-out split, then retrained on the full set",
                            tune=tune))
    return rows


def _build() -> dict[str, list[Row]]:
    return {
        "ldam-table1": _ldam_table1(),
        "ldam-table2": _ldam_table2(),
        "ldam-table3": _ldam_table3(),
        "ldam-tiny": _ldam_tiny(),
        "cdt-table2": _cdt_cifar("cdt-table2", "exp", ("focal", "cb", "ldam", "ldam-drw"),
                                 {"erm": ("tau-norm", "nc-tau"), "cdt": ("tau-norm", "nc-tau")}),
        "cdt-table3": _cdt_table3(),
        "cdt-table4": _cdt_tiny("cdt-table4", "exp"),
        "cdt-table5": _cdt_table5(),
        "cdt-table6": _cdt_cifar("cdt-table6", "exp", (), {m: _POSTHOC for m in ("erm", "rs", "rw", "cdt")}),
        "cdt-table7": _cdt_cifar("cdt-table7", "step", ("focal", "cb", "ldam", "ldam-drw"),
                                 {"erm": ("tau-norm", "nc-tau"), "cdt": ("tau-norm", "nc-tau")}),
        "cdt-table8": _cdt_tiny("cdt-table8", "step"),
        "cdt-table9": _cdt_table9(),
    }


TABLES: dict[str, list[Row]] = _build()


def table_rows(table: str) -> list[Row]:
    """The rows of ``table`` (``ConfigError`` naming the known tables otherwise)."""
    try:
        return TABLES[table]
    except KeyError:
        raise ConfigError(f"unknown table {table!r}; choose one of: {', '.join(TABLES)}") from None


def variant_path(config: str, variant: str | None) -> str:
    """``a/b.yaml`` → ``a/b.<variant>.yaml`` (the caller checks that it exists)."""
    if not variant:
        return config
    return config[: -len(".yaml")] + f".{variant}.yaml"
