"""Words and numbers for people: sizes, durations, and file names that may not be UTF-8."""

from __future__ import annotations

import os
import time

_UNITS = ("B", "K", "M", "G", "T", "P")


def human_bytes(count: float) -> str:
    """Binary units, three significant digits: ``1.5G``."""
    value = float(count)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            return f"{value:.0f}{unit}" if unit == "B" or abs(value) >= 100 else f"{value:.1f}{unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_duration(seconds: float) -> str:
    """``42s``, ``7m``, ``3.5h``, ``12d``."""
    if seconds < 90:
        return f"{seconds:.0f}s" if seconds >= 10 else f"{seconds:.1f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.0f}d"


def shown_path(path: str | bytes) -> str:
    """A path as logs and screens show it: bytes that are not UTF-8 become ``\\xNN`` escapes.

    Names read through ``os.scandir`` carry such bytes as lone surrogates; both forms
    come out the same, and the result is always printable valid UTF-8.
    """
    raw = path if isinstance(path, bytes) else os.fsencode(path)
    return raw.decode("utf-8", "backslashreplace")


def is_utf8(path: str | bytes) -> bool:
    raw = path if isinstance(path, bytes) else os.fsencode(path)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def local_time(timestamp: float | None) -> str:
    """``2026-11-23 10:00`` in local time, ``-`` for none."""
    return "-" if timestamp is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))
