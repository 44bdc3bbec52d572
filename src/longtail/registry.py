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
import inspect
import math
import types
import typing
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar, Union

from longtail.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class Range:
    """Bounds of a numeric parameter, declared in the signature: ``s: Annotated[float, Range(gt=0)]``."""

    ge: float | None = None
    gt: float | None = None
    lt: float | None = None

    def check(self, value: float) -> str | None:
        """None when ``value`` is inside, else what it must be (for the error message)."""
        low = (self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
        if low and (self.lt is None or value < self.lt):
            return None
        lower = f">= {self.ge:g}" if self.ge is not None else f"> {self.gt:g}" if self.gt is not None else ""
        if self.lt is None:
            return lower
        if self.ge is None and self.gt is None:
            return f"< {self.lt:g}"
        return f"in [{self.ge:g}, {self.lt:g})" if self.ge is not None else f"in ({self.gt:g}, {self.lt:g})"


# Declared kinds of parameter used across the registered constructors; the registry checks them.
NonNegative = Annotated[float, Range(ge=0)]
Positive = Annotated[float, Range(gt=0)]
Fraction = Annotated[float, Range(ge=0, lt=1)]  # [0, 1), e.g. the effective-number beta
Epoch = Annotated[int, Range(ge=0)]
PositiveInt = Annotated[int, Range(ge=1)]


class _Mismatch(Exception):
    """A value does not fit a declared type; the argument says what it must be."""


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Annotated:
        return _describe(typing.get_args(hint)[0])
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(hint))
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in typing.get_args(hint))
    if origin is dict or hint is dict:
        return "a mapping"
    names = {float: "a finite number", int: "an integer", bool: "true or false", str: "a string"}
    return "null" if hint is type(None) else names.get(hint, getattr(hint, "__name__", str(hint)))


def conform(value: Any, hint: Any) -> Any:
    """``value`` checked against the declared type ``hint`` (ints widen to float); raises _Mismatch.

    Types the registry does not know (tensors, sequences of counts: arguments the engine supplies)
    are passed through unchecked.
    """
    origin = typing.get_origin(hint)
    if origin is Annotated:
        base, *rules = typing.get_args(hint)
        value = conform(value, base)
        for rule in rules:
            if isinstance(rule, Range) and (need := rule.check(value)) is not None:
                raise _Mismatch(need)
        return value
    if origin in (Union, types.UnionType):
        needs = []
        for arg in typing.get_args(hint):
            try:
                return conform(value, arg)
            except _Mismatch as mismatch:
                needs.append(str(mismatch))
        raise _Mismatch(" or ".join(needs))
    if origin is Literal:
        if value in typing.get_args(hint) and not isinstance(value, bool):
            return value
        raise _Mismatch(_describe(hint))
    ok = {
        type(None): value is None,
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
        str: isinstance(value, str),
        dict: isinstance(value, dict) and all(isinstance(k, str) for k in value),
    }
    key = dict if origin is dict else hint
    if key not in ok:
        return value
    if not ok[key]:
        raise _Mismatch(_describe(hint))
    return float(value) if hint is float else value


def _signature(entry: Callable[..., Any]) -> tuple[dict[str, inspect.Parameter], dict[str, Any]]:
    """Named parameters and type hints of a function or class; a constructor's ``**kwargs`` are
    followed to the next ``__init__`` up the class hierarchy (``super().__init__(..., **kwargs)``)."""
    targets = [k.__init__ for k in entry.__mro__ if "__init__" in vars(k)] if inspect.isclass(entry) else [entry]
    declared: dict[str, inspect.Parameter] = {}
    hints: dict[str, Any] = {}
    for target in targets:
        parameters = inspect.signature(target).parameters.values()
        for p in parameters:
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                declared.setdefault(p.name, p)
        hints = {**typing.get_type_hints(target, include_extras=True), **hints}
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    return declared, hints


