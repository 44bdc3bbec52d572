"""The library does not depend on the command line: only `longtail/commands/` and `longtail/cli.py`
import `longtail.commands` (commands parse arguments and call library functions)."""

from __future__ import annotations

import ast
from pathlib import Path

import longtail

PACKAGE = Path(longtail.__file__).resolve().parent


def commands_imports(path: Path) -> list[str]:
    """The ``longtail.commands`` modules that ``path`` imports (anywhere, also inside functions)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found += [n for n in names if n == "longtail.commands" or n.startswith("longtail.commands.")]
    return found


def test_no_library_module_imports_the_commands():
    offenders = {
        str(path.relative_to(PACKAGE)): names
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.relative_to(PACKAGE).parts[0] not in ("commands", "cli.py") and (names := commands_imports(path))
    }
    assert offenders == {}


def test_the_check_sees_an_import_of_the_commands(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from longtail.commands.eval import parse_rule_params\n")
    assert commands_imports(module) == ["longtail.commands.eval", "longtail.commands.eval.parse_rule_params"]
    assert commands_imports(PACKAGE / "cli.py")  # the command line itself does
