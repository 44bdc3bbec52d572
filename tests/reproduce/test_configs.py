"""Every config under configs/ loads, validates and builds; the paper-table configs run one step.

Data: tiny files in each data set's real on-disk format (the data tests' writers: CIFAR pickles,
Tiny-ImageNet folders, iNaturalist JSON + JPEGs, aclImdb text folders), written once per module.
The tiny sets are too small for ρ = 100 or K = 10 held-out examples, so the build-and-step test caps
``data.imbalance_ratio`` and ``data.heldout_per_class`` (and the batch size); the configured values
are checked separately against the real data sets' class sizes (``test_real_class_counts``).
"""

from __future__ import annotations

import copy
import math
import warnings
from collections import defaultdict
from pathlib import Path

import pytest
import torch

from _testload import load_file
from longtail.config import load_config, load_yaml
from longtail.data.profiles import longtail_counts
from longtail.registry import DATASETS, LOSSES, MODELS, SAMPLERS, SCHEDULES

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"
ALL_CONFIGS = sorted(CONFIGS.rglob("*.yaml"))
RUNNABLE = [p for p in ALL_CONFIGS if not p.name.startswith("_")]
MINE = [p for p in RUNNABLE if p.relative_to(CONFIGS).parts[0] not in ("demo", "fashion-mnist-lt", "fashion-mnist-lt-500")]
TINY_PER_CLASS = 24  # examples per class in the tiny CIFAR / Tiny-ImageNet files
REAL_N_MAX = {"cifar10": 5000, "cifar100": 500, "tiny-imagenet": 500}


WRITERS = load_file("tests/data/conftest.py")
IMDB_WRITERS = load_file("tests/data_text/test_imdb.py")
MAKE_CONFIGS = load_file("tools/make_configs.py")


def _rel(path: Path) -> str:
    return str(path.relative_to(CONFIGS))


# ---------------------------------------------------------------------------------------------------
# Schema and registry checks (no data)
# ---------------------------------------------------------------------------------------------------


def test_generator_output_is_committed():
    assert MAKE_CONFIGS.main(["--check"]) == 0, "configs/ differ from tools/make_configs.py: run it"


def test_there_are_configs_for_both_papers():
    names = {_rel(p) for p in MINE}
    for expected in ("cifar10-lt/exp100/ldam-drw.yaml", "cifar10-lt/exp100/ldam-drw.paper.yaml",
                     "cifar100-lt/step10/cdt-heldout.yaml", "cifar10-lt/step200/cdt.300ep.yaml",
                     "tiny-imagenet-lt/exp100/ldam-drw.yaml", "inaturalist2018/cdt.yaml", "imdb/ldam-drw.yaml"):
        assert expected in names
    assert len(MINE) > 250


def test_heldout_configs_never_read_the_test_set():
    """Every generated ``-heldout`` config (and its variants) trains with K per class held out and
    ``eval.test: false``: the run only chooses τ / tuned values, so its test split is never loaded; the
    generated header says so."""
    heldout = [p for p in MINE if "-heldout" in p.name]
    assert len(heldout) > 50
    for path in heldout:
        config = load_config(path)
        assert config.eval.test is False and config.data.heldout_per_class > 0, _rel(path)
    written = {rel: text for rel, text in MAKE_CONFIGS.files().items() if rel.name.endswith("-heldout.yaml")}
    assert len(written) == sum(1 for p in heldout if p.name.endswith("-heldout.yaml"))
    for rel, text in written.items():
        assert "\neval:\n  test: false\n" in text, rel
        assert "never reads the test set" in " ".join(line.lstrip("# ") for line in text.splitlines()), rel
    # the plain (full-set) configs keep the test evaluation
    assert all(load_config(p).eval.test for p in MINE if "-heldout" not in p.name)


@pytest.mark.parametrize("path", ALL_CONFIGS, ids=_rel)
def test_config_loads_and_names_registered_components(path: Path):
    config = load_config(path)
    assert config.loss.name in LOSSES
    assert config.rebalance.name in SCHEDULES
    assert config.model.name in MODELS
    assert config.data.name in DATASETS
    assert config.sampler.name is None or config.sampler.name in SAMPLERS
    raw = load_yaml(path)
    assert "base" not in raw  # resolved


