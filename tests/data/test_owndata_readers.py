"""Your own data: list files (ImageNet-LT- and Places-LT-style trees), CSV, the ImageNet-LT / Places-LT
count checks, iNaturalist 2017/2019 JSON, image geometry (size, channels, statistics, transforms).

Every tree is written in a temp dir in the real layout; expected values are recomputed here
independently (Pillow + NumPy in float64)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from longtail.data import build_longtail, load_split
from longtail.data import listfile as lf
from longtail.data.geometry import compute_stats, convert_channels, decode_split, fit_square
from longtail.data.loaders import StreamTransform
from longtail.errors import ConfigError, DataError


def write_png(path: Path, array: np.ndarray, fmt: str | None = None) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format=fmt)


def imagenet_lt_tree(root: Path, rng: np.random.Generator) -> tuple[Path, Path, list[tuple[str, int]]]:
    """ImageNet layout: train/<wnid>/<wnid>_<n>.JPEG, val/ILSVRC2012_val_<n>.JPEG, two split files."""
    wnids = ["n01440764", "n01443537", "n01484850"]
    train_lines = []
    for label, (wnid, count) in enumerate(zip(wnids, (5, 3, 1))):
        for i in range(count):
            rel = f"train/{wnid}/{wnid}_{100 + i}.JPEG"
            write_png(root / rel, rng.integers(0, 256, (18, 24, 3), dtype=np.uint8), "JPEG")
            train_lines.append((rel, label))
    test_lines = []
    for i, label in enumerate([2, 0, 1, 1, 0, 2]):
        rel = f"val/ILSVRC2012_val_{i + 1:08d}.JPEG"
        write_png(root / rel, rng.integers(0, 256, (20, 16, 3), dtype=np.uint8), "JPEG")
        test_lines.append((rel, label))
    train_file, test_file = root / "ImageNet_LT_train.txt", root / "ImageNet_LT_test.txt"
    train_file.write_text("".join(f"{p} {y}\n" for p, y in train_lines))
    test_file.write_text("".join(f"{p} {y}\n" for p, y in test_lines))
    return train_file, test_file, train_lines


def test_imagenet_lt_style_list(tmp_path):
    rng = np.random.default_rng(0)
    train_file, test_file, lines = imagenet_lt_tree(tmp_path, rng)
    split = load_split("listfile", tmp_path, True, train_list=train_file.name, test_list=str(test_file))
    assert split.paths == [str(tmp_path / p) for p, _ in lines]
    assert split.labels.tolist() == [y for _, y in lines]
    assert split.classes == ["n01440764", "n01443537", "n01484850"]  # named after the class folders
    test = load_split("listfile", tmp_path, False, train_list=train_file.name, test_list=str(test_file))
    assert test.labels.tolist() == [2, 0, 1, 1, 0, 2] and test.classes == split.classes
    data = build_longtail("listfile", tmp_path, profile="none", train_list=train_file.name,
                          test_list=test_file.name)
    assert data.class_counts == [5, 3, 1]


def test_places_lt_style_list(tmp_path):
    """Places365 layout data_256/<letter>/<scene>/<n>.jpg; nested scene names; default file names."""
    rng = np.random.default_rng(1)
    scenes = ["a/abbey", "a/airfield", "b/bakery/shop"]
    train, test = [], []
    for label, scene in enumerate(scenes):
        for i in range(3 - label):
            rel = f"data_256/{scene}/{i + 1:08d}.jpg"
            write_png(tmp_path / rel, rng.integers(0, 256, (10, 10, 3), dtype=np.uint8), "JPEG")
            train.append(f"{rel} {label}")
        rel = f"val_256/Places365_val_{label + 1:08d}.jpg"
        write_png(tmp_path / rel, rng.integers(0, 256, (10, 10, 3), dtype=np.uint8), "JPEG")
        test.append(f"{rel}\t{label}")
    (tmp_path / "train.txt").write_text("\n".join(train) + "\n\n")  # trailing blank line
    (tmp_path / "test.txt").write_text("\n".join(test))  # no final newline, tab separator
    split = load_split("listfile", tmp_path, True)
    assert split.classes == ["abbey", "airfield", "shop"] and split.class_counts() == [3, 2, 1]
    assert load_split("listfile", tmp_path, False).labels.tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a.png 0\nb.png\n", "line 2: expected 'relative/path label'"),
        ("a.png 0\n\nb.png x\n", "line 3: label 'x' is not an integer"),
        ("a.png -1\n", "line 1: label -1 outside the class range"),
        ("\n\n", "names no image"),
    ],
)
def test_bad_list_lines_name_file_and_line(tmp_path, text, fragment):
    (tmp_path / "train.txt").write_text(text)
    with pytest.raises(DataError, match=fragment) as info:
        load_split("listfile", tmp_path, True)
    assert str(tmp_path / "train.txt") in str(info.value) and "\n" not in str(info.value)


def test_test_label_outside_training_classes(tmp_path):
    (tmp_path / "train.txt").write_text("x/a.png 0\nx/b.png 1\n")
    (tmp_path / "test.txt").write_text("x/c.png 1\nx/d.png 2\n")
    with pytest.raises(DataError, match=r"test.txt line 2: label 2 outside the class range 0..1"):
        load_split("listfile", tmp_path, False)


def test_csv_names_and_indices(tmp_path):
    (tmp_path / "train.csv").write_text("id,path,label\n1,imgs/a.png,zebra\n2,imgs/b.png,ant\n3,imgs/c.png,zebra\n")
    (tmp_path / "test.csv").write_text("path,label\nimgs/d.png,ant\nimgs/e.png,1\n")
    split = load_split("listfile", tmp_path, True)
    assert split.classes == ["ant", "zebra"] and split.labels.tolist() == [1, 0, 1]
    assert split.paths == [str(tmp_path / "imgs" / n) for n in ("a.png", "b.png", "c.png")]
    assert load_split("listfile", tmp_path, False).labels.tolist() == [0, 1]  # a name, then an index
    (tmp_path / "idx").mkdir()
    (tmp_path / "idx" / "train.csv").write_text("path,label\nq/a.png,2\nq/b.png,0\n")
    by_index = lf.read_csv_file(tmp_path / "idx" / "train.csv", tmp_path)
    assert by_index.labels.tolist() == [2, 0] and by_index.num_classes == 3


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("file,class\na.png,1\n", "line 1: the header"),
        ("path,label\na.png\n", "line 2: 1 fields"),
        ("path,label\na.png,cat\n,dog\n", "line 3: empty path or label"),
    ],
)
def test_bad_csv_names_file_and_line(tmp_path, text, fragment):
    (tmp_path / "train.csv").write_text(text)
    with pytest.raises(DataError, match=fragment):
        load_split("listfile", tmp_path, True)


def test_csv_unknown_test_class(tmp_path):
    (tmp_path / "train.csv").write_text("path,label\na.png,cat\nb.png,dog\n")
    (tmp_path / "test.csv").write_text("path,label\nc.png,cat\nd.png,emu\n")
    with pytest.raises(DataError, match="test.csv line 3: label 'emu' is not one of the 2 training classes"):
        load_split("listfile", tmp_path, False)


def test_lists_only_for_list_sets(tmp_path):
    with pytest.raises(DataError, match="data.train_list applies to list-file data sets"):
        load_split("imagefolder", tmp_path, True, train_list="x.txt")


# ---------------------------------------------------------------------------------------------------
# ImageNet-LT / Places-LT count checks (SPEC §10)
# ---------------------------------------------------------------------------------------------------


def _benchmark_list(path: Path, lines: int, classes: int) -> None:
    # every class present, labels cycling; the images are not opened when the lists are read
    path.write_text("".join(f"train/c{i % classes}/{i}.JPEG {i % classes}\n" for i in range(lines)))


@pytest.mark.parametrize(
    ("name", "train_file", "test_file", "train_lines", "test_lines", "classes"),
    [
        ("imagenet-lt", "ImageNet_LT_train.txt", "ImageNet_LT_test.txt", 115_846, 50_000, 1000),
        ("places-lt", "Places_LT_train.txt", "Places_LT_test.txt", 62_500, 36_500, 365),
    ],
)
def test_benchmark_counts(tmp_path, name, train_file, test_file, train_lines, test_lines, classes):
    _benchmark_list(tmp_path / train_file, train_lines, classes)
    _benchmark_list(tmp_path / test_file, test_lines, classes)
    train = load_split(name, tmp_path, True)
    assert len(train) == train_lines and train.num_classes == classes
    assert len(load_split(name, tmp_path, False)) == test_lines
    # a truncated list (one line lost) is refused, naming the file and both line counts
    text = (tmp_path / train_file).read_text().splitlines(keepends=True)
    (tmp_path / train_file).write_text("".join(text[:-1]))
    with pytest.raises(DataError) as info:
        load_split(name, tmp_path, True)
    message = str(info.value)
    assert str(tmp_path / train_file) in message
    assert f"{train_lines - 1:,} lines" in message and f"{train_lines:,}" in message and "truncated" in message
    _benchmark_list(tmp_path / train_file, train_lines, classes)
    (tmp_path / test_file).write_text("".join((tmp_path / test_file).read_text().splitlines(keepends=True)[:1000]))
    with pytest.raises(DataError, match=f"test list .*{test_file} has 1,000 lines"):
        load_split(name, tmp_path, False)


def test_benchmark_val_list_and_missing_files(tmp_path):
    _benchmark_list(tmp_path / "ImageNet_LT_train.txt", 115_846, 1000)
    _benchmark_list(tmp_path / "ImageNet_LT_val.txt", 20_000, 1000)
    assert len(load_split("imagenet-lt", tmp_path, False, test_list="ImageNet_LT_val.txt")) == 20_000
    with pytest.raises(DataError, match="looked for Places_LT_train.txt"):
        load_split("places-lt", tmp_path, True)


def test_benchmark_on_a_tiny_tree(tmp_path, monkeypatch):
    """The ImageNet-LT reader on a real-layout tree (counts scaled down for the test)."""
    rng = np.random.default_rng(2)
    train_file, test_file, lines = imagenet_lt_tree(tmp_path, rng)
    spec = dict(lf.LT_BENCHMARKS["imagenet-lt"], num_classes=3, lines={"train": 9, "val": 6, "test": 6})
    monkeypatch.setitem(lf.LT_BENCHMARKS, "imagenet-lt", spec)
    split = load_split("imagenet-lt", tmp_path, True)
    assert split.classes == ["n01440764", "n01443537", "n01484850"] and split.class_counts() == [5, 3, 1]
    assert load_split("imagenet-lt", tmp_path, False).classes == split.classes
    train_file.write_text("".join(f"{p} {y}\n" for p, y in lines if y != 2) + "train/x/y.JPEG 0\n")
    with pytest.raises(DataError, match="covers 2 of the 3 classes"):
        load_split("imagenet-lt", tmp_path, True)


# ---------------------------------------------------------------------------------------------------
# iNaturalist 2017 / 2019 (same schema as 2018)
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("year", "classes"), [(2017, 5089), (2019, 1010)])
def test_inaturalist_2017_2019(tmp_path, year, classes):
    from longtail.data.datasets import dataset_info

    rng = np.random.default_rng(year)
    counts = (4, 2, 1)
    for split, per in (("train", counts), ("val", (1, 1, 1))):
        images, annotations = [], []
        for c, n in enumerate(per):
            for i in range(n):
                image_id = 7000 * (split == "val") + 10 * c + i
                name = f"train_val{year}/Aves/{c}/{split}_{i}.jpg"
                write_png(tmp_path / name, rng.integers(0, 256, (12, 14, 3), dtype=np.uint8), "JPEG")
                images.append({"id": image_id, "file_name": name, "width": 14, "height": 12})
                annotations.append({"id": image_id, "image_id": image_id, "category_id": c})
        meta = {"images": images, "annotations": annotations,
                "categories": [{"id": c, "name": f"bird {c}", "supercategory": "Aves"} for c in range(3)]}
        (tmp_path / f"{split}{year}.json").write_text(json.dumps(meta))
    train = load_split(f"inaturalist{year}", tmp_path, True)
    assert train.class_counts() == [4, 2, 1] and train.classes == ["bird 0", "bird 1", "bird 2"]
    assert train.paths[0] == str(tmp_path / f"train_val{year}/Aves/0/train_0.jpg")
    assert load_split(f"inaturalist{year}", tmp_path, False).labels.tolist() == [0, 1, 2]
    assert dataset_info(f"inaturalist{year}").num_classes == classes
    (tmp_path / f"train{year}.json").unlink()
    with pytest.raises(DataError, match=f"train{year}.json"):
        load_split(f"inaturalist{year}", tmp_path, True)


# ---------------------------------------------------------------------------------------------------
# Geometry: fit to S×S, channels, statistics, stream transforms
# ---------------------------------------------------------------------------------------------------


def test_fit_square_and_grey(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(3)
    square = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    assert np.array_equal(np.asarray(fit_square(Image.fromarray(square), 8)), square)  # kept as is
    wide = Image.fromarray(rng.integers(0, 256, (10, 20, 3), dtype=np.uint8))
    expected = wide.resize((16, 8), Image.BILINEAR).crop((4, 0, 12, 8))  # short side 10 → 8, centre crop
    assert np.array_equal(np.asarray(fit_square(wide, 8)), np.asarray(expected))
    rgb = torch.from_numpy(rng.integers(0, 256, (2, 3, 4, 4), dtype=np.uint8))
    grey = convert_channels(rgb, 1)
    pil = [np.asarray(Image.fromarray(rgb[i].permute(1, 2, 0).numpy()).convert("L")) for i in range(2)]
    assert np.array_equal(grey[:, 0].numpy(), np.stack(pil))
    assert torch.equal(convert_channels(grey, 3), grey.expand(-1, 3, -1, -1))


def test_compute_stats_float64(tmp_path):
    rng = np.random.default_rng(4)
    arrays = [rng.integers(0, 256, (6, 6, 3), dtype=np.uint8) for _ in range(5)]
    paths = []
    for i, array in enumerate(arrays):
        write_png(tmp_path / f"{i}.png", array)
        paths.append(str(tmp_path / f"{i}.png"))
    from longtail.data.split import Split

    split = Split(labels=torch.zeros(5, dtype=torch.int64), classes=["a"], paths=paths)
    x = np.stack(arrays).astype(np.float64) / 255.0  # [N, H, W, C]
    mean = x.mean(axis=(0, 1, 2))
    std = np.sqrt(((x - mean) ** 2).mean(axis=(0, 1, 2)))
    for source in (split, decode_split(split, 6, 3)):  # streamed paths and the decoded tensor agree
        stats = compute_stats(source, 6, 3)
        np.testing.assert_allclose(stats["mean"], mean, rtol=1e-12)
        np.testing.assert_allclose(stats["std"], std, rtol=1e-9)


def test_stream_transforms(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(5)
    image = Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8))
    # resize-crop: resize to round(16·256/224)=18 square, random 16 crop, flip — redrawn here
    out = StreamTransform(16, train=True, mode="resize-crop")(image, np.random.default_rng(7))
    draw = np.random.default_rng(7)
    top, left, flip = int(draw.integers(0, 3)), int(draw.integers(0, 3)), draw.random() < 0.5
    ref = np.asarray(image.resize((18, 18), Image.BILINEAR).crop((left, top, left + 16, top + 16)))
    ref = ref[:, ::-1] if flip else ref
    assert np.array_equal(out, ref.transpose(2, 0, 1))
    # pad-crop: fit to 16×16, zero-pad 2, random crop, flip; grey output has one channel
    small = Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    out = StreamTransform(16, train=True, mode="pad-crop", pad=2, channels=1)(small, np.random.default_rng(9))
    draw = np.random.default_rng(9)
    dy, dx, flip = int(draw.integers(0, 5)), int(draw.integers(0, 5)), draw.random() < 0.5
    grey = np.pad(np.asarray(small.convert("L")), 2)[dy : dy + 16, dx : dx + 16]
    assert out.shape == (1, 16, 16) and np.array_equal(out[0], grey[:, ::-1] if flip else grey)
    evaluated = StreamTransform(16, train=False, mode="pad-crop")(small, np.random.default_rng(0))
    assert np.array_equal(evaluated, np.asarray(small).transpose(2, 0, 1))


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("data.mean=bright", "data.mean is 'bright'"),
        ("data.in_memory=maybe", "data.in_memory"),
        ("data.channels=2", "data.channels must be 1"),
        ("data.train_transform=crop", "data.train_transform"),
        ("model.freeze=head", "model.freeze"),
        ("data.std=[0.2,0]", "data.std values must be > 0"),
    ],
)
def test_config_checks(override, fragment):
    from longtail.config import load_config

    with pytest.raises(ConfigError, match=fragment):
        load_config(None, [override])
