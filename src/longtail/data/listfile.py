"""List files and CSV files: an image ROOT plus split files naming each image and its label.

The one reader of such files, for the data sets (``listfile``, ``imagenet-lt``, ``places-lt``:
:func:`read_list_file`, labels required) and for ``longtail predict`` (:func:`read_image_list`, labels
optional).

* List files (the format of ImageNet-LT, Places-LT and the iNaturalist lists of the decoupling
  code, Kang et al. ICLR 2020): one ``relative/path label`` line per image, separated by white space
  (the path is everything before the last field). Blank lines and lines starting with ``#`` are
  skipped. Where labels are optional, a line holding only a path is an unlabelled image (so is a line
  whose last field is an image file name: ``my photo.jpg``).
* CSV files (``*.csv``): a header naming a ``path`` and a ``label`` column (other columns are
  ignored; where labels are optional the ``label`` column and its cells may be missing); blank rows
  are skipped.

Labels: a data set's list file holds class indices ≥ 0 (the published format; a class is named after
the folder of its training images). A CSV training file holds indices when every label is an integer,
else class names (classes = the sorted names). Read against a known class list (a test split against
its training split, ``predict`` against the run's classes), a label must lie in ``0..C-1``, and in CSV
files and for ``predict`` it may also be one of the class names (names first: a name may look like a
number).

Paths are relative to ROOT (``predict``: ``--root``, default the list file's folder); absolute paths
are kept. A line that cannot be read is a one-line :class:`DataError` naming the file, the line number
and what to write instead. Images are not opened here (they are decoded when streamed, or once for the
in-memory path).
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from longtail.data.images import is_image_file
from longtail.data.split import Split
from longtail.errors import DataError

_INDEX = re.compile(r"-?[0-9]+")  # a class index as written in a list file (negative ones are refused by range)
_CSV_INDEX = re.compile(r"[0-9]+")  # a CSV label counted as an index when deciding names vs indices


@dataclass(frozen=True)
class ListEntry:
    """One image named by a list or CSV file: its path (resolved against the root), its class index
    (None: an unlabelled line, where labels are optional) and its line number in the file."""

    path: str
    label: int | None
    line: int


# (line number, path as written, label as written or None)
_Row = tuple[int, str, "str | None"]


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


def _line_rows(path: Path, labels_required: bool) -> list[_Row]:
    """The ``relative/path [label]`` lines of a list file."""
    form = "'relative/path label'" if labels_required else "'relative/path [label]'"
    rows: list[_Row] = []
    for number, line in enumerate(_open_text(path).splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        parts = text.rsplit(maxsplit=1)
        if len(parts) == 2 and (labels_required or not is_image_file(parts[1])):
            rows.append((number, parts[0].strip(), parts[1]))
        elif labels_required:
            raise DataError(f"{path} line {number}: expected {form}, got {text!r}")
        else:  # a path alone (possibly with spaces): an unlabelled image
            rows.append((number, text, None))
    if not rows:
        raise DataError(f"list file {path} names no image; expected {form} lines")
    return rows


def _csv_rows(path: Path, labels_required: bool) -> list[_Row]:
    """The rows of a CSV file with a header naming ``path`` and ``label`` columns."""
    records = list(csv.reader(_open_text(path).splitlines()))
    if not records:
        raise DataError(f"CSV file {path} is empty; expected a header 'path,label' and one row per image")
    header = [h.strip().lower() for h in records[0]]
    if "path" not in header or (labels_required and "label" not in header):
        need = "a 'path' and a 'label' column" if labels_required else "a 'path' column (a 'label' column is optional)"
        raise DataError(f"{path} line 1: the header {records[0]!r} must name {need}")
    path_col = header.index("path")
    label_col = header.index("label") if "label" in header else None
    last_col = max(path_col, -1 if label_col is None else label_col)
    rows: list[_Row] = []
    for number, record in enumerate(records[1:], 2):
        if not record or not any(cell.strip() for cell in record):
            continue
        if len(record) <= last_col:
            raise DataError(f"{path} line {number}: {len(record)} fields, the header has {len(header)}")
        name = record[path_col].strip()
        label_text = record[label_col].strip() if label_col is not None else ""
        if not name or (labels_required and not label_text):
            raise DataError(f"{path} line {number}: empty path or label")
        rows.append((number, name, label_text or None))
    if not rows:
        raise DataError(f"CSV file {path} has a header but no rows")
    return rows


def _is_csv(path: Path) -> bool:
    return path.suffix.lower() == ".csv"


def _training_names(rows: list[_Row], is_csv: bool) -> list[str] | None:
    """Class names a training file defines by its labels: a CSV file's when not every label is an
    index (sorted); None when the labels are indices."""
    texts = [text for _, _, text in rows if text is not None]
    if not is_csv or all(_CSV_INDEX.fullmatch(text) for text in texts):
        return None
    return sorted(set(texts))


def _label(path: Path, number: int, text: str, names: list[str] | None, index: dict[str, int]) -> int:
    """The class index of the label ``text`` on line ``number``: a class name of ``index`` (names first:
    a name may look like a number), else an index in range."""
    if text in index:
        return index[text]
    if not _INDEX.fullmatch(text):
        if not index:
            raise DataError(f"{path} line {number}: label {text!r} is not an integer class index; write 0, 1, ...")
        raise DataError(
            f"{path} line {number}: label {text!r} is not one of the {len(names)} training classes; "
            f"write a class name or an index 0..{len(names) - 1}"
        )
    label = int(text)
    if label < 0 or (names is not None and label >= len(names)):
        bound = f"0..{len(names) - 1}" if names is not None else ">= 0"
        raise DataError(f"{path} line {number}: label {label} outside the class range {bound}")
    return label


def _read(
    path: Path, root: Path, classes: list[str] | None, labels_required: bool, is_csv: bool, by_name: bool
) -> tuple[list[ListEntry], list[str] | None]:
    """The entries of a list or CSV file and the class names known after reading it (``classes``, or
    those a CSV training file defines; None when the labels are indices of unnamed classes).

    ``by_name``: labels may be class names. Not for the data sets' list files, whose labels are
    indices (the published format) and whose class names are only guessed from folders."""
    rows = _csv_rows(path, labels_required) if is_csv else _line_rows(path, labels_required)
    names = list(classes) if classes is not None else _training_names(rows, is_csv)
    index = {name: i for i, name in enumerate(names)} if names is not None and by_name else {}
    base = str(root)
    entries = [
        ListEntry(_resolve(base, name), None if text is None else _label(path, number, text, names, index), number)
        for number, name, text in rows
    ]
    return entries, names


def _split(entries: list[ListEntry], names: list[str] | None) -> Split:
    paths = [entry.path for entry in entries]
    labels = [entry.label for entry in entries if entry.label is not None]  # all of them: labels required
    if names is None:
        names = _class_names(paths, labels, max(labels) + 1)
    return Split(labels=torch.tensor(labels, dtype=torch.int64), classes=names, paths=paths)


def read_list_file(path: str | Path, root: str | Path, classes: list[str] | None = None) -> Split:
    """A split from a ``relative/path label`` list file (or a CSV file, by its ``.csv`` suffix); every
    line must have a label.

    ``classes`` (the training split's class names) fixes the class count and the index of each class
    name; a label outside it is an error naming the line.
    """
    path, root = Path(path), Path(root)
    is_csv = _is_csv(path)
    return _split(*_read(path, root, classes, labels_required=True, is_csv=is_csv, by_name=is_csv))


def read_csv_file(path: str | Path, root: str | Path, classes: list[str] | None = None) -> Split:
    """A split from a CSV file with a header holding ``path`` and ``label`` columns (any suffix)."""
    return _split(*_read(Path(path), Path(root), classes, labels_required=True, is_csv=True, by_name=True))


def read_image_list(path: str | Path, classes: list[str], root: str | Path | None = None) -> list[ListEntry]:
    """The images of a list file of ``relative/path [label]`` lines or a CSV file (``path`` column,
    optional ``label`` column), for ``longtail predict``: a line without a label is an unlabelled image;
    a label is one of ``classes`` (a trained run's) by name or index. Paths are relative to ``root``,
    by default the list file's folder."""
    path = Path(path)
    base = Path(root) if root is not None else path.parent
    return _read(path, base, classes, labels_required=False, is_csv=_is_csv(path), by_name=True)[0]


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
