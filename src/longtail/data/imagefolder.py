"""Image folders: ``root/<class>/<image>``, class names sorted, images streamed from their paths.

A root holding ``train/`` (and ``val/`` or ``test/``) subfolders is read as those splits;
otherwise the root itself is the training split.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from longtail.data.images import is_image_file
from longtail.data.split import Split
from longtail.errors import DataError


def scan_image_folder(folder: str | Path, classes: list[str] | None = None) -> Split:
    """Paths and labels of every image under ``folder/<class>/`` (sorted, so the order is fixed).

    ``classes`` fixes the label of each class name (for a test folder, the training classes); a
    class folder without any image is an error, as is a class name not in ``classes``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(
            f"image folder {folder} does not exist; pass --root to a folder of <class>/<image> files"
        )
    found = sorted(entry.name for entry in os.scandir(folder) if entry.is_dir())
    if not found:
        raise DataError(f"image folder {folder} has no class subfolders; expected {folder}/<class>/<image>")
    names = found if classes is None else list(classes)
    index = {name: i for i, name in enumerate(names)}
    paths: list[str] = []
    labels: list[int] = []
    for name in found:
        if name not in index:
            raise DataError(
                f"class folder {folder / name} is not one of the {len(names)} training classes; "
                "rename or remove it"
            )
        files = sorted(e.name for e in os.scandir(folder / name) if e.is_file() and is_image_file(e.name))
        if not files:
            raise DataError(f"class folder {folder / name} holds no image; add images or remove the folder")
        paths.extend(str(folder / name / f) for f in files)
        labels.extend([index[name]] * len(files))
    return Split(labels=torch.tensor(labels, dtype=torch.int64), classes=names, paths=paths)


def load_imagefolder(root: str | Path, train: bool) -> Split:
    """Image folder ``root/<class>/<image>`` (or ``root/train/…`` + ``root/{val,test}/…``)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(
            f"image folder {root} does not exist; pass --root to a folder of <class>/<image> files"
        )
    train_dir = root / "train" if (root / "train").is_dir() else root
    train_split = scan_image_folder(train_dir)
    if train:
        return train_split
    for name in ("val", "test"):
        if (root / name).is_dir():
            return scan_image_folder(root / name, train_split.classes)
    raise DataError(
        f"image folder {root} has no test split; put images under {root}/train/<class>/ and "
        f"{root}/val/<class>/ (or test/)"
    )
