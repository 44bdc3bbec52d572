"""Typed run configuration: dataclass sections, YAML files with ``base:`` inheritance, dotted overrides.

A config is a :class:`Config` made of sections (``data``, ``model``, ``loss``, ``rebalance``,
``sampler``, ``optim``, ``train``, ``eval``, ``analysis``, ``runtime``). Every field has a default and a
comment saying what it holds. YAML files set fields; a file may start from another with
``base: other.yaml`` (path relative to the file; the child's keys override the base's, nested
``params`` dicts are merged). Command-line overrides ``key.sub=value`` are parsed and type-checked
against the field's declared type; an unknown key is an error suggesting the closest valid key.

The resolved config (after inheritance and overrides) is saved as ``config.yaml`` in the run
directory and is the single source of truth for ``--resume``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from longtail.errors import ConfigError

# ---------------------------------------------------------------------------------------------------
# Schema
# ---------------------------------------------------------------------------------------------------


@dataclass
class DataConfig:
    """Which long-tailed training set to build and how to feed it (SPEC §1)."""

    name: str = "fashion-mnist"  # registered data set (``longtail list datasets``)
    root: str | None = None  # directory holding the data set files; None = the data set's default_root
    profile: str = "exp"  # imbalance profile: "exp" (long-tailed), "step" or "none" (keep the data as it is)
    imbalance_ratio: float = 100.0  # ρ = N_max / N_min of the training set (1 = keep the balanced set)
    minority_fraction: float = 0.5  # step profile only: fraction μ of classes that are minority classes
    # N_max, the size of the largest class of the profile; null = the smallest class of the original
    # training split (5000 for CIFAR-10). CDT Table 5's balanced set: imbalance_ratio 1, n_max 1240.
    n_max: int | None = None
    seed: int = 0  # seed of the subset draw (which examples are kept) and of the held-out split
    class_order: str = "natural"  # which classes are the head: "natural", "reversed" or "permuted" (seeded)
    # how the kept examples are drawn: "seeded" (one PCG64 stream per class) or "reference" (exactly the
    # LDAM-DRW code's IMBALANCECIFAR draw: np.random.seed(data.seed), class-by-class shuffles; SPEC §10)
    subset_rule: str = "seeded"
    heldout_per_class: int = 0  # K examples per class held out of the training set for tuning (0 = none)
    # test set class distribution: null = as shipped (balanced), "uniform", "train" (the training
    # distribution) or one proportion per class (LDAM paper appendix C.5)
    test_distribution: str | list[float] | None = None
    augment: bool = True  # training augmentation (pad-and-crop + horizontal flip) on/off
    pad: int = 4  # pad-and-crop padding in pixels (0 = no crop)
    flip: bool = True  # random horizontal flip
    workers: int = 4  # decoding processes for streamed (image-file) data sets
    # List-file sets (listfile, imagenet-lt, places-lt): split files of 'relative/path label' lines or a
    # path,label CSV, relative to data.root (or absolute); null = the set's default file names.
    train_list: str | None = None
    test_list: str | None = None
    # Image geometry and statistics (null = the data set's own). image_size: side S of the square
    # network input (image-file sets; each image is resized/cropped to S×S, an S×S image is kept as is).
    image_size: int | None = None
    channels: int | None = None  # 1 (grey) or 3 (RGB): images are converted when decoded
    # per-channel mean / std of pixel/255; "auto" = computed once on the training subset, stored in the run
    # (data_stats.json) and reused on resume
    mean: list[float] | str | None = None
    std: list[float] | str | None = None
    # pad-crop (pad by data.pad, random S×S crop, flip: CIFAR), random-resized-crop (ImageNet),
    # resize-crop (resize to (S·256/224)², random S×S crop, flip: CDT A.4), auto = pad-crop for in-memory
    # sets and images of side <= 64, random-resized-crop above
    train_transform: str = "auto"
    # image-file sets: decode once into the uint8 in-memory path (batched augmentation, pad-crop only);
    # auto = when the decoded images fit data.memory_budget_mb, true = required, false = always stream
    in_memory: bool | str = "auto"
    memory_budget_mb: int = 4096
    # a training image that cannot be decoded mid-run: "stop" (name the file and the step; the last
    # checkpoint is kept) or "skip" (drop it from its batch; results.json counts and lists them)
    on_bad_file: str = "stop"
    # Text data sets only (IMDB): the vocabulary is built on the long-tailed training subset.
    max_len: int = 400  # keep the first max_len tokens of each text (longer ones are truncated)
    min_freq: int = 1  # a token enters the vocabulary if it occurs at least this often in training
    max_vocab: int | None = 25000  # keep the most frequent tokens (besides <pad>, <unk>); null = all


@dataclass
class ModelConfig:
    """The network (SPEC §5)."""

    name: str = "resnet32"  # registered model (``longtail list models``)
    head: str = "linear"  # classifier head: "linear" or "normed-linear" (cosine logits, LDAM)
    params: dict[str, Any] = field(default_factory=dict)  # extra keyword arguments, e.g. {in_channels: 1}
    # start from saved weights: a longtail run directory or checkpoint, or a torchvision-style ResNet
    # state dict (read with weights_only=True; backbone keys must all match, the head is loaded when its
    # shape matches). Applied at the start of a fresh run only.
    init_from: str | None = None
    init_head: bool = True  # also load the head from init_from (when shapes match); false = fresh head (cRT)
    freeze: str = "none"  # "backbone": only the head learns, backbone batch norms keep their statistics


@dataclass
class LossConfig:
    """The training loss (SPEC §2)."""

    name: str = "ce"  # registered loss (``longtail list losses``)
    params: dict[str, Any] = field(default_factory=dict)  # its parameters, e.g. {max_margin: 0.5, s: 30}


@dataclass
class RebalanceConfig:
    """The re-balancing schedule: per-epoch class weights, sampler and loss parameters (SPEC §3)."""

    name: str = "none"  # registered schedule (``longtail list schedules``): none, rw, cb-rw, rs, drw, drs, ...
    params: dict[str, Any] = field(default_factory=dict)  # its parameters, e.g. {start_epoch: 160}


@dataclass
class SamplerConfig:
    """Sampler used when the schedule asks for plain instance sampling.

    The schedule's ``RebalanceState.sampler`` decides the sampler of each epoch; when it is
    ``instance`` and ``name`` is set here, ``name`` is used instead (e.g. square-root sampling
    with no re-weighting). ``params`` are merged under the schedule's ``sampler_params``.
    """

    name: str | None = None  # registered sampler (``longtail list samplers``) or None = follow the schedule
    params: dict[str, Any] = field(default_factory=dict)  # e.g. {q: 0.5} for "power"


@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule (SPEC §3: the LDAM reference CIFAR settings by default)."""

    name: str = "sgd"  # "sgd" or "adam"
    lr: float = 0.1  # peak learning rate (after warm-up)
    momentum: float = 0.9  # SGD momentum
    weight_decay: float = 2e-4  # L2 weight decay (all parameters, as the reference code)
    nesterov: bool = False  # SGD Nesterov momentum
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # Adam β1, β2
    batch_size: int = 128  # GLOBAL batch size (divided evenly between distributed ranks)
    warmup_epochs: int = 5  # linear warm-up: lr·(e+1)/warmup_epochs for 0-based epoch e < warmup_epochs
    schedule: str = "multistep"  # after warm-up: "multistep", "cosine" or "constant"
    milestones: list[int] = field(default_factory=lambda: [160, 180])  # multistep: 0-based epochs where lr ×= gamma
    gamma: float = 0.01  # multistep decay factor (0.01 at 160 and 180 → lr·1e-2, lr·1e-4: the LDAM reference)
    min_lr: float = 0.0  # cosine: final learning rate
    step_every: str = "epoch"  # when the lr changes: "epoch" (LDAM reference) or "iteration" (smooth)


