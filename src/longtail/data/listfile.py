"""List files and CSV files: an image ROOT plus split files naming each image and its label.

* List files (the format of ImageNet-LT, Places-LT and the iNaturalist lists of the decoupling
  code, Kang et al. ICLR 2020): one ``relative/path label`` line per image, the label an integer
  class index ≥ 0, separated by white space (the path is everything before the last field).
* CSV files (``*.csv``): a header naming a ``path`` and a ``label`` column (other columns are
  ignored); the label is a class index (every label of the training file an integer) or a class name
  (classes = the sorted names of the training file).

Paths are relative to ROOT (absolute paths are kept). Blank lines are skipped. A line that cannot
be read is a :class:`DataError` naming the file and the line number. Images are not opened here
(they are decoded when streamed, or once for the in-memory path).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import torch

from longtail.data.split import Split
from longtail.errors import DataError


def _resolve(root: str, relative: str) -> str:
    return relative if os.path.isabs(relative) else os.path.join(root, relative)


def _class_names(paths: list[str], labels: list[int], num_classes: int) -> list[str]:
    """Class ``c`` is named after the folder holding its training images when all of them share
    one folder name (``train/n01440764/…`` → ``n01440764``), else after its index."""
    folders: dict[int, set[str]] = {}
    for path, label in zip(paths, labels):
        folders.setdefault(label, set()).add(os.path.basename(os.path.dirname(path)))
    names = []
    for c in range(num_classes):
        found = folders.get(c, set())
        names.append(next(iter(found)) if len(found) == 1 and next(iter(found)) else str(c))
    if len(set(names)) != len(names):  # two classes in same-named folders: indices are unambiguous
        return [str(c) for c in range(num_classes)]
    return names


def _open_text(path: Path) -> str:
    if not path.is_file():
        raise DataError(f"missing list file {path}; give the split file's path (data.train_list / data.test_list)")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"list file {path} is not UTF-8 text ({error.reason} at byte {error.start})") from None


def read_list_file(path: str | Path, root: str | Path, classes: list[str] | None = None) -> Split:
    """A split from a ``relative/path label`` list file (or a CSV file, by its ``.csv`` suffix).

    ``classes`` (the training split's class names) fixes the class count and, for CSV with names,
    the label of each name; a label outside it is an error naming the line.
    """
    path, root = Path(path), Path(root)
    if path.suffix.lower() == ".csv":
        return read_csv_file(path, root, classes)
    base = str(root)
    paths: list[str] = []
    labels: list[int] = []
    for number, line in enumerate(_open_text(path).splitlines(), 1):
        if not line.strip():
            continue
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2:
            raise DataError(f"{path} line {number}: expected 'relative/path label', got {line.strip()!r}")
        name, label_text = parts[0].strip(), parts[1]
        try:
            label = int(label_text)
        except ValueError:
            raise DataError(f"{path} line {number}: label {label_text!r} is not an integer class index") from None
        if label < 0 or (classes is not None and label >= len(classes)):
            bound = f"0..{len(classes) - 1}" if classes is not None else ">= 0"
            raise DataError(f"{path} line {number}: label {label} outside the class range {bound}")
        paths.append(_resolve(base, name))
        labels.append(label)
    if not paths:
        raise DataError(f"list file {path} names no image; expected 'relative/path label' lines")
    names = list(classes) if classes is not None else _class_names(paths, labels, max(labels) + 1)
    return Split(labels=torch.tensor(labels, dtype=torch.int64), classes=names, paths=paths)


def read_csv_file(path: str | Path, root: str | Path, classes: list[str] | None = None) -> Split:
    """A split from a CSV file with a header holding ``path`` and ``label`` columns."""
    path, root = Path(path), Path(root)
    rows = list(csv.reader(_open_text(path).splitlines()))
    if not rows:
        raise DataError(f"CSV file {path} is empty; expected a header 'path,label' and one row per image")
    header = [h.strip().lower() for h in rows[0]]
    if "path" not in header or "label" not in header:
        raise DataError(f"{path} line 1: the header {rows[0]!r} must name a 'path' and a 'label' column")
    path_col, label_col = header.index("path"), header.index("label")
    entries: list[tuple[int, str, str]] = []
    for number, row in enumerate(rows[1:], 2):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(path_col, label_col):
            raise DataError(f"{path} line {number}: {len(row)} fields, the header has {len(header)}")
        name, label_text = row[path_col].strip(), row[label_col].strip()
        if not name or not label_text:
            raise DataError(f"{path} line {number}: empty path or label")
        entries.append((number, name, label_text))
    if not entries:
        raise DataError(f"CSV file {path} has a header but no rows")
    # training file: all labels integers → class indices; otherwise class names (sorted)
    names = list(classes) if classes is not None else (
        None if all(text.isdigit() for _, _, text in entries) else sorted({text for _, _, text in entries})
    )
    index = {name: i for i, name in enumerate(names)} if names is not None else {}
    base = str(root)
    paths: list[str] = []
    labels: list[int] = []
    for number, name, text in entries:
        if text in index:  # a class name (names first: a name may look like a number)
            label = index[text]
        elif text.isdigit():
            label = int(text)
            if names is not None and label >= len(names):
                raise DataError(f"{path} line {number}: label {label} outside the class range 0..{len(names) - 1}")
        else:
            raise DataError(f"{path} line {number}: label {text!r} is not one of the {len(index)} training classes")
        paths.append(_resolve(base, name))
        labels.append(label)
    if names is None:
        names = _class_names(paths, labels, max(labels) + 1)
    return Split(labels=torch.tensor(labels, dtype=torch.int64), classes=names, paths=paths)


def default_list(root: Path, candidates: tuple[str, ...], what: str) -> Path:
    """The first of ``candidates`` present under ``root`` (DataError naming them all otherwise)."""
    for name in candidates:
        if (root / name).is_file():
            return root / name
    raise DataError(
        f"no {what} list under {root} (looked for {', '.join(candidates)}); set data.train_list / "
        "data.test_list to the split files"
    )


def load_listfile(root: Path, train: bool, train_list: str | None = None, test_list: str | None = None) -> Split:
    """Your own images listed in split files: ROOT + ``relative/path label`` lines or a CSV."""
    root = Path(root)
    train_path = _list_path(root, train_list) or default_list(root, ("train.txt", "train.csv"), "training")
    train_split = read_list_file(train_path, root)
    if train:
        return train_split
    test_path = _list_path(root, test_list) or default_list(
        root, ("test.txt", "test.csv", "val.txt", "val.csv"), "test"
    )
    return read_list_file(test_path, root, train_split.classes)


def _list_path(root: Path, name: str | None) -> Path | None:
    """A list file given in the config: absolute, relative to ROOT if it exists there, else as given."""
    if name is None:
        return None
    path = Path(name).expanduser()
    if not path.is_absolute() and (root / path).is_file():
        return root / path
    return path


# ---------------------------------------------------------------------------------------------------
# ImageNet-LT and Places-LT (Liu et al., CVPR 2019): published split files over the original images
# ---------------------------------------------------------------------------------------------------

# Lines of each published split file and the class count (SPEC §10). A module-level table so that the
# checks can be exercised on tiny trees.
LT_BENCHMARKS: dict[str, dict[str, object]] = {
    "imagenet-lt": {
        "title": "ImageNet-LT",
        "num_classes": 1000,
        "lines": {"train": 115_846, "val": 20_000, "test": 50_000},
        "files": {"train": "ImageNet_LT_train.txt", "val": "ImageNet_LT_val.txt", "test": "ImageNet_LT_test.txt"},
    },
    "places-lt": {
        "title": "Places-LT",
        "num_classes": 365,
        "lines": {"train": 62_500, "val": 7_300, "test": 36_500},
        "files": {"train": "Places_LT_train.txt", "val": "Places_LT_val.txt", "test": "Places_LT_test.txt"},
    },
}


def _role(path: Path, train: bool) -> str:
    if train:
        return "train"
    return "val" if "val" in path.stem.lower() else "test"


def check_lt_counts(name: str, path: Path, split: Split, role: str) -> None:
    """DataError unless ``split`` (read from ``path``) has the published line and class counts."""
    spec = LT_BENCHMARKS[name]
    expected = int(spec["lines"][role])  # type: ignore[index]
    num_classes = int(spec["num_classes"])  # type: ignore[arg-type]
    if len(split) != expected:
        raise DataError(
            f"{spec['title']} {role} list {path} has {len(split):,} lines, the published "
            f"{spec['files'][role]} has {expected:,}; the file is truncated or not {spec['title']}'s "  # type: ignore[index]
            "— download it again"
        )
    top = int(split.labels.max())
    if top >= num_classes:
        raise DataError(f"{spec['title']} list {path} has label {top}; the benchmark has {num_classes} classes (0..{num_classes - 1})")
    if role == "train" and int(split.labels.unique().numel()) != num_classes:
        raise DataError(
            f"{spec['title']} training list {path} covers {int(split.labels.unique().numel())} of the "
            f"{num_classes} classes; the file is not {spec['title']}'s"
        )


def load_lt_benchmark(
    name: str, root: Path, train: bool, train_list: str | None = None, test_list: str | None = None
) -> Split:
    """ImageNet-LT / Places-LT from the image ROOT and the published split files, counts checked."""
    spec = LT_BENCHMARKS[name]
    files: dict[str, str] = spec["files"]  # type: ignore[assignment]
    root = Path(root)
    num_classes = int(spec["num_classes"])  # type: ignore[arg-type]
    classes = [str(c) for c in range(num_classes)]
    train_path = _list_path(root, train_list) or default_list(root, (files["train"],), f"{spec['title']} training")
    train_split = read_list_file(train_path, root, classes)
    check_lt_counts(name, train_path, train_split, "train")
    classes = _class_names(train_split.paths or [], train_split.labels.tolist(), num_classes)
    if train:
        return Split(labels=train_split.labels, classes=classes, paths=train_split.paths)
    test_path = _list_path(root, test_list) or default_list(root, (files["test"],), f"{spec['title']} test")
    test = read_list_file(test_path, root, classes)
    check_lt_counts(name, test_path, test, _role(test_path, train=False))
    return test
