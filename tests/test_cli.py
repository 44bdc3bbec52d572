import subprocess
import sys

from longtail import __version__
from longtail.cli import main


def test_version(capsys):
    try:
        main(["--version"])
    except SystemExit as exit_:
        assert exit_.code == 0
    assert __version__ in capsys.readouterr().out


def test_console_script_help():
    out = subprocess.run(
        [sys.executable, "-m", "longtail", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "list" in out
