import numpy as np
import pytest
import torch

from longtail.data.augment import BatchAugment

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)


def reference(images_u8, dy, dx, flips, pad, mean, std):
    """Per-image pad → crop → flip → normalise, written out in float64 numpy."""
    out = []
    for b, image in enumerate(images_u8.numpy()):
        padded = np.pad(image.astype(np.float64), ((0, 0), (pad, pad), (pad, pad)))
        h, w = image.shape[1:]
        crop = padded[:, dy[b] : dy[b] + h, dx[b] : dx[b] + w]
        if flips[b]:
            crop = crop[:, :, ::-1]
        out.append((crop / 255.0 - np.array(mean)[:, None, None]) / np.array(std)[:, None, None])
    return torch.from_numpy(np.stack(out))


def batch(n=16, c=3, h=8, w=10, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, size=(n, c, h, w), dtype=np.uint8))


@pytest.mark.parametrize("pad", [0, 1, 4])
def test_matches_per_image_reference(pad):
    images = batch()
    aug = BatchAugment(MEAN, STD, pad=pad, flip=True, seed=3)
    state = aug.state_dict()
    dy, dx, flips = aug.draw(images.shape[0])
    aug.load_state_dict(state)
    out = aug(images)
    assert out.dtype == torch.float32 and out.shape == images.shape
    expected = reference(images, dy.numpy(), dx.numpy(), flips.numpy(), pad, MEAN, STD)
    torch.testing.assert_close(out.double(), expected, rtol=0, atol=1e-5)


def test_normalise_only():
    images = batch()
    out = BatchAugment(MEAN, STD, pad=0, flip=False)(images)
    expected = (
        images.double() / 255 - torch.tensor(MEAN, dtype=torch.float64).view(1, 3, 1, 1)
    ) / torch.tensor(STD, dtype=torch.float64).view(1, 3, 1, 1)
    torch.testing.assert_close(out.double(), expected, rtol=0, atol=1e-5)


def test_draws_cover_all_offsets_and_flip_half():
    aug = BatchAugment(MEAN, STD, pad=4, seed=0)
    dy, dx, flips = aug.draw(20000)
    assert sorted(dy.unique().tolist()) == list(range(9)) and sorted(dx.unique().tolist()) == list(range(9))
    assert abs(flips.float().mean().item() - 0.5) < 0.02


def test_state_dict_resumes_exactly():
    images = batch()
    a = BatchAugment(MEAN, STD, seed=11)
    a(images)
    state = a.state_dict()
    expected = a(images)
    b = BatchAugment(MEAN, STD, seed=999)
    b.load_state_dict(state)
    assert torch.equal(b(images), expected)
    assert not torch.equal(BatchAugment(MEAN, STD, seed=12)(images), BatchAugment(MEAN, STD, seed=13)(images))


def test_channels_last_and_grey():
    out = BatchAugment((0.5,), (0.25,), channels_last=True)(batch(c=1))
    assert out.shape == (16, 1, 8, 10)
    out = BatchAugment(MEAN, STD, channels_last=True)(batch())
    assert out.is_contiguous(memory_format=torch.channels_last)


def test_rejects_float_input():
    with pytest.raises(ValueError, match="uint8"):
        BatchAugment(MEAN, STD)(torch.zeros(2, 3, 4, 4))


def test_padding_alias_and_image_size_check():
    images = batch(h=8, w=8)
    a = BatchAugment(MEAN, STD, padding=2, seed=1, image_size=8)
    b = BatchAugment(MEAN, STD, pad=2, seed=1)
    assert a.pad == 2 and torch.equal(a(images), b(images))
    with pytest.raises(ValueError, match="expected 8×8 images"):
        a(batch(h=8, w=10))
