"""The one place where methods are registered.

Every loss, re-balancing schedule, sampler, post-hoc rule, model and data set is registered here by
name with a decorator on its class (or factory function)::

    @register_loss("ldam")
    class LDAMLoss(ClassCountLoss): ...

Configs name the entry, ``longtail list losses`` shows it, and the shared tests iterate over
``LOSSES.names()`` so a new method is one file plus its test.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from longtail.errors import ConfigError

T = TypeVar("T")


class Registry:
    """A name → constructor table for one kind of component."""

    def __init__(self, kind: str, modules: tuple[str, ...]) -> None:
        self.kind = kind
        # Modules imported on first lookup so that their decorators run; importing the package
        # itself stays cheap.
        self._modules = modules
        self._entries: dict[str, Callable[..., Any]] = {}
        self._loaded = False

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._entries and self._entries[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj  # type: ignore[assignment]
            return obj

        return decorator

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in self._modules:
                importlib.import_module(module)

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def get(self, name: str) -> Callable[..., Any]:
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._entries, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"unknown {self.kind} {name!r}{hint} (known: {', '.join(sorted(self._entries))})"
            ) from None

    def create(self, name: str, /, **kwargs: Any) -> Any:
        return self.get(name)(**kwargs)

    def summary(self, name: str) -> str:
        """First line of the entry's docstring, for ``longtail list``."""
        doc = (self.get(name).__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""

    def catalog(self) -> dict[str, str]:
        """``{name: summary}`` read from the source of the registering modules — their
        ``@register_...("name")`` lines and the docstrings under them — without importing them, so
        that ``longtail list`` does not load torch. Equal to ``{n: self.summary(n) for n in self.names()}``."""
        import ast
        from pathlib import Path

        root = Path(__file__).parent
        marks = {n for n, v in globals().items() if v is self} | {n for n, v in globals().items() if v == self.register}

        def registers(call: ast.expr) -> str | None:  # the name in register_x("name") / REG.register("name")
            if not (isinstance(call, ast.Call) and call.args and isinstance(call.args[0], ast.Constant)):
                return None
            func = call.func
            named = isinstance(func, ast.Name) and func.id in marks
            attribute = isinstance(func, ast.Attribute) and func.attr == "register" and ast.unparse(func.value) in marks
            return str(call.args[0].value) if named or attribute else None

        out: dict[str, str] = {}
        for module in self._modules:
            path = root.joinpath(*module.split(".")[1:])
            for file in sorted(path.rglob("*.py")) if path.is_dir() else [path.with_suffix(".py")]:
                tree = ast.parse(file.read_text(encoding="utf-8"))
                defs = {n.name: n for n in ast.walk(tree) if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
                found = [(registers(d), node) for node in defs.values() for d in node.decorator_list]
                found += [(registers(n.func), defs.get(n.args[0].id)) for n in ast.walk(tree)  # register_x("a")(Cls)
                          if isinstance(n, ast.Call) and n.args and isinstance(n.args[0], ast.Name)]
                for name, node in found:
                    if name is not None and node is not None:
                        doc = (ast.get_docstring(node) or "").strip()
                        out[name] = doc.splitlines()[0] if doc else ""
        return dict(sorted(out.items()))

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


LOSSES = Registry("loss", ("longtail.losses",))
SCHEDULES = Registry("schedule", ("longtail.rebalance",))
SAMPLERS = Registry("sampler", ("longtail.samplers",))
POSTHOC = Registry("post-hoc rule", ("longtail.posthoc",))
MODELS = Registry("model", ("longtail.models",))
DATASETS = Registry("data set", ("longtail.data.datasets",))

REGISTRIES: dict[str, Registry] = {
    "losses": LOSSES,
    "schedules": SCHEDULES,
    "samplers": SAMPLERS,
    "posthoc": POSTHOC,
    "models": MODELS,
    "datasets": DATASETS,
}

register_loss = LOSSES.register
register_schedule = SCHEDULES.register
register_sampler = SAMPLERS.register
register_posthoc = POSTHOC.register
register_model = MODELS.register
register_dataset = DATASETS.register
