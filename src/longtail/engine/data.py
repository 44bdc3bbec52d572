"""The engine's view of the data layer: build the long-tailed splits and make per-epoch loaders.

Image geometry and statistics (``data.image_size``, ``channels``, ``mean``/``std`` incl. ``auto``,
``train_transform``, ``in_memory``) are resolved by :func:`resolve_geometry`
(:mod:`longtail.data.geometry`); image-file sets that fit the memory budget with the pad-crop
transform are decoded once and then take the in-memory path below.

In-memory image sets (CIFAR, (Fashion-)MNIST, Tiny-ImageNet) use
:class:`~longtail.data.loaders.TensorLoader` with a :class:`~longtail.data.augment.BatchAugment`
whose generator is re-seeded from ``(train.seed, epoch)`` at each epoch start; streamed sets
(image folders, iNaturalist) use :class:`~longtail.data.loaders.StreamingLoader`, whose per-image
randomness is a function of ``(train.seed, epoch, position)``. Text sets (IMDB) are tokenised once:
a :class:`~longtail.data.imdb.Vocabulary` is built on the long-tailed training subset only (after the
held-out split; ``data.min_freq``, ``data.max_vocab``), every split is encoded to an int64 ``[N, L]``
id matrix (``data.max_len``, right-padded with 0) and fed by ``TensorLoader`` without augmentation. The training sampler of each epoch
comes from the re-balancing schedule (``SAMPLERS.create``) and is sharded over distributed ranks.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from longtail.config import Config
from longtail.engine.distributed import DistInfo
from longtail.errors import ConfigError, DataError


@dataclass
class EvalData:
    """A split to evaluate (test or held-out): yields normalised, un-augmented batches."""

    split: Any
    info: Any
    device: torch.device
    workers: int = 0
    channels_last: bool = False
    ids: torch.Tensor | None = None  # text sets: int64 [N, L] token ids of the split
    transform: str = "random-resized-crop"  # the run's training transform (pad-crop evaluates at S×S as is)

    def __len__(self) -> int:
        return len(self.split)

    @property
    def labels(self) -> torch.Tensor:
        return self.split.labels

    def batches(self, indices: torch.Tensor, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``(x, y)`` of the examples at ``indices``, in order, ``batch_size`` at a time."""
        from longtail.data.augment import BatchAugment
        from longtail.data.loaders import StreamingLoader, StreamTransform, TensorLoader

        if len(indices) == 0:
            return iter(())
        labels = self.split.labels[indices]
        if self.ids is not None:
            return iter(TensorLoader(self.ids[indices], labels, batch_size, None, None, self.device))
        if self.split.images is not None:
            normalise = BatchAugment(self.info.mean, self.info.std, pad=0, flip=False)
            return iter(TensorLoader(self.split.images[indices], labels, batch_size, None, normalise, self.device))
        transform = StreamTransform(
            self.info.image_size, train=False, mean=self.info.mean, std=self.info.std,
            mode="pad-crop" if self.transform == "pad-crop" else "random-resized-crop",
            channels=self.info.channels or 3,
        )
        paths = [self.split.paths[i] for i in indices.tolist()]
        return iter(StreamingLoader(paths, labels, batch_size, None, transform, self.workers, device=self.device))


class EpochLoader:
    """A training loader for one epoch plus the name of its sampler (for the log)."""

    def __init__(self, loader: Any, sampler_name: str) -> None:
        self.loader = loader
        self.sampler_name = sampler_name

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return iter(self.loader)


