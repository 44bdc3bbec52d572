import gzip
import json
import pickle

import numpy as np
import pytest
import torch

from longtail.data.datasets import DATASET_INFO, load_split
from longtail.data.idx import read_idx
from longtail.errors import ConfigError, DataError


def test_cifar10_reads_planes_labels_and_names(cifar10_root):
    train = load_split("cifar10", cifar10_root, train=True)
    assert train.images.shape == (40, 3, 32, 32) and train.images.dtype == torch.uint8
    assert train.labels.dtype == torch.int64 and train.class_counts() == [4] * 10
    assert train.classes[0] == "airplane" and train.classes[9] == "truck"
    # Rebuild the first image from the raw pickle: 1024 red, then green, then blue values.
    raw = pickle.loads((cifar10_root / "cifar-10-batches-py" / "data_batch_1").read_bytes(), encoding="bytes")
    first = np.asarray(raw[b"data"][0])
    assert torch.equal(train.images[0, 0], torch.from_numpy(first[:1024].reshape(32, 32)))
    assert torch.equal(train.images[0, 2], torch.from_numpy(first[2048:].reshape(32, 32)))
    assert train.labels[0].item() == raw[b"labels"][0]
    test = load_split("cifar10", cifar10_root / "cifar-10-batches-py", train=False)  # the folder itself
    assert len(test) == 20


def test_cifar100_fine_labels(cifar100_root):
    train = load_split("cifar100", cifar100_root, train=True)
    assert train.class_counts() == [3] * 100 and train.classes[:2] == ["c0", "c1"]
    assert len(load_split("cifar100", cifar100_root, train=False)) == 100


def test_cifar_truncated_file(cifar10_root):
    path = cifar10_root / "cifar-10-batches-py" / "data_batch_3"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DataError, match=r"data_batch_3: truncated or corrupt"):
        load_split("cifar10", cifar10_root, train=True)


def test_cifar_label_out_of_range(cifar10_root):
    path = cifar10_root / "cifar-10-batches-py" / "test_batch"
    entry = pickle.loads(path.read_bytes(), encoding="bytes")
    entry[b"labels"][5] = 10
    path.write_bytes(pickle.dumps(entry, protocol=2))
    with pytest.raises(DataError, match=r"test_batch: label 10 outside the class range 0..9"):
        load_split("cifar10", cifar10_root, train=False)


def test_cifar_missing_batch(cifar10_root):
    (cifar10_root / "cifar-10-batches-py" / "data_batch_5").unlink()
    with pytest.raises(DataError, match="missing CIFAR file .*data_batch_5"):
        load_split("cifar10", cifar10_root, train=True)


@pytest.mark.parametrize("compress", [True, False])
def test_idx_reader(tmp_path, writers, compress):
    root, arrays = writers.idx_set(tmp_path / "f", compress=compress)
    train = load_split("fashion-mnist", root, train=True)
    assert train.images.shape == (50, 1, 28, 28)
    assert torch.equal(train.images[:, 0], torch.from_numpy(arrays["train-images"]))
    assert torch.equal(train.labels, torch.from_numpy(arrays["train-labels"].astype(np.int64)))
    assert train.classes[0] == "T-shirt/top"
    assert len(load_split("mnist", root, train=False)) == 20


def test_idx_truncated_data(fmnist_root):
    path = fmnist_root / "train-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz is truncated or corrupt"):
        load_split("fashion-mnist", fmnist_root, train=True)


def test_idx_truncated_gzip(fmnist_root):
    path = fmnist_root / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte.gz: truncated or corrupt gzip"):
        load_split("fashion-mnist", fmnist_root, train=False)


