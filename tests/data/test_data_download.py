import hashlib
import http.server
import io
import tarfile
import threading
from pathlib import Path

import pytest

from longtail.cli import main
from longtail.data import download
from longtail.data.datasets import load_split
from longtail.data.download import Resource, Source, download_dataset, download_file, extract_tar
from longtail.errors import DataError


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the directory; ``/cut/<name>`` announces the full length but sends half, then closes."""

    def do_GET(self):  # noqa: N802
        if self.path.startswith("/cut/"):
            data = (Path(self.directory) / self.path[5:]).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()

    def handler(*args, **kwargs):
        return _Handler(*args, directory=str(served), **kwargs)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_verifies_and_renames(server, tmp_path):
    served, url = server
    payload = bytes(range(256)) * 300
    (served / "good.bin").write_bytes(payload)
    target = tmp_path / "out" / "good.bin"
    assert download_file(url + "good.bin", target, md5(payload)) == target
    assert target.read_bytes() == payload
    assert leftovers(target.parent) == ["good.bin"]
    (served / "good.bin").write_bytes(b"changed")  # already there with the right checksum: not fetched again
    download_file(url + "good.bin", target, md5(payload))
    assert target.read_bytes() == payload


def test_corrupt_download_leaves_nothing(server, tmp_path):
    served, url = server
    (served / "bad.bin").write_bytes(b"x" * 5000)
    out = tmp_path / "out"
    with pytest.raises(DataError, match=r"bad.bin is corrupt: MD5 .* instead of 0123"):
        download_file(url + "bad.bin", out / "bad.bin", "0123" + "0" * 28)
    assert leftovers(out) == []


def test_truncated_download_leaves_nothing(server, tmp_path):
    served, url = server
    payload = b"y" * 100_000
    (served / "big.bin").write_bytes(payload)
    out = tmp_path / "out"
    with pytest.raises(DataError, match=r"big.bin (is truncated|failed or was cut off)"):
        download_file(url + "cut/big.bin", out / "big.bin", md5(payload))
    assert leftovers(out) == []


def test_missing_file_is_an_http_error(server, tmp_path):
    _, url = server
    with pytest.raises(DataError, match="HTTP 404"):
        download_file(url + "nothing.bin", tmp_path / "out" / "nothing.bin", "0" * 32)
    assert leftovers(tmp_path / "out") == []


def make_tar(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_download_dataset_cifar10_from_mirror(server, tmp_path, writers, monkeypatch):
    served, url = server
    source_root = writers.cifar10(tmp_path / "src")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(source_root / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    archive = buffer.getvalue()
    (served / "cifar-10-python.tar.gz").write_bytes(archive)
    real = download.SOURCES["cifar10"]
    assert real.files[0].md5 == "c58f30108f718f92721af3b95e74349a"
    monkeypatch.setitem(
        download.SOURCES,
        "cifar10",
        Source(real.base_url, (Resource("cifar-10-python.tar.gz", md5(archive)),), True, real.marker),
    )
    monkeypatch.setenv("LONGTAIL_MIRROR", url)  # the base URL is overridable by environment ...
    root = tmp_path / "data"
    download_dataset("cifar10", root)
    assert len(load_split("cifar10", root, train=True)) == 40
    assert sorted(p.name for p in root.iterdir()) == ["cifar-10-batches-py", "cifar-10-python.tar.gz"]
    # ... and by the command line (--mirror); already in place, so nothing is fetched
    assert (
        main(
            [
                "data",
                "cifar10",
                "--root",
                str(root),
                "--download",
                "--mirror",
                url + "missing/",
                "--imbalance-ratio",
                "2",
                "--json",
            ]
        )
        == 0
    )


def test_download_dataset_corrupt_archive(server, tmp_path, monkeypatch, capsys):
    served, url = server
    (served / "cifar-100-python.tar.gz").write_bytes(b"not the real archive")
    root = tmp_path / "data"
    assert main(["data", "cifar100", "--root", str(root), "--download", "--mirror", url]) == 2
    err = capsys.readouterr().err
    assert "cifar-100-python.tar.gz is corrupt: MD5" in err and "eb9058c3a382ffc7106e4002c42a8d85" in err
    assert leftovers(root) == []


def test_extract_rejects_paths_outside(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    archive.write_bytes(make_tar({"../evil.txt": b"x"}))
    into = tmp_path / "into"
    into.mkdir()
    with pytest.raises(DataError, match="cannot extract"):
        extract_tar(archive, into)
    assert not (tmp_path / "evil.txt").exists() and leftovers(into) == []


def test_unknown_download(tmp_path):
    with pytest.raises(DataError, match="has no public download; known downloads: cifar10, cifar100"):
        download_dataset("tiny-imagenet", tmp_path)
