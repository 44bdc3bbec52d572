"""Decoding image files with Pillow, with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from longtail.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".ppm", ".pgm", ".tif", ".tiff")


def is_image_file(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def open_rgb(path: str | Path):  # -> PIL.Image.Image
    """Open and fully decode ``path`` as an RGB Pillow image; DataError if it cannot be decoded."""
    return open_image(path, "RGB")


def open_image(path: str | Path, mode: str = "RGB"):  # -> PIL.Image.Image
    """Open and fully decode ``path`` as a Pillow image in ``mode`` (``RGB`` or ``L`` = grey)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()  # decode now: truncated files fail here, not later in a worker
            return image.convert(mode)
    except FileNotFoundError:
        raise DataError(f"missing image file {path}; the data set folder is incomplete") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise DataError(f"cannot decode image {path}: truncated or corrupt ({error})") from None


def read_rgb_array(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """uint8 ``[3, H, W]`` of the image at ``path``; ``size`` = (H, W) it must have, if given."""
    image = open_rgb(path)
    if size is not None and (image.height, image.width) != size:
        raise DataError(f"image {path} is {image.width}×{image.height}, expected {size[1]}×{size[0]}")
    return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)
