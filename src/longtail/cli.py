"""The ``longtail`` command.

Each sub-command lives in its own module under :mod:`longtail.commands` and defines
``register(subparsers)``, which adds its parser and sets ``func`` (a callable taking the parsed
arguments and returning an exit status). Modules are discovered, so adding a command touches no
other file. Heavy imports (torch, matplotlib) happen inside ``func``, keeping ``--help`` fast.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from longtail import __version__
from longtail.errors import LongtailError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="longtail",
        description="Deep learning on long-tailed data: LDAM-DRW, CDT and their baselines.",
    )
    parser.add_argument("--version", action="version", version=f"longtail {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    import longtail.commands as commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"longtail.commands.{info.name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    # Commands with ``key=value`` overrides take them anywhere on the line, also after options
    # (``longtail train CFG --out DIR train.epochs=2``); anything else left over is an error.
    args, extra = parser.parse_known_args(argv)
    if extra:
        if hasattr(args, "overrides") and all("=" in item and not item.startswith("-") for item in extra):
            args.overrides = list(args.overrides or []) + extra
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except LongtailError as error:
        status = int(getattr(error, "exit_status", 2))
        print(f"longtail: {'error' if status == 2 else 'stopped'}: {error}", file=sys.stderr)
        return status
    except OSError as error:
        # A file-system refusal on a path the user gave (too long, no permission, no space, read-only):
        # the environment, not a bug. OS errors without a file name (sockets, ...) keep their traceback.
        if error.filename is None:
            raise
        where = error.filename if error.filename2 is None else f"{error.filename} -> {error.filename2}"
        print(f"longtail: error: {where}: {error.strerror or error}; check the path, its permissions and the free "
              "space", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("longtail: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