def test_idx_bad_magic(fmnist_root):
    (fmnist_root / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x01\x02\x03\x04" + bytes(20)))
    with pytest.raises(DataError, match="bad header"):
        load_split("fashion-mnist", fmnist_root, train=False)


def test_idx_label_out_of_range(fmnist_root, writers):
    labels = np.zeros(20, np.uint8)
    labels[7] = 12
    (fmnist_root / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(writers.idx_bytes(labels)))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz: label 12 outside the class range 0..9"):
        load_split("fashion-mnist", fmnist_root, train=False)


def test_read_idx_shape(tmp_path, writers):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a").write_bytes(writers.idx_bytes(array))
    assert np.array_equal(read_idx(tmp_path / "a"), array)


def test_imagefolder(imagefolder_root):
    train = load_split("imagefolder", imagefolder_root, train=True)
    assert train.classes == ["cat", "dog", "emu"] and train.class_counts() == [5, 3, 2]
    assert train.images is None and all(p.endswith(".png") for p in train.paths)
    assert train.paths[0].endswith("cat/000.png")
    test = load_split("imagefolder", imagefolder_root, train=False)
    assert test.class_counts() == [2, 2, 2]


def test_imagefolder_without_train_subfolder(tmp_path, writers):
    writers.image(tmp_path / "a" / "x.png", np.zeros((4, 4, 3), np.uint8))
    writers.image(tmp_path / "b" / "y.jpg", np.zeros((4, 4, 3), np.uint8), "JPEG")
    assert load_split("imagefolder", tmp_path, train=True).classes == ["a", "b"]
    with pytest.raises(DataError, match="no test split"):
        load_split("imagefolder", tmp_path, train=False)


def test_imagefolder_empty_class_folder(imagefolder_root):
    (imagefolder_root / "train" / "fox").mkdir()
    (imagefolder_root / "train" / "fox" / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match=r"class folder .*train/fox holds no image"):
        load_split("imagefolder", imagefolder_root, train=True)


def test_imagefolder_unknown_test_class(imagefolder_root, writers):
    writers.image(imagefolder_root / "val" / "yak" / "0.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(DataError, match="val/yak is not one of the 3 training classes"):
        load_split("imagefolder", imagefolder_root, train=False)


def test_tiny_imagenet(tiny_root):
    train = load_split("tiny-imagenet", tiny_root, train=True)
    assert train.images.shape == (9, 3, 64, 64) and train.class_counts() == [3, 3, 3]
    assert train.classes == ["n01443537", "n01629819", "n01641577"]
    # flat colour 40*label + 10*i survives JPEG within a couple of levels
    assert abs(int(train.images[4].float().mean().round()) - (40 * 1 + 10 * 1)) <= 2
    test = load_split("tiny-imagenet", tiny_root, train=False)
    assert test.labels.tolist() == [0, 1, 2, 0, 1, 2]
    assert abs(int(test.images[5].float().mean().round()) - 35) <= 2


def test_tiny_imagenet_unknown_wnid(tiny_root):
    path = tiny_root / "tiny-imagenet-200" / "val" / "val_annotations.txt"
    path.write_text(path.read_text() + "val_0.JPEG\tn99999999\t0\t0\t1\t1\n")
    with pytest.raises(DataError, match=r"line 7: class 'n99999999' is not in wnids.txt"):
        load_split("tiny-imagenet", tiny_root, train=False)


def test_tiny_imagenet_truncated_jpeg(tiny_root):
    path = tiny_root / "tiny-imagenet-200" / "train" / "n01629819" / "images" / "n01629819_2.JPEG"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError, match=r"cannot decode image .*n01629819_2.JPEG"):
        load_split("tiny-imagenet", tiny_root, train=True)


def test_inaturalist(inat_root):
    train = load_split("inaturalist2018", inat_root, train=True)
    assert train.class_counts() == [6, 3, 1] and train.classes[2] == "species 2"
    assert train.paths[0] == str(inat_root / "train_val2018/Plantae/0/train_0.jpg")
    assert load_split("inaturalist2018", inat_root, train=False).class_counts() == [1, 1, 1]


def test_inaturalist_label_out_of_range(inat_root):
    path = inat_root / "val2018.json"
    meta = json.loads(path.read_text())
    meta["annotations"][1]["category_id"] = 3
    path.write_text(json.dumps(meta))
    with pytest.raises(
        DataError, match=r"val2018.json: annotation of image \d+ has category 3, outside the class range 0..2"
    ):
        load_split("inaturalist2018", inat_root, train=False)


def test_inaturalist_truncated_json(inat_root):
    path = inat_root / "train2018.json"
    path.write_text(path.read_text()[:-40])
    with pytest.raises(DataError, match=r"cannot parse .*train2018.json: truncated or corrupt"):
        load_split("inaturalist2018", inat_root, train=True)


def test_missing_root_and_unknown_name(tmp_path):
    with pytest.raises(DataError, match=r"data set 'cifar10': root folder .*nowhere does not exist"):
        load_split("cifar10", tmp_path / "nowhere", train=True)
    with pytest.raises(DataError, match=r"no cifar-10-batches-py/ folder"):
        load_split("cifar10", tmp_path, train=True)
    with pytest.raises(
        ConfigError, match=r"unknown data set 'cifar1'.*known: cifar10, cifar100, fashion-mnist"
    ):
        load_split("cifar1", tmp_path, train=True)


def test_dataset_info_table():
    for name in (
        "cifar10",
        "cifar100",
        "fashion-mnist",
        "mnist",
        "tiny-imagenet",
        "inaturalist2018",
        "imagefolder",
        "imdb",
    ):
        assert name in DATASET_INFO
    info = DATASET_INFO["cifar100"]
    assert (info.num_classes, info.image_size, info.channels, info.kind) == (100, 32, 3, "tensor")
    assert len(DATASET_INFO["fashion-mnist"].mean) == 1
    assert DATASET_INFO["inaturalist2018"].kind == "stream"
    assert DATASET_INFO["imdb"].kind == "text"


def test_default_root_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("LONGTAIL_DATA", str(tmp_path))
    assert DATASET_INFO["cifar10"].default_root == tmp_path
    assert DATASET_INFO["mnist"].default_root == tmp_path / "mnist"