def test_presets_differ_only_where_paper_and_code_disagree():
    from longtail.config import config_diff

    ref = load_config(CONFIGS / "cifar10-lt/exp100/ldam-drw.yaml")
    paper = load_config(CONFIGS / "cifar10-lt/exp100/ldam-drw.paper.yaml")
    assert ref.loss.params == {"max_m": 0.5, "s": 30.0}
    assert paper.loss.params["s"] == 10.0
    assert ref.rebalance.params["weights"] == "cb" and ref.rebalance.params["beta"] == 0.9999
    assert paper.rebalance.params["weights"] == "inverse"
    diff = {line.split(":")[0] for line in config_diff(ref, paper)}
    assert diff == {"loss.params.s", "rebalance.params.weights", "rebalance.params.power"}


def test_reference_settings_match_spec():
    cifar = load_config(CONFIGS / "cifar10-lt/exp100/erm.yaml")
    assert (cifar.optim.lr, cifar.optim.batch_size, cifar.optim.warmup_epochs) == (0.1, 128, 5)
    assert (cifar.optim.milestones, cifar.optim.gamma, cifar.optim.weight_decay) == ([160, 180], 0.01, 2e-4)
    assert (cifar.train.epochs, cifar.model.name, cifar.data.pad) == (200, "resnet32", 4)
    step300 = load_config(CONFIGS / "cifar10-lt/step100/ldam-drw.300ep.yaml")
    assert (step300.train.epochs, step300.optim.milestones, step300.rebalance.params["start_epoch"]) == (
        300, [240, 270], 240)
    inat = load_config(CONFIGS / "inaturalist2018/ldam-drw.yaml")
    assert (inat.optim.lr, inat.optim.batch_size, inat.optim.milestones, inat.optim.gamma) == (0.2, 512, [30, 60, 80], 0.1)
    assert (inat.train.epochs, inat.model.name, inat.loss.params["max_m"]) == (90, "resnet50", 0.3)
    cdt = load_config(CONFIGS / "inaturalist2018/cdt.yaml")
    assert cdt.rebalance.name == "deferred-cdt" and cdt.rebalance.params["start_epoch"] == 45
    tiny = load_config(CONFIGS / "tiny-imagenet-lt/exp10/erm.yaml")
    assert (tiny.train.epochs, tiny.optim.milestones, tiny.data.pad, tiny.model.name) == (
        400, [250, 320, 380], 8, "resnet18")
    assert load_config(CONFIGS / "cifar10-lt/exp100/cdt.yaml").loss.params["gamma"] == 0.3
    assert load_config(CONFIGS / "cifar10-lt/exp100/rw.yaml").rebalance.params == {"power": 0.5}
    assert load_config(CONFIGS / "imdb/rw-inverse.yaml").rebalance.params == {"power": 1.0}
    assert load_config(CONFIGS / "cifar10-lt/exp100/erm-heldout.yaml").data.heldout_per_class == 3
    assert load_config(CONFIGS / "inaturalist2018/erm-heldout.yaml").data.heldout_per_class == 10


@pytest.mark.parametrize("path", [p for p in MINE if load_config(p).data.name in REAL_N_MAX], ids=_rel)
def test_real_class_counts(path: Path):
    """With the real data set sizes, every class keeps examples and the held-out split is not empty."""
    config = load_config(path)
    data = config.data
    counts = longtail_counts(_num_classes(data.name), REAL_N_MAX[data.name], data.imbalance_ratio,
                             data.profile, data.minority_fraction)
    assert min(counts) >= 1
    # N_min = floor(N_max / ρ): CIFAR-100 ρ=200 has 2 examples in its smallest class (500/200 = 2.5)
    assert (max(counts), min(counts)) == (REAL_N_MAX[data.name], math.floor(REAL_N_MAX[data.name] / data.imbalance_ratio))
    if data.heldout_per_class:
        assert max(counts) > data.heldout_per_class  # held-out split possible (small classes are left out)


def test_known_totals():
    """SPEC §1: CIFAR-10 ρ=100 → 12,406 images; CIFAR-100 ρ=100 → 10,847; ρ=10 → 20,431 / 19,573."""
    for name, ratio, total in (("cifar10", 100, 12406), ("cifar100", 100, 10847), ("cifar10", 10, 20431),
                               ("cifar100", 10, 19573)):
        setting = "cifar10-lt" if name == "cifar10" else "cifar100-lt"
        config = load_config(CONFIGS / setting / f"exp{ratio}" / "erm.yaml")
        assert sum(longtail_counts(_num_classes(name), REAL_N_MAX[name], config.data.imbalance_ratio)) == total


def _num_classes(name: str) -> int:
    from longtail.data.datasets import dataset_info

    return int(dataset_info(name).num_classes)


