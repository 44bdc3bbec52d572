"""The data sets ``longtail`` reads, registered by name in :data:`longtail.registry.DATASETS`.

Each entry is a factory returning a :class:`DatasetInfo` (class count, image size, channels,
normalisation, default root, reader). :func:`load_split` is the one entry point used by the rest
of the package. Default roots live under ``$LONGTAIL_DATA`` (default ``./data``); Fashion-MNIST
is found in ``/usr/share/datasets/fashion-mnist`` when that folder exists (Debian package
``dataset-fashion-mnist``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from longtail.data.split import Split
from longtail.errors import DataError
from longtail.registry import DATASETS, register_dataset

DATA_ENV = "LONGTAIL_DATA"
SYSTEM_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

# Normalisation used by the LDAM-DRW reference code for both CIFAR-10 and CIFAR-100.
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# The iNaturalist 2018 statistics of the class-balanced-loss / LDAM reference code.
INAT_MEAN = (0.466, 0.471, 0.380)
INAT_STD = (0.195, 0.194, 0.192)


def data_home() -> Path:
    """``$LONGTAIL_DATA``, or ``./data`` (the LDAM reference code's location)."""
    return Path(os.environ.get(DATA_ENV) or "data")


@dataclass(frozen=True)
class DatasetInfo:
    """What the rest of the package needs to know about a data set."""

    name: str
    num_classes: int | None  # None: read from the files (image folders)
    image_size: int | None  # side of the (square) network input; None for text
    channels: int | None
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    default_root: Path | None  # None: --root is required
    kind: str  # "tensor" (uint8 images in memory), "stream" (image files) or "text"
    loader: Callable[[Path, bool], Split] = field(repr=False)
    downloadable: bool = False
    description: str = ""
    takes_lists: bool = False  # reads split files: data.train_list / data.test_list apply


def _info(name: str, loader: Callable[[Path, bool], Split], **kw) -> DatasetInfo:
    return DatasetInfo(
        name=name, loader=loader, description=(loader.__doc__ or "").strip().splitlines()[0], **kw
    )


@register_dataset("cifar10")
def cifar10() -> DatasetInfo:
    """CIFAR-10 python pickles: 10 classes, 5,000 training images each, 32×32 RGB."""
    from longtail.data.cifar import load_cifar10

    return _info(
        "cifar10",
        load_cifar10,
        num_classes=10,
        image_size=32,
        channels=3,
        mean=CIFAR_MEAN,
        std=CIFAR_STD,
        default_root=data_home(),
        kind="tensor",
        downloadable=True,
    )


@register_dataset("cifar100")
def cifar100() -> DatasetInfo:
    """CIFAR-100 python pickles: 100 classes, 500 training images each, 32×32 RGB."""
    from longtail.data.cifar import load_cifar100

    return _info(
        "cifar100",
        load_cifar100,
        num_classes=100,
        image_size=32,
        channels=3,
        mean=CIFAR_MEAN,
        std=CIFAR_STD,
        default_root=data_home(),
        kind="tensor",
        downloadable=True,
    )


@register_dataset("fashion-mnist")
def fashion_mnist() -> DatasetInfo:
    """Fashion-MNIST IDX files: 10 garment classes, 6,000 training images each, 28×28 grey."""
    from longtail.data.idx import load_fashion_mnist

    root = data_home() / "fashion-mnist"
    if not root.is_dir() and SYSTEM_FASHION_MNIST.is_dir():
        root = SYSTEM_FASHION_MNIST
    return _info(
        "fashion-mnist",
        load_fashion_mnist,
        num_classes=10,
        image_size=28,
        channels=1,
        mean=(0.2860,),
        std=(0.3530,),
        default_root=root,
        kind="tensor",
        downloadable=True,
    )


@register_dataset("mnist")
def mnist() -> DatasetInfo:
    """MNIST IDX files: 10 digits, about 6,000 training images each, 28×28 grey."""
    from longtail.data.idx import load_mnist

    return _info(
        "mnist",
        load_mnist,
        num_classes=10,
        image_size=28,
        channels=1,
        mean=(0.1307,),
        std=(0.3081,),
        default_root=data_home() / "mnist",
        kind="tensor",
        downloadable=True,
    )


@register_dataset("tiny-imagenet")
def tiny_imagenet() -> DatasetInfo:
    """Tiny-ImageNet-200: 200 classes, 500 training images each, 64×64 RGB (held in memory)."""
    from longtail.data.tiny_imagenet import load_tiny_imagenet

    return _info(
        "tiny-imagenet",
        load_tiny_imagenet,
        num_classes=200,
        image_size=64,
        channels=3,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        default_root=data_home(),
        kind="tensor",
    )


@register_dataset("tiny-imagenet-32")
def tiny_imagenet_32() -> DatasetInfo:
    """Tiny-ImageNet-200 halved to 32×32 (2×2 averages): the CIFAR input size, for pre-training CDT's ERM-PD."""
    from longtail.data.tiny_imagenet import load_tiny_imagenet_32

    return _info(
        "tiny-imagenet-32",
        load_tiny_imagenet_32,
        num_classes=200,
        image_size=32,
        channels=3,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        default_root=data_home(),
        kind="tensor",
    )


@register_dataset("inaturalist2018")
def inaturalist2018() -> DatasetInfo:
    """iNaturalist 2018: 8,142 naturally long-tailed species, streamed from JPEG files (224×224)."""
    from longtail.data.inaturalist import load_inaturalist2018

    return _info(
        "inaturalist2018",
        load_inaturalist2018,
        num_classes=8142,
        image_size=224,
        channels=3,
        mean=INAT_MEAN,
        std=INAT_STD,
        default_root=data_home() / "inaturalist2018",
        kind="stream",
    )


@register_dataset("inaturalist2017")
def inaturalist2017() -> DatasetInfo:
    """iNaturalist 2017: 5,089 naturally long-tailed species, streamed from JPEG files (224×224)."""
    from longtail.data.inaturalist import load_inaturalist2017

    return _info(
        "inaturalist2017",
        load_inaturalist2017,
        num_classes=5089,
        image_size=224,
        channels=3,
        mean=INAT_MEAN,
        std=INAT_STD,
        default_root=data_home() / "inaturalist2017",
        kind="stream",
    )


@register_dataset("inaturalist2019")
def inaturalist2019() -> DatasetInfo:
    """iNaturalist 2019: 1,010 naturally long-tailed species, streamed from JPEG files (224×224)."""
    from longtail.data.inaturalist import load_inaturalist2019

    return _info(
        "inaturalist2019",
        load_inaturalist2019,
        num_classes=1010,
        image_size=224,
        channels=3,
        mean=INAT_MEAN,
        std=INAT_STD,
        default_root=data_home() / "inaturalist2019",
        kind="stream",
    )


def _load_imagenet_lt(root: Path, train: bool, train_list: str | None = None, test_list: str | None = None) -> Split:
    """ImageNet-LT (Liu et al. 2019): 1,000 classes, 115,846 training images (1,280 … 5 per class)."""
    from longtail.data.listfile import load_lt_benchmark

    return load_lt_benchmark("imagenet-lt", root, train, train_list, test_list)


def _load_places_lt(root: Path, train: bool, train_list: str | None = None, test_list: str | None = None) -> Split:
    """Places-LT (Liu et al. 2019): 365 scene classes, 62,500 training images (4,980 … 5 per class)."""
    from longtail.data.listfile import load_lt_benchmark

    return load_lt_benchmark("places-lt", root, train, train_list, test_list)


@register_dataset("imagenet-lt")
def imagenet_lt() -> DatasetInfo:
    """ImageNet-LT: 1,000 classes, 115,846 train / 50,000 test images; ImageNet root + published lists."""
    return _info(
        "imagenet-lt",
        _load_imagenet_lt,
        num_classes=1000,
        image_size=224,
        channels=3,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        default_root=data_home() / "imagenet",
        kind="stream",
        takes_lists=True,
    )


@register_dataset("places-lt")
def places_lt() -> DatasetInfo:
    """Places-LT: 365 scene classes, 62,500 train / 36,500 test images; Places365 root + published lists."""
    return _info(
        "places-lt",
        _load_places_lt,
        num_classes=365,
        image_size=224,
        channels=3,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        default_root=data_home() / "places365",
        kind="stream",
        takes_lists=True,
    )


@register_dataset("listfile")
def listfile() -> DatasetInfo:
    """Your images listed in split files: ROOT + 'relative/path label' lines or a path,label CSV."""
    from longtail.data.listfile import load_listfile

    return _info(
        "listfile",
        load_listfile,
        num_classes=None,
        image_size=224,
        channels=3,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        default_root=None,
        kind="stream",
        takes_lists=True,
    )


@register_dataset("imagefolder")
def imagefolder() -> DatasetInfo:
    """Any root/<class>/<image> folder (train/ and val/ or test/ inside), any image size (data.image_size)."""
    from longtail.data.imagefolder import load_imagefolder

    return _info(
        "imagefolder",
        load_imagefolder,
        num_classes=None,
        image_size=224,
        channels=3,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        default_root=None,
        kind="stream",
    )


def _load_imdb(root: Path, train: bool) -> Split:
    """IMDB movie reviews (Maas et al., 2011): 2 classes (negative, positive), raw texts."""
    from longtail.data.imdb import load_imdb_split  # written beside this module; imported only when used

    return load_imdb_split(root, train)


@register_dataset("imdb")
def imdb() -> DatasetInfo:
    """IMDB movie reviews: 2 classes (negative, positive), texts for the BiLSTM experiment."""
    return _info(
        "imdb",
        _load_imdb,
        num_classes=2,
        image_size=None,
        channels=None,
        mean=None,
        std=None,
        default_root=data_home(),
        kind="text",
    )


def dataset_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of ``name``; ConfigError listing the known names otherwise."""
    return DATASETS.create(name)


class _InfoTable(Mapping[str, DatasetInfo]):
    """``DATASET_INFO[name]``: a read-only view of the registry (fresh, so env changes count)."""

    def __getitem__(self, name: str) -> DatasetInfo:
        return dataset_info(name)

    def __iter__(self) -> Iterator[str]:
        return iter(DATASETS.names())

    def __len__(self) -> int:
        return len(DATASETS.names())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in DATASETS


DATASET_INFO: Mapping[str, DatasetInfo] = _InfoTable()


def resolve_root(name: str, root: str | Path | None) -> Path:
    """``root`` if given, else the data set's default root; DataError if it does not exist."""
    info = dataset_info(name)
    if root is None:
        if info.default_root is None:
            raise DataError(f"data set {name!r} has no default location; pass --root DIR")
        path = info.default_root
    else:
        path = Path(root).expanduser()
    if not path.is_dir():
        hint = " or add --download" if info.downloadable else ""
        raise DataError(f"data set {name!r}: root folder {path} does not exist; pass --root DIR{hint}")
    return path


def load_split(
    name: str,
    root: str | Path | None,
    train: bool,
    train_list: str | None = None,
    test_list: str | None = None,
) -> Split:
    """Read the training (``train=True``) or test split of data set ``name`` from ``root``.

    ``train_list`` / ``test_list`` (split files, for the list-file sets: ``listfile``,
    ``imagenet-lt``, ``places-lt``) override the data set's default file names.
    """
    info = dataset_info(name)
    lists = {k: v for k, v in (("train_list", train_list), ("test_list", test_list)) if v is not None}
    if lists and not info.takes_lists:
        raise DataError(
            f"data.{next(iter(lists))} applies to list-file data sets (listfile, imagenet-lt, places-lt), "
            f"not {name!r}; remove it"
        )
    return info.loader(resolve_root(name, root), train, **lists)