@dataclass
class TrainConfig:
    """Length, seed and checkpoints of the run."""

    epochs: int = 200  # number of training epochs
    seed: int = 0  # seed of model init, sampler draws and augmentation (each derived from (seed, epoch))
    checkpoint_every: int = 1  # write a checkpoint every this many epochs (and always at the end)
    checkpoint_keep: int = 2  # keep the last k checkpoints
    report_best_on_test: bool = False  # also report the best test top-1 over epochs, labelled best_on_test_top1
    drop_last: bool = False  # drop the last incomplete training batch of each epoch


@dataclass
class EvalConfig:
    """Evaluation on the test set (SPEC §6)."""

    # evaluate on the test set (default). false: the test split is not even loaded; the run evaluates
    # on its held-out split (data.heldout_per_class > 0) and results.json holds only the held-out
    # metrics (under "heldout") — the candidate runs of `longtail tune` and the generated -heldout configs,
    # runs that only choose (CDT appendix B.6)
    test: bool = True
    every: int = 10  # evaluate every this many epochs (and always after the last); 0 = only at the end
    # evaluation batch size (global). 128 is the fastest measured on CPU (ResNet-32, bf16: 4,100 img/s
    # at 128, 2,500 at 512, 1,600 at 1024 — `longtail bench speed`); on a GPU raise it (e.g. 1024).
    batch_size: int = 128
    many_threshold: int = 100  # many-shot classes: more than this many training examples
    few_threshold: int = 20  # few-shot classes: fewer than this many training examples


