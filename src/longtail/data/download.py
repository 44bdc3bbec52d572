"""Download of the data sets that have a public URL, checksum-verified and atomic.

Each file is streamed to a temporary file in the target folder while its MD5 is computed; it is
renamed to its final name only when the byte count and the checksum are right, so an interrupted
or corrupt download never leaves a file that looks complete. Tar archives are extracted with the
``data`` filter (no absolute paths, no ``..``, no links out of the folder, no devices) into a
temporary folder, then renamed into place.

The base URL can be replaced (``base_url=`` or ``$LONGTAIL_MIRROR``), e.g. to a local mirror.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from longtail.errors import DataError

MIRROR_ENV = "LONGTAIL_MIRROR"


@dataclass(frozen=True)
class Resource:
    filename: str
    md5: str


@dataclass(frozen=True)
class Source:
    base_url: str
    files: tuple[Resource, ...]
    extract: bool  # tar archives are extracted into the root
    marker: str  # a path (relative to the root) that exists once the data set is in place


SOURCES: dict[str, Source] = {
    "cifar10": Source(
        "https://www.cs.toronto.edu/~kriz/",
        (Resource("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),),
        extract=True,
        marker="cifar-10-batches-py/test_batch",
    ),
    "cifar100": Source(
        "https://www.cs.toronto.edu/~kriz/",
        (Resource("cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85"),),
        extract=True,
        marker="cifar-100-python/test",
    ),
    "fashion-mnist": Source(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        (
            Resource("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            Resource("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
            Resource("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
            Resource("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
        ),
        extract=False,
        marker="t10k-labels-idx1-ubyte.gz",
    ),
    "mnist": Source(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        (
            Resource("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
            Resource("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
            Resource("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
            Resource("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
        ),
        extract=False,
        marker="t10k-labels-idx1-ubyte.gz",
    ),
}


def md5_of(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def download_file(url: str, destination: str | Path, md5: str, timeout: float = 60.0) -> Path:
    """Fetch ``url`` to ``destination`` if it is not already there with checksum ``md5``.

    Streams into ``.<name>.*.part`` beside the destination and renames it only when complete and
    verified; on any failure the partial file is removed and a DataError names the URL.
    """
    destination = Path(destination)
    if destination.is_file() and md5_of(destination) == md5:
        return destination
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(
        dir=destination.parent, prefix=f".{destination.name}.", suffix=".part", delete=False
    )
    part = Path(handle.name)
    try:
        digest = hashlib.md5(usedforsecurity=False)
        received = 0
        try:
            with handle, urllib.request.urlopen(url, timeout=timeout) as response:
                expected = response.headers.get("Content-Length")
                while block := response.read(1 << 16):
                    handle.write(block)
                    digest.update(block)
                    received += len(block)
        except urllib.error.HTTPError as error:
            raise DataError(f"download of {url} failed: HTTP {error.code} {error.reason}") from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
            reason = getattr(error, "reason", None) or error
            raise DataError(f"download of {url} failed or was cut off ({reason}); try again") from None
        if expected is not None and received != int(expected):
            raise DataError(f"download of {url} is truncated: got {received} of {expected} bytes; try again")
        if digest.hexdigest() != md5:
            raise DataError(
                f"download of {url} is corrupt: MD5 {digest.hexdigest()} instead of {md5}; "
                "nothing was kept, try again or use another mirror"
            )
        os.replace(part, destination)
        return destination
    finally:
        part.unlink(missing_ok=True)


def extract_tar(archive: str | Path, into: str | Path) -> None:
    """Extract ``archive`` into ``into`` safely: via a temporary folder, then renamed into place."""
    archive, into = Path(archive), Path(into)
    staging = Path(tempfile.mkdtemp(dir=into, prefix=".extract-"))
    try:
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(staging, filter="data")
        except (tarfile.TarError, EOFError, OSError) as error:
            raise DataError(f"cannot extract {archive}: {error}; delete it and download again") from None
        for entry in staging.iterdir():
            target = into / entry.name
            if target.exists():
                shutil.rmtree(target) if target.is_dir() else target.unlink()
            os.replace(entry, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def download_dataset(name: str, root: str | Path, base_url: str | None = None, timeout: float = 60.0) -> Path:
    """Download (and extract) data set ``name`` into ``root``; returns ``root``.

    ``base_url`` (or ``$LONGTAIL_MIRROR``) replaces the official location; files are looked up
    as ``<base_url>/<filename>``. Nothing is fetched when the data set is already in place.
    """
    if name not in SOURCES:
        raise DataError(
            f"data set {name!r} has no public download; known downloads: {', '.join(sorted(SOURCES))}"
        )
    source = SOURCES[name]
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if (root / source.marker).exists():
        return root
    base = (base_url or os.environ.get(MIRROR_ENV) or source.base_url).rstrip("/") + "/"
    for resource in source.files:
        path = download_file(base + resource.filename, root / resource.filename, resource.md5, timeout)
        if source.extract:
            extract_tar(path, root)
    return root
