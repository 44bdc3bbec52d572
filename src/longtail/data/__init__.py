"""Long-tailed data: profiles, seeded subsets, readers of the real on-disk formats, loaders.

SPEC §1. ``build_longtail`` (in :mod:`longtail.data.build`) is the one call the engine makes.
"""

from longtail.data import (  # noqa: F401  (imported so the registry sees every data set)
    augment,
    build,
    datasets,
    download,
    loaders,
    profiles,
    split,
    subset,
)
from longtail.data.augment import BatchAugment
from longtail.data.build import LongTailData, build_longtail
from longtail.data.datasets import DATASET_INFO, DatasetInfo, load_split
from longtail.data.loaders import StreamingLoader, StreamTransform, TensorLoader
from longtail.data.profiles import longtail_counts
from longtail.data.split import Split
from longtail.data.subset import fingerprint, heldout_split, longtail_indices

__all__ = [
    "BatchAugment",
    "StreamTransform",
    "StreamingLoader",
    "TensorLoader",
    "DATASET_INFO",
    "DatasetInfo",
    "LongTailData",
    "Split",
    "build_longtail",
    "fingerprint",
    "heldout_split",
    "load_split",
    "longtail_counts",
    "longtail_indices",
]
