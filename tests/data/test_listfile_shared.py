"""The one reader of list and CSV files, as the data sets use it (labels required, ``read_list_file``)
and as ``longtail predict`` uses it (labels optional, ``read_image_list``): unlabelled lines, CSV,
comment and blank lines, path resolution, and bad lines as one-line errors naming file and line.

Expected paths and labels are written out here from the file contents, not from the reader."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from longtail.data import listfile as lf
from longtail.data import load_split
from longtail.errors import DataError

CLASSES = ["cat", "dog", "emu"]


def read(path: Path, root: Path | None = None) -> list[tuple[str, int | None, int]]:
    return [(e.path, e.label, e.line) for e in lf.read_image_list(path, CLASSES, root)]


def test_unlabelled_lines_comments_and_blank_lines(tmp_path):
    listing = tmp_path / "lists" / "val.txt"
    listing.parent.mkdir()
    listing.write_text(
        "# images to predict\n"
        "a.png\n"                 # a path alone: unlabelled
        "\n"
        "sub/b.png 2\n"           # an index
        "   sub/c.png\tdog  \n"   # a class name, tab, surrounding spaces
        "my photo.jpg\n"          # a path with a space, no label (its last field is an image name)
        "  # indented comment\n"
        "my dir/d e.png cat\n"    # a path with spaces and a label
        f"{tmp_path}/abs.png 0\n"  # an absolute path is kept
    )
    base = str(listing.parent)
    assert read(listing) == [
        (os.path.join(base, "a.png"), None, 2),
        (os.path.join(base, "sub/b.png"), 2, 4),
        (os.path.join(base, "sub/c.png"), 1, 5),
        (os.path.join(base, "my photo.jpg"), None, 6),
        (os.path.join(base, "my dir/d e.png"), 0, 8),
        (f"{tmp_path}/abs.png", 0, 9),
    ]
    # --root: paths relative to it instead of the list's folder
    other = tmp_path / "images"
    assert [p for p, _, _ in read(listing, other)][:2] == [os.path.join(str(other), "a.png"),
                                                           os.path.join(str(other), "sub/b.png")]


def test_csv_with_and_without_labels(tmp_path):
    labelled = tmp_path / "in.csv"
    labelled.write_text("id,path,label\n1,x/a.png,emu\n2,x/b.png,\n\n3,x/c.png,1\n")
    base = str(tmp_path)
    assert read(labelled) == [
        (os.path.join(base, "x/a.png"), 2, 2),
        (os.path.join(base, "x/b.png"), None, 3),  # an empty label cell: unlabelled
        (os.path.join(base, "x/c.png"), 1, 5),
    ]
    paths_only = tmp_path / "paths.csv"
    paths_only.write_text("path\nx/a.png\nx/b.png\n")
    assert read(paths_only) == [(os.path.join(base, "x/a.png"), None, 2), (os.path.join(base, "x/b.png"), None, 3)]


def test_data_set_lists_skip_comments_and_keep_labels_required(tmp_path):
    (tmp_path / "train.txt").write_text("# ImageNet-LT style\nk/a.png 0\n\nk/b.png 1\nm/c.png 1\n")
    (tmp_path / "test.txt").write_text("k/d.png 1\n# end\n")
    split = load_split("listfile", tmp_path, True)
    assert split.paths == [os.path.join(str(tmp_path), p) for p in ("k/a.png", "k/b.png", "m/c.png")]
    assert split.labels.tolist() == [0, 1, 1] and split.classes == ["k", "1"]  # class 1 in two folders
    assert load_split("listfile", tmp_path, False).labels.tolist() == [1]
    # a data set's list file holds indices: a class name is refused there (predict accepts it)
    (tmp_path / "test.txt").write_text("k/d.png k\n")
    with pytest.raises(DataError, match=r"test.txt line 1: label 'k' is not an integer class index"):
        load_split("listfile", tmp_path, False)
    (tmp_path / "val.txt").write_text("k/d.png dog\n")
    assert [label for _, label, _ in read(tmp_path / "val.txt")] == [1]


@pytest.mark.parametrize(
    ("name", "text", "fragment"),
    [
        ("val.txt", "a.png 0\nb.png 7\n", "line 2: label 7 outside the class range 0..2"),
        ("val.txt", "a.png 0\n\n# x\nb.png -1\n", "line 4: label -1 outside the class range 0..2"),
        ("val.txt", "a.png zebra\n", "line 1: label 'zebra' is not one of the 3 training classes; write a class name "
                                     "or an index 0..2"),
        ("val.txt", "# only a comment\n\n", "names no image; expected 'relative/path [label]' lines"),
        ("in.csv", "file,label\na.png,1\n", "line 1: the header ['file', 'label'] must name a 'path' column"),
        ("in.csv", "label,path\n1\n", "line 2: 1 fields, the header has 2"),
        ("in.csv", "path,label\n,cat\n", "line 2: empty path or label"),
        ("in.csv", "path,label\na.png,cat\nb.png,zebra\n", "line 3: label 'zebra' is not one of the 3 training classes"),
        ("in.csv", "path,label\n", "has a header but no rows"),
    ],
)
def test_bad_line_is_one_line_naming_file_and_line(tmp_path, name, text, fragment):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(DataError, match=re.escape(fragment)) as info:
        lf.read_image_list(path, CLASSES)
    message = str(info.value)
    assert message.startswith(str(path)) or f" {path} " in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a.png 0\nb.png 9\n", "line 2: label 9 outside the class range 0..2"),
        ("a.png 0\nb.png x\n", "line 2: label 'x' is not an integer class index"),
        ("a.png 0\nb.png\n", "line 2: expected 'relative/path label'"),
    ],
)
def test_same_bad_line_same_message_for_a_test_split(tmp_path, text, fragment):
    """A test list read against its training classes reports bad lines as predict does (same reader)."""
    (tmp_path / "train.txt").write_text("k/a.png 0\nk/b.png 1\nk/c.png 2\n")
    (tmp_path / "test.txt").write_text(text)
    with pytest.raises(DataError, match=re.escape(fragment)) as info:
        load_split("listfile", tmp_path, False)
    assert str(tmp_path / "test.txt") in str(info.value) and "\n" not in str(info.value)


def test_not_utf8_list_is_a_data_error(tmp_path):
    path = tmp_path / "val.txt"
    path.write_bytes(b"a.png 0\n\xff\xfe b.png 1\n")
    with pytest.raises(DataError, match=f"list file {path} is not UTF-8 text"):
        lf.read_image_list(path, CLASSES)
