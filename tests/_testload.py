"""Load a file of this repository that is not an importable module — a benchmark or tool script, another
directory's ``conftest.py`` with its data writers — once per test session (``tests`` is on pytest's
``pythonpath``: ``from _testload import REPO, load_file``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def load_file(path: str | Path) -> ModuleType:
    """The module of ``path`` (absolute, or relative to the repository), executed on the first call and
    cached in ``sys.modules`` under a name made of its path (dataclasses look their module up there)."""
    path = Path(path)
    path = path if path.is_absolute() else REPO / path
    name = "longtail_testload_" + "_".join(path.resolve().relative_to(REPO).with_suffix("").parts).replace("-", "_")
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return sys.modules[name]
