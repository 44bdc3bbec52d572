"""User-facing errors: one line that names the problem and the fix."""

from __future__ import annotations


class LongtailError(Exception):
    """An error caused by the user's input (a path, an option, a file, a config).

    The command line prints ``longtail: error: <message>`` and exits with status 2, without a
    traceback. Raise it at the edge (where input is read and validated), never deep inside.
    """


class DataError(LongtailError):
    """A data set on disk is missing, truncated, corrupt or inconsistent."""


class ConfigError(LongtailError):
    """A configuration key or value is invalid."""
