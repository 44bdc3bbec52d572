import gc
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch

from longtail.data.augment import BatchAugment
from longtail.data.loaders import StreamingLoader, StreamTransform, TensorLoader


class EpochPermutation:
    """A minimal sampler of the samplers contract: a seeded permutation per epoch."""

    def __init__(self, n, seed=0):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __iter__(self):
        return iter(
            torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + self.epoch)).tolist()
        )

    def __len__(self):
        return self.n


def test_tensor_loader_follows_the_sampler():
    images = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (23, 3, 8, 8), dtype=np.uint8))
    labels = torch.arange(23) % 5
    sampler = EpochPermutation(23)
    loader = TensorLoader(
        images,
        labels,
        batch_size=5,
        sampler=sampler,
        augment=BatchAugment((0.5,) * 3, (0.5,) * 3, pad=0, flip=False),
    )
    assert len(loader) == 5
    loader.set_epoch(2)
    order = list(sampler)
    xs, ys = zip(*loader)
    assert [len(y) for y in ys] == [5, 5, 5, 5, 3]
    assert torch.equal(torch.cat(ys), labels[order])
    torch.testing.assert_close(torch.cat(xs), (images[order].float() / 255 - 0.5) / 0.5)
    loader.set_epoch(3)
    assert not torch.equal(torch.cat([y for _, y in loader]), torch.cat(ys))


def test_tensor_loader_drop_last_and_default_sampler():
    images = torch.zeros(10, 1, 4, 4, dtype=torch.uint8)
    loader = TensorLoader(images, torch.arange(10), batch_size=4, drop_last=True)
    assert len(loader) == 2 and [y.tolist() for _, y in loader] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    loader = TensorLoader(images, torch.arange(10), batch_size=4, sampler=range(3, 10))
    assert [y.tolist() for _, y in loader] == [[3, 4, 5, 6], [7, 8, 9]]


def test_tensor_loader_augments_with_its_generator():
    images = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (8, 3, 8, 8), dtype=np.uint8))
    augment = BatchAugment((0.5,) * 3, (0.5,) * 3, pad=2, seed=4)
    state = augment.state_dict()
    first = [x for x, _ in TensorLoader(images, torch.zeros(8, dtype=torch.int64), 4, augment=augment)]
    augment.load_state_dict(state)
    again = [x for x, _ in TensorLoader(images, torch.zeros(8, dtype=torch.int64), 4, augment=augment)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))


def test_tensor_loader_resumes_mid_epoch_from_its_state():
    """Stopped after 2 of 5 batches, a new loader given the saved position (and the augmentation
    generator's state) yields exactly the 3 batches the uninterrupted pass yields next."""
    images = torch.from_numpy(np.random.default_rng(2).integers(0, 256, (23, 3, 8, 8), dtype=np.uint8))
    labels = torch.arange(23) % 5

    def loader():
        augment = BatchAugment((0.5,) * 3, (0.5,) * 3, pad=2, seed=7)
        return TensorLoader(images, labels, 5, sampler=EpochPermutation(23), augment=augment)

    full = loader()
    full.set_epoch(3)
    expected = list(full)
    assert full.state_dict() == {"epoch": 3, "position": 5}
    stopped = loader()
    stopped.set_epoch(3)
    batches = iter(stopped)
    head = [next(batches), next(batches)]
    state, augment_state = stopped.state_dict(), stopped.augment.state_dict()
    assert state == {"epoch": 3, "position": 2}
    resumed = loader()
    resumed.load_state_dict(state)
    resumed.augment.load_state_dict(augment_state)
    assert resumed.state_dict() == state
    rest = list(resumed)
    assert len(head) + len(rest) == len(expected) == 5
    for (x, y), (ex, ey) in zip(head + rest, expected):
        assert torch.equal(x, ex) and torch.equal(y, ey)
    assert len(list(resumed)) == 5  # the next pass starts at batch 0 again


def test_streaming_loader_resumes_mid_epoch_from_its_state(many_images):
    paths, labels = many_images

    def loader():
        return StreamingLoader(paths[:30], labels[:30], 8, sampler=EpochPermutation(30),
                               transform=StreamTransform(size=12, train=True), seed=3)

    full = loader()
    full.set_epoch(1)
    expected = list(full)
    resumed = loader()
    resumed.load_state_dict({"epoch": 1, "position": 3})
    rest = list(resumed)
    assert resumed.state_dict() == {"epoch": 1, "position": 4} and len(rest) == 1
    assert torch.equal(rest[0][0], expected[3][0]) and torch.equal(rest[0][1], expected[3][1])


@pytest.fixture(scope="module")
def many_images(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("stream")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(320):
        path = root / f"{i % 4}" / f"{i:04d}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (20 + i % 7, 24, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths, [i % 4 for i in range(320)]


def test_streaming_loader_shapes_and_labels(many_images):
    paths, labels = many_images
    loader = StreamingLoader(
        paths[:50], labels[:50], batch_size=16, transform=StreamTransform(size=16, train=True)
    )
    batches = list(loader)
    assert len(loader) == len(batches) == 4
    x, y = batches[0]
    assert x.shape == (16, 3, 16, 16) and x.dtype == torch.float32 and y.tolist() == labels[:16]
    eval_loader = StreamingLoader(paths[:5], labels[:5], 5, transform=StreamTransform(size=12, train=False))
    ((x, _),) = list(eval_loader)
    assert x.shape == (5, 3, 12, 12)


def test_streaming_is_the_same_with_workers_and_depends_on_epoch(many_images):
    paths, labels = many_images
    transform = StreamTransform(size=16, train=True)

    def run(workers, epoch):
        loader = StreamingLoader(
            paths[:40],
            labels[:40],
            8,
            sampler=EpochPermutation(40),
            transform=transform,
            workers=workers,
            seed=5,
        )
        loader.set_epoch(epoch)
        return torch.cat([x for x, _ in loader]), torch.cat([y for _, y in loader])

    x0, y0 = run(0, 1)
    x2, y2 = run(2, 1)
    assert torch.equal(x0, x2) and torch.equal(y0, y2)
    assert not torch.equal(run(0, 2)[0], x0)


def _peak_while_streaming(paths, labels):
    loader = StreamingLoader(paths, labels, batch_size=16, transform=StreamTransform(size=24, train=True))
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    seen = 0
    for x, _ in loader:
        seen += x.shape[0]
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    assert seen == len(paths)
    return peak


def test_streaming_memory_does_not_grow_with_the_number_of_images(many_images):
    paths, labels = many_images
    small = _peak_while_streaming(paths[:40], labels[:40])
    large = _peak_while_streaming(paths, labels)  # 8× the images
    decoded_all = len(paths) * 3 * 24 * 24  # what holding every decoded image would cost
    assert large - small < decoded_all / 4, (small, large)


@pytest.mark.parametrize("workers", [0, 1])
def test_streaming_corrupt_image_is_one_clear_error(tmp_path, workers):
    from PIL import Image

    from longtail.errors import DataError

    paths = []
    for i in range(4):
        path = tmp_path / f"{i}.jpg"
        Image.fromarray(np.full((10, 10, 3), 50 * i, np.uint8)).save(path)
        paths.append(str(path))
    Path(paths[2]).write_bytes(Path(paths[2]).read_bytes()[:60])
    loader = StreamingLoader(
        paths, [0] * 4, 2, transform=StreamTransform(size=8, train=False), workers=workers
    )
    with pytest.raises(DataError) as caught:
        list(loader)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("cannot decode image") and "2.jpg" in message