def bind_arguments(
    entry: Callable[..., Any],
    where: str,
    params: dict[str, Any],
    runtime: Iterable[str] = (),
    building: bool = False,
) -> dict[str, Any]:
    """``params`` checked against the signature of ``entry`` (a class or function) and its declared types.

    ``runtime`` names the arguments the caller supplies when it builds the object (e.g.
    ``class_counts``): when checking a config (``building=False``) they count as given and
    ``params`` must not set them. Returns the checked parameters (ints given for floats become
    floats); raises a one-line ConfigError naming the fix.
    """
    declared, hints = _signature(entry)
    runtime = tuple(runtime)
    known = list(declared)
    if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
        raise ConfigError(f"{where}: parameters must be a mapping of names to values, got {params!r}")
    checked: dict[str, Any] = {}
    for key, value in params.items():
        if key in runtime and not building:
            raise ConfigError(f"{where}: parameter {key!r} is supplied by the engine; remove it from the config")
        if key not in known:
            options = [p for p in known if p not in runtime]
            close = difflib.get_close_matches(key, options, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"unknown parameter {key!r} for {where}{hint} (known: {', '.join(options) or 'none'})")
        try:
            checked[key] = conform(value, hints.get(key, Any))
        except _Mismatch as mismatch:
            raise ConfigError(f"{where} parameter {key} must be {mismatch}, got {value!r}") from None
    empty = inspect.Parameter.empty
    missing = [p for p in known if declared[p].default is empty and p not in checked and (building or p not in runtime)]
    if missing:
        raise ConfigError(f"{where} needs parameter(s) {', '.join(missing)}; set them in its params")
    if hasattr(entry, "check_params"):
        entry.check_params(checked)
    return checked


class Registry:
    """A name → constructor table for one kind of component, and the one way to build them.

    :meth:`create` binds keyword arguments against the constructor's signature: an unknown name, a
    missing or unknown parameter, or a value outside its declared type (``float``, ``int``,
    ``Literal[...]`` choices, :class:`Range` bounds via ``Annotated``) is a one-line ConfigError.
    :meth:`check` does the same without constructing (config validation, before any data is read).
    An entry may add checks across parameters in a ``check_params(params) -> None`` classmethod.
    """

    def __init__(self, kind: str, modules: tuple[str, ...], runtime: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.runtime = runtime  # arguments the engine supplies at build time (not from a config)
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
        except (KeyError, TypeError):
            close = difflib.get_close_matches(str(name), self._entries, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"unknown {self.kind} {name!r}{hint} (known: {', '.join(sorted(self._entries))})"
            ) from None

    def check(self, name: str, params: dict[str, Any] | None = None, runtime: Iterable[str] | None = None) -> None:
        """Validate a name and the parameters a config gives it, without building anything.

        ``runtime`` (default: this registry's ``runtime`` names, e.g. ``class_counts``) are the
        arguments supplied at build time. Raises ConfigError.
        """
        runtime = self.runtime if runtime is None else tuple(runtime)
        bind_arguments(self.get(name), f"{self.kind} {name!r}", {} if params is None else params, runtime)

    def create(self, name: str, /, **kwargs: Any) -> Any:
        """Build entry ``name`` from ``kwargs``, checked as :meth:`check` checks a config's parameters
        (the ``runtime`` arguments are checked against their declared types too)."""
        return self.get(name)(**bind_arguments(self.get(name), f"{self.kind} {name!r}", kwargs, self.runtime, True))

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


LOSSES = Registry("loss", ("longtail.losses",), runtime=("class_counts",))
SCHEDULES = Registry("schedule", ("longtail.rebalance",), runtime=("class_counts",))
SAMPLERS = Registry("sampler", ("longtail.samplers",), runtime=("labels", "seed", "rank", "world_size"))
POSTHOC = Registry("post-hoc rule", ("longtail.posthoc",))
MODELS = Registry("model", ("longtail.models",), runtime=("num_classes", "head"))
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
