"""The report opened in headless Chromium: every embedded image renders, and a screenshot is taken.

No selenium: Chromium's own ``--dump-dom`` (on a copy of the page with a script that writes each
``<img>``'s natural size into the DOM after ``load``) and ``--screenshot``. Skipped only when
Chromium is absent outside CI; in CI (``CI`` set) a missing Chromium fails the test.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import struct
import subprocess

import pytest
from analysis_synthetic import synthetic_run

from longtail.analysis.report import write_report

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars")  # fmt: skip
PROBE = (
    "<script>window.addEventListener('load', function () {"
    " var sizes = [];"
    " for (var i = 0; i < document.images.length; i++) {"
    "  var im = document.images[i]; sizes.push([im.naturalWidth, im.naturalHeight, im.complete]); }"
    " var pre = document.createElement('pre'); pre.id = 'image-sizes';"
    " pre.textContent = JSON.stringify(sizes); document.body.appendChild(pre); });</script>"
)


@pytest.fixture
def chromium():
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI"):
        pytest.fail("headless Chromium is required in CI (Debian packages chromium chromium-driver); install it")
    pytest.skip("Chromium is not installed (apt-get install chromium)")


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def run_chromium(binary, profile, *args):
    cmd = [binary, *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


@pytest.mark.browser
def test_report_renders_in_chromium(chromium, tmp_path):
    runs = [synthetic_run("erm", 0, tsne_per_class=4, epochs=2)]
    page = write_report(runs, tmp_path / "report")
    text = page.read_text(encoding="utf-8")
    sources = re.findall(r"<img [^>]*src='data:image/png;base64,([^']*)'", text)
    expected = [png_size(base64.b64decode(s)) for s in sources]
    assert len(expected) >= 8

    probe = tmp_path / "probe.html"
    probe.write_text(text.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dumped = run_chromium(chromium, tmp_path / "profile-dom", "--virtual-time-budget=10000", "--dump-dom",
                          probe.as_uri())  # fmt: skip
    match = re.search(r'<pre id="image-sizes">(.*?)</pre>', dumped.stdout)
    assert match, f"no image sizes in the dumped DOM; chromium said: {dumped.stderr[-2000:]}"
    sizes = json.loads(match.group(1))
    assert len(sizes) == len(expected)
    for (width, height, complete), (png_w, png_h) in zip(sizes, expected):
        assert complete and width > 0 and height > 0
        assert (width, height) == (png_w, png_h)

    shot = tmp_path / "report.png"
    result = run_chromium(chromium, tmp_path / "profile-shot", "--window-size=1200,3000",
                          f"--screenshot={shot}", page.as_uri())  # fmt: skip
    assert shot.is_file(), f"no screenshot; chromium said: {result.stderr[-2000:]}"
    assert png_size(shot.read_bytes()) == (1200, 3000)
    from PIL import Image

    with Image.open(shot) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is None or len(colours) > 50  # text and plots, not a blank page
