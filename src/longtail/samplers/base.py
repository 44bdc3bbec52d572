"""Shared machinery of the samplers: seeding from (seed, epoch), validation and rank sharding.

Every sampler draws one *global* sequence of example indices per epoch, a pure function of
``(seed, epoch)`` (and of the labels and parameters), from a ``torch.Generator`` seeded with
:func:`epoch_seed`. For ``world_size`` ranks the global draw is made a multiple of ``world_size``
— padded by default, by repeating its first few entries (at most ``world_size - 1``, as
``torch.utils.data.DistributedSampler`` does), or truncated with ``drop_last=True`` — and rank
``r`` takes positions ``r, r + world_size, r + 2·world_size, …``. The shards are disjoint (by
position) and their concatenation in position order is exactly the (padded/truncated) global draw.

Evaluation uses no sampler: the engine shards the test set itself, without padding.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

from longtail.errors import ConfigError, DataError
from longtail.registry import PositiveInt


def epoch_seed(seed: int, epoch: int) -> int:
    """A 63-bit generator seed that depends only on ``(seed, epoch)``.

    Hashing (rather than ``seed + epoch``) keeps the streams of ``(seed, epoch + 1)`` and
    ``(seed + 1, epoch)`` unrelated.
    """
    digest = hashlib.sha256(f"longtail-sampler:{int(seed)}:{int(epoch)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded from ``(seed, epoch)``."""
    generator = torch.Generator()
    generator.manual_seed(epoch_seed(seed, epoch))
    return generator


def _check_labels(labels: torch.Tensor) -> torch.Tensor:
    if not isinstance(labels, torch.Tensor):
        labels = torch.as_tensor(labels)
    if labels.dim() != 1 or labels.numel() == 0:
        raise DataError(
            f"sampler labels must be a non-empty 1-D tensor, got shape {tuple(labels.shape)}; "
            "pass the training split's labels"
        )
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise DataError(f"sampler labels must be integers, got dtype {labels.dtype}; pass int64 labels")
    labels = labels.to(device="cpu", dtype=torch.int64)
    if int(labels.min()) < 0:
        raise DataError(f"sampler labels must be >= 0, found {int(labels.min())}; relabel classes as 0..C-1")
    return labels


class EpochSampler(Sampler[int]):
    """Base class: a deterministic per-epoch draw, split across distributed ranks.

    Subclasses implement :meth:`global_draw` (the epoch's full draw as an int64 tensor of
    ``num_samples`` indices). Everything else — ``set_epoch``, sharding, ``__len__``,
    ``__iter__`` — is here.
    """

    def __init__(
        self,
        labels: torch.Tensor,
        seed: int = 0,
        num_samples: PositiveInt | None = None,
        rank: int = 0,
        world_size: PositiveInt = 1,
        drop_last: bool = False,
    ) -> None:
        # Parameter types are checked by SAMPLERS.create; what is left relates parameters to each other.
        self.labels = _check_labels(labels)
        if not 0 <= rank < world_size:
            raise ConfigError(f"sampler rank must be in 0..{world_size - 1}, got {rank!r}")
        if num_samples is None:
            num_samples = int(self.labels.numel())
        if drop_last and num_samples < world_size:
            raise ConfigError(
                f"num_samples={num_samples} < world_size={world_size} with drop_last: every rank would be "
                "empty; use drop_last=false or draw more samples"
            )
        self.seed = seed
        self.num_samples = num_samples
        self.rank = rank
        self.world_size = world_size
        self.drop_last = bool(drop_last)
        self.epoch = 0
        self.num_classes = int(self.labels.max()) + 1
        self.class_counts = torch.bincount(self.labels, minlength=self.num_classes)

    # --- the epoch ---------------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose draw ``__iter__`` yields next."""
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ConfigError(f"sampler epoch must be an integer >= 0, got {epoch!r}")
        self.epoch = epoch

    def global_draw(self, epoch: int | None = None) -> torch.Tensor:
        """All ``num_samples`` indices of the epoch (every rank's), int64, before padding."""
        epoch = self.epoch if epoch is None else epoch
        draw = self._draw(epoch_generator(self.seed, epoch), epoch)
        assert draw.shape == (self.num_samples,) and draw.dtype == torch.int64
        return draw

    def _draw(self, generator: torch.Generator, epoch: int) -> torch.Tensor:
        raise NotImplementedError

    # --- sharding ----------------------------------------------------------------------------
    @property
    def total_size(self) -> int:
        """Length of the global draw after padding/truncation to a multiple of ``world_size``."""
        if self.drop_last:
            return (self.num_samples // self.world_size) * self.world_size
        return -(-self.num_samples // self.world_size) * self.world_size

    def padded_draw(self, epoch: int | None = None) -> torch.Tensor:
        """The global draw padded (repeating its head) or truncated to ``total_size``."""
        draw = self.global_draw(epoch)
        total = self.total_size
        if total <= draw.numel():
            return draw[:total]
        repeats = -(-total // draw.numel())
        return draw.repeat(repeats)[:total]

    def epoch_indices(self, epoch: int | None = None) -> torch.Tensor:
        """This rank's indices for the epoch (int64 tensor), for vectorised loaders."""
        return self.padded_draw(epoch)[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self.epoch_indices().tolist())

    def __len__(self) -> int:
        return self.total_size // self.world_size


class ClassProbabilitySampler(EpochSampler):
    """Draw a class with probability ``p_c``, then an example of that class uniformly; with replacement.

    Per-example probability ``p_c / n_c`` for an example of class ``c``. Classes with no examples
    get probability 0 whatever the rule says. Subclasses give :meth:`class_probabilities`.
    """

    def class_probabilities(self, epoch: int | None = None) -> torch.Tensor:
        """float64 [C] class probabilities of the epoch (sum 1; 0 for empty classes)."""
        raise NotImplementedError

    def _normalise(self, weights: torch.Tensor) -> torch.Tensor:
        weights = torch.where(self.class_counts > 0, weights, torch.zeros_like(weights))
        return weights / weights.sum()

    def _draw(self, generator: torch.Generator, epoch: int) -> torch.Tensor:
        probabilities = self.class_probabilities(epoch)
        classes = torch.multinomial(probabilities, self.num_samples, replacement=True, generator=generator)
        # Examples grouped by class: members of class c occupy order[starts[c] : starts[c] + n_c].
        if not hasattr(self, "_by_class"):
            self._by_class = (
                torch.argsort(self.labels, stable=True),
                torch.cumsum(self.class_counts, 0) - self.class_counts,
            )
        order, starts = self._by_class
        counts = self.class_counts[classes]
        uniform = torch.rand(self.num_samples, generator=generator, dtype=torch.float64)
        offsets = torch.clamp((uniform * counts).long(), max=counts - 1)
        return order[starts[classes] + offsets]