class TrainData:
    """The built long-tailed data of a run and its loaders."""

    def __init__(
        self,
        config: Config,
        dist: DistInfo,
        device: torch.device,
        data: Any = None,
        run_dir: str | Path | None = None,
        with_test: bool | None = None,
    ) -> None:
        """``data``: an already built :class:`~longtail.data.build.LongTailData` (e.g. the speed benchmark's
        synthetic set); by default the one ``config.data`` describes is built — without reading the test
        split when ``with_test`` (default ``config.eval.test``) is False (``test`` is then None). ``run_dir``:
        a run whose ``data_stats.json`` is reused for ``data.mean``/``data.std`` = auto."""
        from longtail.data.build import build_from

        cfg = config.data
        self.config = config
        self.dist = dist
        self.device = device
        with_test = config.eval.test if with_test is None else with_test
        self.data = data if data is not None else build_from(cfg, with_test=with_test)
        stored = read_data_stats(run_dir) if run_dir is not None else None
        self.info, self.geometry = resolve_geometry(cfg, self.data, stored)
        self.data.info = self.info
        self.vocab: Any = None
        ids: dict[str, torch.Tensor | None] = {"train": None, "heldout": None, "test": None}
        if self.info.kind == "text":
            from longtail.data.imdb import Vocabulary, encode

            # Built from the training subset only: held-out and test texts never enter the table.
            self.vocab = Vocabulary.build(self.data.train.texts, min_freq=cfg.min_freq, max_size=cfg.max_vocab)
            for name in ids:
                split = getattr(self.data, name)
                if split is not None:
                    ids[name] = encode(split.texts, self.vocab, cfg.max_len)[0]
        self.train_ids = ids["train"]
        batch = config.optim.batch_size
        if batch % dist.world_size:
            raise ConfigError(
                f"optim.batch_size={batch} is the global batch and must divide evenly between "
                f"{dist.world_size} processes; use a multiple of {dist.world_size}"
            )
        self.batch_per_rank = batch // dist.world_size
        self.augment = None
        if self.data.train.images is not None:
            from longtail.data.augment import BatchAugment

            pad, flip = (cfg.pad, cfg.flip) if cfg.augment else (0, False)  # pad-crop: the one batched transform
            self.augment = BatchAugment(self.info.mean, self.info.std, pad=pad, flip=flip, seed=config.train.seed)
        self._loaders: dict[str, Any] = {}
        self._current: tuple[dict[str, Any], EpochLoader] | None = None
        channels_last = config.runtime.channels_last
        mode = self.geometry.get("train_transform", "random-resized-crop")
        self.test = (
            EvalData(self.data.test, self.info, device, cfg.workers, channels_last, ids["test"], mode)
            if self.data.test is not None
            else None
        )
        self.heldout = (
            EvalData(self.data.heldout, self.info, device, cfg.workers, channels_last, ids["heldout"], mode)
            if self.data.heldout is not None
            else None
        )
        self.train_eval = EvalData(self.data.train, self.info, device, cfg.workers, channels_last, ids["train"], mode)

    # --- what the trainer reads ---------------------------------------------------------------------
    @property
    def class_counts(self) -> list[int]:
        return list(self.data.class_counts)

    @property
    def fingerprint(self) -> str:
        return self.data.fingerprint

    @property
    def num_classes(self) -> int:
        return int(self.data.num_classes)

    @property
    def channels(self) -> int | None:
        return self.info.channels

    @property
    def vocab_size(self) -> int | None:
        """Length of the vocabulary of a text set (the ``bilstm`` model's ``vocab_size``); None otherwise."""
        return len(self.vocab) if self.vocab is not None else None

    @property
    def classes(self) -> list[str]:
        return list(self.data.train.classes)

    # --- loaders ----------------------------------------------------------------------------------
    def train_loader(self, choice: tuple[str, dict[str, Any]], epoch: int) -> EpochLoader:
        """The loader of ``epoch`` with the sampler ``choice = (name, params)`` (cached per choice)."""
        from longtail.registry import SAMPLERS

        name, params = choice
        key = f"{name}:{sorted(params.items())!r}"
        if key not in self._loaders:
            train = self.data.train
            sampler = SAMPLERS.create(
                name,
                labels=train.labels,
                seed=self.config.train.seed,
                rank=self.dist.rank,
                world_size=self.dist.world_size,
                **params,
            )
            self._loaders[key] = self._make_loader(train, sampler)
        loader = self._loaders[key]
        loader.set_epoch(epoch)
        self._current = (dict(params), EpochLoader(loader, name))
        return self._current[1]

    @property
    def loader(self) -> EpochLoader | None:
        """The current training loader: the last one :meth:`train_loader` gave or :meth:`load_state_dict` restored."""
        return self._current[1] if self._current is not None else None

    def _make_loader(self, train: Any, sampler: Any) -> Any:
        from longtail.data.loaders import StreamingLoader, StreamTransform, TensorLoader

        drop_last = self.config.train.drop_last
        if self.train_ids is not None:
            return TensorLoader(self.train_ids, train.labels, self.batch_per_rank, sampler, None, self.device, drop_last)
        if train.images is not None:
            return TensorLoader(train.images, train.labels, self.batch_per_rank, sampler, self.augment, self.device, drop_last)
        cfg = self.config.data
        transform = StreamTransform(
            self.info.image_size, train=cfg.augment, mean=self.info.mean, std=self.info.std,
            mode=self.geometry["train_transform"], pad=cfg.pad, flip=cfg.flip, channels=self.info.channels or 3,
        )
        return StreamingLoader(
            train.paths, train.labels, self.batch_per_rank, sampler, transform, self.config.data.workers,
            drop_last=drop_last, seed=self.config.train.seed, device=self.device,
            on_bad_file=self.config.data.on_bad_file,
        )

    def bad_files(self) -> list[str]:
        """Paths of the training files skipped as undecodable so far (``data.on_bad_file=skip``), one
        entry per time met, over every loader of this process."""
        return [path for loader in self._loaders.values() for path in getattr(loader, "bad_files", [])]

    def reseed_augment(self, seed: int) -> None:
        """Start the augmentation stream of an epoch from a seed derived from (train.seed, epoch)."""
        if self.augment is not None:
            self.augment.generator.manual_seed(seed)

    def state_dict(self) -> dict[str, Any]:
        """``sampler``: the current training loader's sampler choice, epoch and batches yielded;
        ``augment``: the augmentation generator's state (``{}`` for sets without one)."""
        sampler: dict[str, Any] = {}
        if self._current is not None:
            params, current = self._current
            sampler = {"name": current.sampler_name, "params": params, **current.loader.state_dict()}
        return {"sampler": sampler, "augment": self.augment.state_dict() if self.augment is not None else {}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`: the next pass of that loader continues where the saved one stopped."""
        sampler = state.get("sampler") or {}
        if sampler:
            loader = self.train_loader((sampler["name"], dict(sampler["params"])), int(sampler["epoch"])).loader
            loader.load_state_dict({"epoch": int(sampler["epoch"]), "position": int(sampler["position"])})
        if self.augment is not None and state.get("augment"):
            self.augment.load_state_dict(state["augment"])


def build_data(
    config: Config, dist: DistInfo, device: torch.device, run_dir: str | Path | None = None
) -> TrainData:
    return TrainData(config, dist, device, run_dir=run_dir)


# ---------------------------------------------------------------------------------------------------
# Image geometry and statistics (longtail.data.geometry)
# ---------------------------------------------------------------------------------------------------

DATA_STATS_FILE = "data_stats.json"


def read_data_stats(run_dir: str | Path) -> dict[str, Any] | None:
    """The ``data_stats.json`` of a run (mean/std computed for ``data.mean``/``data.std`` = auto), or None."""
    path = Path(run_dir) / DATA_STATS_FILE
    if not path.is_file():
        return None
    try:
        stats = json.loads(path.read_text())
    except ValueError as error:
        raise DataError(f"{path} is not valid JSON ({error}); delete it to recompute the statistics") from None
    if not isinstance(stats, dict) or not {"mean", "std"} <= set(stats):
        raise DataError(f"{path} has no 'mean' and 'std'; delete it to recompute the statistics")
    return stats


def write_data_stats(run_dir: str | Path, stats: dict[str, Any]) -> None:
    path = Path(run_dir) / DATA_STATS_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(stats, indent=2) + "\n")
    tmp.replace(path)


def resolve_geometry(cfg: Any, data: Any, stored: dict[str, Any] | None) -> tuple[Any, dict[str, Any]]:
    """The data set's info with the run's image size, channels, mean and std, and what was decided.

    Decodes image-file sets into memory when ``data.in_memory`` says so (``data.train`` etc. are
    replaced by their decoded splits). ``stored``: a run's ``data_stats.json``, reused for ``auto``
    statistics when it was computed at the same size and channel count (so a resumed run normalises
    exactly as before).
    """
    from longtail.data import geometry as geo

    info = data.info
    if info.kind == "text":
        return info, {}
    images = data.train.images
    native_channels = int(images.shape[1]) if images is not None else (info.channels or 3)
    channels = cfg.channels or native_channels
    if images is not None:
        size = int(images.shape[-1])
        if cfg.image_size is not None and cfg.image_size != size:
            raise ConfigError(
                f"data.image_size={cfg.image_size}: {info.name} is held in memory at {size}×{size}; "
                "remove the key (image sizes apply to image-file sets)"
            )
        if channels != native_channels:
            for name in ("train", "heldout", "test"):
                split = getattr(data, name)
                if split is not None:
                    split.images = geo.convert_channels(split.images, channels)
    else:
        size = int(cfg.image_size or info.image_size or 224)
    transform = geo.resolve_transform(cfg.train_transform, info.kind, size)
    geometry: dict[str, Any] = {"image_size": size, "channels": channels, "train_transform": transform}
    if info.kind == "tensor":
        if transform != "pad-crop":
            raise ConfigError(
                f"data.train_transform={transform}: {info.name} is held in memory, where the augmentation "
                "is batched pad-crop; use pad-crop or auto"
            )
        geometry.update(in_memory=True, in_memory_reason="tensor data set")
    else:
        splits = [s for s in (data.train, data.heldout, data.test) if s is not None]
        nbytes = geo.decoded_bytes([len(s) for s in splits], size, channels)
        in_memory, reason = geo.decide_in_memory(cfg.in_memory, transform, nbytes, cfg.memory_budget_mb)
        geometry.update(in_memory=in_memory, in_memory_reason=reason)
        if in_memory:
            for name in ("train", "heldout", "test"):
                split = getattr(data, name)
                if split is not None:
                    setattr(data, name, geo.decode_split(split, size, channels))
    mean = geo.default_stats(info.mean, channels)
    std = geo.default_stats(info.std, channels)
    if "auto" in (cfg.mean, cfg.std):
        reusable = (
            stored is not None and stored.get("image_size") == size and stored.get("channels") == channels
            and len(stored["mean"]) == channels
        )
        stats = stored if reusable else geo.compute_stats(data.train, size, channels)
        geometry["stats"] = stats
        if cfg.mean == "auto":
            mean = tuple(float(v) for v in stats["mean"])
        if cfg.std == "auto":
            std = tuple(float(v) for v in stats["std"])
    for key, value in (("mean", cfg.mean), ("std", cfg.std)):
        if isinstance(value, list):
            if len(value) != channels:
                raise ConfigError(f"data.{key} has {len(value)} values; the images have {channels} channels")
            if key == "mean":
                mean = tuple(value)
            else:
                std = tuple(value)
    geometry.update(mean=list(mean), std=list(std))
    return dataclasses.replace(info, image_size=size, channels=channels, mean=mean, std=std), geometry
