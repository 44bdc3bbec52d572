"""Keyword checking shared by losses and schedules: a typo in a config becomes a one-line ConfigError."""

from __future__ import annotations

import difflib
import inspect
from typing import Any

from longtail.errors import ConfigError


def check_keywords(cls: type, kwargs: dict[str, Any], kind: str) -> None:
    """Raise ConfigError if ``kwargs`` holds a name that ``cls.__init__`` does not accept."""
    signature = inspect.signature(cls.__init__)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()):
        return
    known = [name for name in signature.parameters if name != "self"]
    for key in kwargs:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"{kind} {cls.__name__} has no parameter {key!r}{hint} (known: {', '.join(known)})"
            )
