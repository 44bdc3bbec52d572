"""iNaturalist 2017, 2018 and 2019 (Van Horn et al.), COCO-style JSON annotation files.

2018: 437,513 training / 24,426 validation images of 8,142 species (``train2018.json`` /
``val2018.json``); 2017: 579,184 / 95,986 of 5,089 (``train2017.json`` / ``val2017.json``); 2019:
265,213 / 3,030 of 1,010 (``train2019.json`` / ``val2019.json``). The files share one schema: ``images`` (``id``, ``file_name`` relative
to the root), ``annotations`` (``image_id``, ``category_id``) and ``categories`` (``id``,
``name``). The validation set serves as the test set (LDAM and CDT papers). Images are streamed.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from longtail.data.split import Split
from longtail.errors import DataError


def load_inaturalist2018(root: str | Path, train: bool) -> Split:
    """iNaturalist 2018 from its COCO-style JSON files; labels are the category ids."""
    return load_inaturalist(root, train, 2018)


def load_inaturalist2017(root: str | Path, train: bool) -> Split:
    """iNaturalist 2017 from its COCO-style JSON files; labels are the category ids."""
    return load_inaturalist(root, train, 2017)


def load_inaturalist2019(root: str | Path, train: bool) -> Split:
    """iNaturalist 2019 from its COCO-style JSON files; labels are the category ids."""
    return load_inaturalist(root, train, 2019)


def load_inaturalist(root: str | Path, train: bool, year: int) -> Split:
    """iNaturalist ``year`` from ``train<year>.json`` / ``val<year>.json``; labels are the category ids."""
    root = Path(root)
    path = root / (f"train{year}.json" if train else f"val{year}.json")
    if not path.is_file():
        raise DataError(f"missing iNaturalist file {path}; pass --root to the folder holding train{year}.json")
    try:
        with path.open("rb") as handle:
            meta = json.load(handle)
    except (ValueError, UnicodeDecodeError) as error:
        raise DataError(f"cannot parse {path}: truncated or corrupt JSON ({error})") from None
    for key in ("images", "annotations", "categories"):
        if not isinstance(meta, dict) or key not in meta:
            raise DataError(f"{path} has no {key!r} list; not an iNaturalist/COCO annotation file")
    try:
        categories = sorted(meta["categories"], key=lambda c: int(c["id"]))
        num_classes = len(categories)
        if [int(c["id"]) for c in categories] != list(range(num_classes)):
            raise DataError(f"{path}: category ids must be 0..{num_classes - 1} without gaps")
        classes = [str(c.get("name", c["id"])) for c in categories]
        files = {int(image["id"]): str(image["file_name"]) for image in meta["images"]}
        paths: list[str] = []
        labels: list[int] = []
        for annotation in meta["annotations"]:
            image_id = int(annotation["image_id"])
            label = int(annotation["category_id"])
            if not 0 <= label < num_classes:
                raise DataError(
                    f"{path}: annotation of image {image_id} has category {label}, outside the class "
                    f"range 0..{num_classes - 1}"
                )
            if image_id not in files:
                raise DataError(f"{path}: annotation refers to image id {image_id} missing from 'images'")
            paths.append(str(root / files[image_id]))
            labels.append(label)
    except (KeyError, TypeError, ValueError) as error:
        raise DataError(f"{path}: malformed entry ({error.__class__.__name__}: {error})") from None
    return Split(labels=torch.tensor(labels, dtype=torch.int64), classes=classes, paths=paths)
