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