@dataclass
class AnalysisConfig:
    """Snapshots for ``longtail analyze`` (CDT paper §3)."""

    track_every: int = 0  # save snapshots/epoch-<e>.pt every this many epochs (0 = off)


@dataclass
class RuntimeConfig:
    """How to run; none of these changes the method (excluded from the --resume config check)."""

    device: str = "auto"  # "auto" (cuda if available), "cpu", "cuda", "cuda:1", ...
    channels_last: bool = True  # channels-last memory format for convolutional models
    # autocast precision of the backbone: "auto" (default) = bf16 where the hardware runs it natively
    # (CPUs with AVX512-BF16/AMX: 2.0-2.2x faster here, accuracy within noise of fp32 on
    # Fashion-MNIST-LT, see README "Speed"; CUDA with bf16) and fp32 elsewhere; or "fp32", "bf16", "fp16".
    # Heads and losses always compute in fp32.
    precision: str = "auto"
    # torch.compile the model: true, false, or "auto" (default) = compile when the device has a code
    # generator (a C++ compiler for CPU, Triton for CUDA) and the run has >= 4,000 training steps to
    # repay the ~35 s per batch shape it costs (x1.27 on the 2-core CPU, see README "Speed").
    compile: bool | str = "auto"
    # host memory allocator: "tuned" (default) keeps freed blocks in the process instead of mmap/munmap
    # per activation (glibc; CPU runs), "system" leaves the C library's defaults. Changes no result.
    allocator: str = "tuned"
    num_threads: int = 0  # torch intra-op threads (0 = leave torch's default)
    # distributed runs: seconds a collective waits for the other ranks before this rank stops with an
    # error (a rank that died is usually noticed at once; this bounds a rank that hangs)
    dist_timeout: float = 600.0
    progress: str = "auto"  # "auto" (bar on a terminal, one line per epoch otherwise), "bar", "line", "none"


@dataclass
class Config:
    """A complete run configuration."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    rebalance: RebalanceConfig = field(default_factory=RebalanceConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (YAML/JSON serialisable)."""
        return dataclasses.asdict(self)


# Keys that do not change what is computed, so --resume may differ in them.
RUNTIME_ONLY_KEYS = ("runtime.progress", "runtime.num_threads", "runtime.device", "runtime.allocator",
                     "runtime.dist_timeout")

_CHOICES: dict[str, tuple[str, ...]] = {
    "data.profile": ("exp", "step", "none"),
    "data.class_order": ("natural", "reversed", "permuted"),
    "data.on_bad_file": ("stop", "skip"),
    "data.subset_rule": ("seeded", "reference"),
    "model.head": ("linear", "normed-linear"),
    "model.freeze": ("none", "backbone"),
    "data.train_transform": ("auto", "pad-crop", "random-resized-crop", "resize-crop"),
    "optim.name": ("sgd", "adam"),
    "optim.schedule": ("multistep", "cosine", "constant"),
    "optim.step_every": ("epoch", "iteration"),
    "runtime.precision": ("auto", "fp32", "bf16", "fp16"),
    "runtime.progress": ("auto", "bar", "line", "none"),
    "runtime.allocator": ("tuned", "system"),
}