# ---------------------------------------------------------------------------------------------------
# Build every config on tiny real-format files and take one training step
# ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("data")
    tiny = _write_tiny_imagenet(base / "tiny", per_class=TINY_PER_CLASS)
    return {
        "cifar10": WRITERS.write_cifar10(base / "cifar10", per_class=TINY_PER_CLASS, test_per_class=2),
        "cifar100": WRITERS.write_cifar100(base / "cifar100", per_class=TINY_PER_CLASS),
        "tiny-imagenet": tiny,
        "tiny-imagenet-32": tiny,  # the same files, halved when read (ERM-PD pre-training)
        "inaturalist2018": WRITERS.write_inaturalist(base / "inat", counts=(8, 4, 2)),
        "imdb": _write_imdb(base / "imdb"),
        "imagenet-lt": _write_lt_lists(base / "imagenet-lt", "ImageNet_LT"),
        "places-lt": _write_lt_lists(base / "places-lt", "Places_LT"),
    }


LT_TINY_COUNTS = (8, 4, 2)  # training images per class of the tiny ImageNet-LT / Places-LT trees


def _write_lt_lists(root: Path, prefix: str) -> Path:
    """An image root with <prefix>_train.txt / <prefix>_test.txt split files (the published layout,
    3 classes); the benchmarks' line counts are scaled down by :func:`_tiny_lt_counts`."""
    import numpy as np

    rng = np.random.default_rng(1)
    for split, counts in (("train", LT_TINY_COUNTS), ("test", (2, 2, 2))):
        lines = []
        for c, n in enumerate(counts):
            for i in range(n):
                rel = f"{split}/class{c}/{i}.JPEG"
                WRITERS.write_image(root / rel, rng.integers(0, 256, (40, 48, 3), dtype=np.uint8), "JPEG")
                lines.append(f"{rel} {c}")
        (root / f"{prefix}_{split}.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(autouse=True)
def _tiny_lt_counts(monkeypatch):
    from longtail.data import listfile

    for name in ("imagenet-lt", "places-lt"):
        spec = dict(listfile.LT_BENCHMARKS[name], num_classes=3,
                    lines={"train": sum(LT_TINY_COUNTS), "val": 6, "test": 6})
        monkeypatch.setitem(listfile.LT_BENCHMARKS, name, spec)


def _write_tiny_imagenet(root: Path, per_class: int, wnids=("n01443537", "n01629819", "n01641577", "n01644900")) -> Path:
    """tiny-imagenet-200/ as in the real archive (the data tests' writer with random pixels, so that
    more than a few images per class fit in uint8)."""
    import numpy as np

    rng = np.random.default_rng(0)
    folder = root / "tiny-imagenet-200"
    folder.mkdir(parents=True)
    (folder / "wnids.txt").write_text("\n".join(wnids) + "\n")
    (folder / "words.txt").write_text("".join(f"{w}\tthing {w}\n" for w in wnids))
    for wnid in wnids:
        for i in range(per_class):
            WRITERS.write_image(folder / "train" / wnid / "images" / f"{wnid}_{i}.JPEG",
                                rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), "JPEG")
    lines = []
    for i, wnid in enumerate(list(wnids) * 2):
        WRITERS.write_image(folder / "val" / "images" / f"val_{i}.JPEG",
                            rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), "JPEG")
        lines.append(f"val_{i}.JPEG\t{wnid}\t0\t0\t63\t63")
    (folder / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return root


def _write_imdb(root: Path) -> Path:
    IMDB_WRITERS.write_aclimdb(root, {"train": {"pos": 30, "neg": 30}, "test": {"pos": 4, "neg": 4}})
    return root


def _tiny_overrides(path: Path, root: Path) -> list[str]:
    config = load_config(path)
    batch = 2 if config.model.name in LARGE_MODELS else 4
    overrides = [f"data.root={root}", f"optim.batch_size={batch}", "data.workers=0", "runtime.device=cpu",
                 "runtime.channels_last=false"]
    if config.data.profile != "none":
        cap = TINY_PER_CLASS // 2 if config.data.name != "imdb" else 10
        overrides.append(f"data.imbalance_ratio={min(config.data.imbalance_ratio, float(cap))}")
    if config.data.heldout_per_class:
        overrides.append("data.heldout_per_class=1")
    if config.data.n_max is not None:  # CDT Table 5's balanced 1,240 per class: as many as the tiny files hold
        overrides.append(f"data.n_max={min(config.data.n_max, TINY_PER_CLASS)}")
    if config.data.name == "imdb":
        overrides.append("data.max_len=50")
    if config.data.name in ("imagenet-lt", "places-lt"):
        overrides.append("data.image_size=32")  # ResNeXt-50 / ResNet-152 at 224 are too slow for a test step
    return overrides


LARGE_MODELS = ("resnet50", "resnet152", "resnext50_32x4d")


GROUPS: dict[tuple[str, str], list[Path]] = defaultdict(list)
for _path in MINE:
    _cfg = load_config(_path)
    GROUPS[(_cfg.data.name, _cfg.model.name)].append(_path)


_DATA_CACHE: dict[str, object] = {}
_MODEL_CACHE: dict[str, torch.nn.Module] = {}


def _cached_data(config):  # noqa: ANN001, ANN202
    """Built data shared by the configs of a group that read the same training set."""
    from longtail.engine.data import build_data
    from longtail.engine.distributed import DistInfo

    key = repr((config.data, config.optim.batch_size, config.train.seed))
    if key not in _DATA_CACHE:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # held-out split leaving tiny classes out
            _DATA_CACHE[key] = build_data(config, DistInfo(), torch.device("cpu"))
    return _DATA_CACHE[key]


def _step_image_config(path: Path, root: Path, take_step: bool) -> None:
    from longtail.engine.optim import build_optimizer
    from longtail.engine.trainer import build_loss, build_model, check_engine_choices, sampler_choice

    config = load_config(path, _tiny_overrides(path, root))
    check_engine_choices(config)  # the loss's head, the schedule's samplers and loss parameters
    data = _cached_data(config)
    key = repr((config.model, config.train.seed, data.num_classes))
    if key not in _MODEL_CACHE:  # identical model sections build identical models: build once
        _MODEL_CACHE[key] = build_model(config, data)
    model = copy.deepcopy(_MODEL_CACHE[key]) if take_step else _MODEL_CACHE[key]
    loss_fn, schedule = build_loss(config, data.class_counts)
    first, last = schedule.at_epoch(0), schedule.at_epoch(config.train.epochs - 1)
    for state in (first, last):
        assert state.sampler in SAMPLERS
        if state.class_weights is not None:
            assert state.class_weights.shape == (data.num_classes,)
    if not take_step:
        return
    # one step in the state of the LAST epoch, so that deferred re-weighting / re-sampling / γ are used
    loss_fn.set_class_weights(last.class_weights)
    if last.loss_params:
        loss_fn.set_params(**last.loss_params)
    optimizer = build_optimizer(config.optim, model)
    loader = data.train_loader(sampler_choice(config, last), config.train.epochs - 1)
    x, y = next(iter(loader))
    model.train()
    before = [p.detach().clone() for p in model.parameters()]
    _, logits = model(x)
    loss = loss_fn(logits, y)
    assert torch.isfinite(loss)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))


