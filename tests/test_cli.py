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


NO_TORCH = """
import sys
from longtail.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit_:
    code = exit_.code
print("TORCH-LOADED" if "torch" in sys.modules else "NO-TORCH", code)
"""


def _run_without_torch(*argv: str) -> str:
    return subprocess.run([sys.executable, "-c", NO_TORCH, *argv], capture_output=True, text=True, check=True).stdout


def test_help_and_list_do_not_import_torch():
    for argv in (["--help"], ["bench", "speed", "--help"], ["list", "losses"], ["list", "datasets"]):
        out = _run_without_torch(*argv)
        assert out.strip().splitlines()[-1] == "NO-TORCH 0", (argv, out)
    assert "\nldam            LDAM: L = CE(s · (z − Δ_y e_y), y)" in _run_without_torch("list", "losses")


def test_list_reads_what_importing_registers():
    """``longtail list`` reads the registrations from the source; importing the modules gives the same."""
    from longtail.registry import REGISTRIES

    for registry in REGISTRIES.values():
        assert registry.catalog() == {name: registry.summary(name) for name in registry.names()}
    assert "power" in REGISTRIES["samplers"].catalog()  # registered by a call, not a decorator