def _sections() -> dict[str, type]:
    hints = typing.get_type_hints(Config)
    return {f.name: hints[f.name] for f in dataclasses.fields(Config)}


def _section_fields(section_cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(section_cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(section_cls)}


def valid_keys() -> list[str]:
    """Every dotted key of the schema, e.g. ``train.epochs``."""
    keys = []
    for section, cls in _sections().items():
        keys.extend(f"{section}.{name}" for name in _section_fields(cls))
    return keys


def _unknown_key_error(key: str, candidates: list[str]) -> ConfigError:
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(candidates)}"
    return ConfigError(f"unknown config key {key!r}{hint}")


# ---------------------------------------------------------------------------------------------------
# Type checking and parsing
# ---------------------------------------------------------------------------------------------------


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if origin is list:
        (inner,) = typing.get_args(tp)
        return f"list of {_type_name(inner)}"
    if origin is dict:
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def _coerce(key: str, value: Any, tp: Any) -> Any:
    """Check ``value`` (already a Python object, from YAML) against the declared type ``tp``."""
    if isinstance(value, str) and "\x00" in value:  # no path, name or choice holds one; the OS refuses it deep inside
        raise ConfigError(f"config key {key!r} contains a NUL character; remove it")
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(key, value, arg)
            except ConfigError:
                continue
        raise _type_error(key, value, tp)
    if tp is Any:
        return value
    if origin is list:
        (inner,) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            value = [value]
        try:
            return [_coerce(key, v, inner) for v in value]
        except ConfigError:
            raise _type_error(key, value, tp) from None
    if origin is dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise _type_error(key, value, tp)
        return {str(k): v for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _type_error(key, value, tp)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _type_error(key, value, tp)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = float(value)
            if not math.isfinite(value):
                raise ConfigError(f"config key {key!r} is {value}; give a finite number")
            return value
        raise _type_error(key, value, tp)
    if tp is str:
        if isinstance(value, str):
            return value
        raise _type_error(key, value, tp)
    raise ConfigError(f"config key {key!r} has an unsupported declared type {tp!r}")  # pragma: no cover


def _type_error(key: str, value: Any, tp: Any) -> ConfigError:
    return ConfigError(
        f"config key {key!r} expects {_type_name(tp)}, got {value!r} ({type(value).__name__})"
    )


def parse_value(text: str) -> Any:
    """Parse a command-line value with YAML rules: ``3`` int, ``0.1``/``1e-4`` float, ``true`` bool,
    ``null``, ``[160, 180]`` list, ``{s: 30}`` mapping; anything else is a string. ``160,180`` is
    also a list."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        # YAML 1.1 reads "1e-4" as a string; accept it as a float.
        try:
            return float(value)
        except ValueError:
            pass
        if "," in value:
            return [parse_value(part.strip()) for part in value.split(",")]
    return value


# ---------------------------------------------------------------------------------------------------
# Building configs
# ---------------------------------------------------------------------------------------------------


def from_dict(raw: dict[str, Any], source: str = "config") -> Config:
    """Build a :class:`Config` from a nested dict, checking keys and types."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections, got {type(raw).__name__}")
    sections = _sections()
    config = Config()
    for section, values in raw.items():
        if section not in sections:
            raise _unknown_key_error(str(section), list(sections) + valid_keys())
        if values is None:
            continue
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: section {section!r} must be a mapping of keys, got {values!r}")
        fields = _section_fields(sections[section])
        target = getattr(config, section)
        for name, value in values.items():
            key = f"{section}.{name}"
            if name not in fields:
                raise _unknown_key_error(key, valid_keys())
            setattr(target, name, _coerce(key, value, fields[name]))
    validate(config)
    return config


