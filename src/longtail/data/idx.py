"""The IDX format of MNIST and Fashion-MNIST (LeCun et al.; Xiao et al., 2017).

Header: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions d, then d
big-endian uint32 sizes, then the data. Files may be gzip-compressed (``.gz``) or not.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from longtail.data.split import Split
from longtail.errors import DataError

FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
MNIST_CLASSES = [str(i) for i in range(10)]

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _locate(root: Path, stem: str) -> Path:
    for name in (f"{stem}.gz", stem):
        if (root / name).is_file():
            return root / name
    raise DataError(
        f"missing IDX file {root / (stem + '.gz')} (or uncompressed {stem}); "
        "pass --root to the folder that holds it or download it with --download"
    )


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in an IDX file (``.gz`` or plain), checked against its header."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(
            f"cannot read IDX file {path}: truncated or corrupt gzip ({error}); download it again"
        ) from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise DataError(
            f"IDX file {path} has a bad header (magic {raw[:4].hex()}); not an IDX file or corrupt"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"IDX file {path} has a truncated header; download it again")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"IDX file {path} is truncated or corrupt: header says {shape} ({expected} bytes of data), "
            f"file holds {len(raw) - header}; download it again"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def load_idx_split(root: str | Path, train: bool, classes: list[str]) -> Split:
    """MNIST-layout folder: ``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``."""
    root = Path(root)
    prefix = "train" if train else "t10k"
    image_path = _locate(root, f"{prefix}-images-idx3-ubyte")
    label_path = _locate(root, f"{prefix}-labels-idx1-ubyte")
    images = read_idx(image_path)
    labels = read_idx(label_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(
            f"IDX image file {image_path} must hold uint8 N×H×W, got {images.dtype} {images.shape}"
        )
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise DataError(
            f"IDX label file {label_path} holds {labels.shape} labels for {images.shape[0]} images in {image_path}"
        )
    labels = labels.astype(np.int64)
    bad = (labels < 0) | (labels >= len(classes))
    if bad.any():
        raise DataError(
            f"IDX label file {label_path}: label {int(labels[bad][0])} outside the class range 0..{len(classes) - 1}"
        )
    return Split(
        labels=torch.from_numpy(labels),
        classes=list(classes),
        images=torch.from_numpy(images.copy()).unsqueeze(1),
    )


def load_fashion_mnist(root: str | Path, train: bool) -> Split:
    """Fashion-MNIST: 60,000 training / 10,000 test images of 10 garments, 28×28 grey."""
    return load_idx_split(root, train, FASHION_MNIST_CLASSES)


def load_mnist(root: str | Path, train: bool) -> Split:
    """MNIST: 60,000 training / 10,000 test hand-written digits, 28×28 grey."""
    return load_idx_split(root, train, MNIST_CLASSES)
