"""Settings read from environment variables, each refused with a message naming the variable when mistyped."""

from __future__ import annotations

import math
import os


def positive_seconds(name: str) -> float | None:
    """A positive, finite number of seconds from the environment variable ``name``; None when unset or blank;
    ValueError naming the variable (and how to fix it) when it is not one."""
    text = os.environ.get(name)
    if text is None or not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise ValueError(f"{name}={text!r} is not a number of seconds: set it to a positive number "
                         "(e.g. 300), or unset it for the default.")
    return value


def seconds_or(name: str, default: float) -> float:
    """:func:`positive_seconds` of ``name``, or ``default`` when it is unset or not a positive finite number: for a
    setting read when a module is imported, where a mistyped value cannot stop anything with a message."""
    try:
        value = positive_seconds(name)
    except ValueError:
        return default
    return default if value is None else value