def _deep_merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_yaml(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a YAML config file as a dict, resolving ``base:`` (relative to the file) recursively."""
    path = Path(path).resolve()
    if path in _seen:
        raise ConfigError(f"config {path}: 'base' inheritance loops back to itself; remove the cycle")
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; give the path of a YAML config")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"config {path} is not valid YAML: {str(error).splitlines()[0]}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"config {path} is not UTF-8 text (byte {error.start}); give a YAML config file") from None
    except OSError as error:
        raise ConfigError(f"config {path} cannot be read ({error.strerror or error}); check its permissions") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config {path}: the top level must be a mapping of sections")
    base = raw.pop("base", None)
    if base is None:
        return raw
    if not isinstance(base, str):
        raise ConfigError(f"config {path}: 'base' must be a file path, got {base!r}")
    parent = load_yaml(path.parent / base, _seen + (path,))
    return _deep_merge(parent, raw)


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` (or ``section.params.name=value``) overrides to a raw dict."""
    raw = _deep_merge({}, raw)
    sections = _sections()
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key.sub=value (e.g. train.epochs=20)")
        key, text = item.split("=", 1)
        key = key.strip()
        parts = key.split(".")
        if len(parts) < 2 or parts[0] not in sections:
            raise _unknown_key_error(key, valid_keys())
        section, name = parts[0], parts[1]
        fields = _section_fields(sections[section])
        if name not in fields:
            raise _unknown_key_error(key, valid_keys())
        value = parse_value(text)
        node = raw.setdefault(section, {}) or {}
        raw[section] = node
        if len(parts) == 2:
            tp = fields[name]
            if tp is str:
                value = text  # a string field keeps the literal text (e.g. data.root=123 is a path)
            elif typing.get_origin(tp) in (Union, types.UnionType) and str in typing.get_args(tp):
                # str | None keeps the text; bool | str (runtime.compile) keeps true/false as bools
                keep_bool = bool in typing.get_args(tp) and isinstance(value, bool)
                if value is not None and not isinstance(value, list) and not keep_bool:
                    value = text
            node[name] = value
        else:
            if typing.get_origin(fields[name]) is not dict:
                raise ConfigError(f"config key {section}.{name} is not a mapping; {key!r} cannot be set")
            sub = node.setdefault(name, {}) or {}
            node[name] = sub
            for part in parts[2:-1]:
                if not isinstance(sub, dict):
                    break
                sub = sub.setdefault(part, {})
            if not isinstance(sub, dict):  # e.g. `model.params=1 model.params.seed=0`
                raise ConfigError(f"{key!r} cannot be set: its parent is {sub!r}, not a mapping; drop that override")
            sub[parts[-1]] = value
    return raw


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """The resolved config of a YAML file (or the defaults when ``path`` is None) plus overrides."""
    raw = load_yaml(path) if path is not None else {}
    raw = apply_overrides(raw, list(overrides))
    return from_dict(raw, source=str(path) if path else "config")


def validate(config: Config) -> None:
    """Checks across fields and of enumerated values; raises :class:`ConfigError`."""
    flat = flatten(config.to_dict())
    for key, choices in _CHOICES.items():
        if flat[key] not in choices:
            raise ConfigError(f"config key {key!r} is {flat[key]!r}; choose one of {', '.join(choices)}")
    if isinstance(flat["runtime.compile"], str) and flat["runtime.compile"] != "auto":
        raise ConfigError(f"config key 'runtime.compile' is {flat['runtime.compile']!r}; choose true, false or auto")
    positive = ("optim.batch_size", "train.epochs", "eval.batch_size", "train.checkpoint_keep", "train.checkpoint_every",
                "data.max_len", "data.min_freq")
    for key in positive:
        if flat[key] < 1:
            raise ConfigError(f"config key {key!r} must be >= 1, got {flat[key]}")
    non_negative = ("optim.warmup_epochs", "eval.every", "analysis.track_every", "data.heldout_per_class",
                    "optim.lr", "optim.weight_decay", "optim.momentum", "data.pad", "runtime.num_threads",
                    "data.workers")
    for key in non_negative:
        if flat[key] < 0:
            raise ConfigError(f"config key {key!r} must be >= 0, got {flat[key]}")
    if not 1 <= config.runtime.dist_timeout <= 7 * 86400:  # also refuses nan
        raise ConfigError(f"runtime.dist_timeout must be between 1 and 604800 seconds, got {config.runtime.dist_timeout}")
    if config.data.max_vocab is not None and config.data.max_vocab < 0:
        raise ConfigError(f"data.max_vocab must be >= 0 or null (no limit), got {config.data.max_vocab}")
    if config.data.n_max is not None and (isinstance(config.data.n_max, bool) or config.data.n_max < 1):
        raise ConfigError(f"data.n_max must be a positive integer or null (the original's smallest class), "
                          f"got {config.data.n_max}")
    _validate_geometry(config)
    if config.data.imbalance_ratio < 1:
        raise ConfigError(f"data.imbalance_ratio must be >= 1 (N_max / N_min), got {config.data.imbalance_ratio}")
    if config.eval.few_threshold > config.eval.many_threshold:
        raise ConfigError(
            f"eval.few_threshold={config.eval.few_threshold} exceeds eval.many_threshold="
            f"{config.eval.many_threshold}; few-shot must be below many-shot"
        )
    if config.train.report_best_on_test and not config.eval.test:
        raise ConfigError("train.report_best_on_test needs the test set; it cannot be combined with eval.test=false")
    if sorted(config.optim.milestones) != list(config.optim.milestones):
        raise ConfigError(f"optim.milestones must be increasing, got {config.optim.milestones}")
    validate_components(config)


def validate_components(config: Config) -> None:
    """Resolve every registered name of the config and check its parameters, building nothing.

    Runs when a config is loaded, so a typo in ``loss.params`` fails before any data is read or
    anything is written to the run directory (:meth:`longtail.registry.Registry.check`).
    """
    from longtail.registry import DATASETS, LOSSES, MODELS, SAMPLERS, SCHEDULES

    DATASETS.check(config.data.name)
    MODELS.check(config.model.name, config.model.params)
    LOSSES.check(config.loss.name, config.loss.params)
    SCHEDULES.check(config.rebalance.name, config.rebalance.params)
    if config.sampler.name is not None:  # with no name, its params go to the schedule's samplers
        SAMPLERS.check(config.sampler.name, config.sampler.params)


def _validate_geometry(config: Config) -> None:
    data = config.data
    if isinstance(data.in_memory, str) and data.in_memory != "auto":
        raise ConfigError(f"config key 'data.in_memory' is {data.in_memory!r}; choose true, false or auto")
    if data.image_size is not None and data.image_size < 1:
        raise ConfigError(f"data.image_size must be a positive number of pixels or null, got {data.image_size}")
    if data.channels is not None and data.channels not in (1, 3):
        raise ConfigError(f"data.channels must be 1 (grey), 3 (RGB) or null, got {data.channels}")
    if data.memory_budget_mb < 0:
        raise ConfigError(f"data.memory_budget_mb must be >= 0, got {data.memory_budget_mb}")
    for key in ("mean", "std"):
        value = getattr(data, key)
        if isinstance(value, str) and value != "auto":
            raise ConfigError(f"data.{key} is {value!r}; give a list with one number per channel (e.g. [0.5]), auto or null")
        if isinstance(value, list):
            if data.channels is not None and len(value) != data.channels:
                raise ConfigError(f"data.{key} has {len(value)} values for data.channels={data.channels}")
            if key == "std" and any(v <= 0 for v in value):
                raise ConfigError(f"data.std values must be > 0, got {value}")
    if isinstance(data.mean, list) and isinstance(data.std, list) and len(data.mean) != len(data.std):
        raise ConfigError(f"data.mean has {len(data.mean)} values, data.std {len(data.std)}; give one per channel")


# ---------------------------------------------------------------------------------------------------
# Saving and comparing
# ---------------------------------------------------------------------------------------------------


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}`` (params dicts flattened too)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def dump_yaml(config: Config) -> str:
    """The resolved config as YAML text (what is saved as ``config.yaml``)."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False, default_flow_style=None)


def save_config(config: Config, path: str | Path) -> None:
    """Write ``config.yaml`` atomically (temp file + rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(dump_yaml(config))
    tmp.replace(path)


def config_diff(a: Config, b: Config, ignore: tuple[str, ...] = RUNTIME_ONLY_KEYS) -> list[str]:
    """Dotted keys whose values differ between two configs, formatted ``key: a -> b``."""
    fa, fb = flatten(a.to_dict()), flatten(b.to_dict())
    diffs = []
    for key in sorted(set(fa) | set(fb)):
        if key in ignore:
            continue
        if fa.get(key, "<unset>") != fb.get(key, "<unset>"):
            diffs.append(f"{key}: {fa.get(key, '<unset>')!r} -> {fb.get(key, '<unset>')!r}")
    return diffs