def _step_imdb_config(path: Path, root: Path) -> None:
    """Through the engine: vocabulary built on the training subset, ids fed by the tensor loader,
    ``vocab_size`` passed to the BiLSTM by ``build_model``."""
    config = load_config(path, _tiny_overrides(path, root))
    data = _cached_data(config)
    assert data.class_counts == [3, 30]  # 90% of the 30 negatives removed, class 0 = negative
    assert data.vocab is not None and data.train_ids.dtype == torch.int64
    _step_image_config(path, root, take_step=True)


@pytest.mark.parametrize("group", sorted(GROUPS), ids=lambda g: f"{g[0]}-{g[1]}")
def test_build_every_config_and_step(group: tuple[str, str], roots: dict[str, Path]):
    """All configs of a (data set, model) group build (data, model, loss, schedule at the first and
    last epoch); each distinct method file (e.g. ``ldam-drw.yaml``, ``cdt.300ep.yaml``) takes one
    training step in one of its settings, except on ResNet-50/152 and ResNeXt-50 where one config steps."""
    dataset, model_name = group
    paths = GROUPS[group]
    root = roots[dataset]
    stepped: set[str] = set()
    for path in paths:
        if dataset == "imdb":
            _step_imdb_config(path, root)
            continue
        take_step = path.name not in stepped and not (model_name in LARGE_MODELS and stepped)
        _step_image_config(path, root, take_step)
        if take_step:
            stepped.add(path.name)
    assert stepped or dataset == "imdb"


def test_groups_cover_every_config():
    assert sum(len(v) for v in GROUPS.values()) == len(MINE)
    assert {g[0] for g in GROUPS} == {"cifar10", "cifar100", "tiny-imagenet", "tiny-imagenet-32", "inaturalist2018", "imdb",
                                      "imagenet-lt", "places-lt"}
    assert math.isclose(sum(1 for p in MINE if "-heldout" in p.name) / len(MINE), 0.2, abs_tol=0.15)
