"""A panel's status line, worded from its collector's snapshot."""

from __future__ import annotations

from typing import Any

from backends.collector import Snapshot


def format_age(seconds: float) -> str:
    """Compact age as an operator reads it: 3s, 5m, 2h, 3d."""
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def format_duration(seconds: float) -> str:
    """A collection's duration: "120 ms" below a second, "1.9 s" above."""
    milliseconds = round(seconds * 1000)  # decide on the rounded value: 0.9996 s is "1.0 s", not "1000 ms"
    return f"{milliseconds} ms" if milliseconds < 1000 else f"{seconds:.1f} s"


def status_text(snapshot: Snapshot[Any], now: float) -> str:
    """"updated 3s ago · 120 ms · next in 7s", "refreshing…", or "stale 5m · <error>"."""
    age = snapshot.age_s(now)
    updated = None if age is None else f"updated {format_age(age)} ago"
    if snapshot.refreshing:
        parts = ["refreshing…", updated]
    elif snapshot.error is not None:
        parts = [f"stale {format_age(age)}" if age is not None else "no data", snapshot.error]
        if snapshot.next_at is not None and not snapshot.paused:
            parts.append(f"retry in {format_age(snapshot.next_at - now)}")
    elif age is None:
        parts = ["waiting for first collection…"]
    else:
        parts = [updated, format_duration(snapshot.duration_s or 0.0)]
        if snapshot.next_at is not None and not snapshot.paused:
            parts.append(f"next in {format_age(snapshot.next_at - now)}")
    if snapshot.paused:
        parts.insert(0, "paused")
    return " · ".join(part for part in parts if part)


def status_kind(snapshot: Snapshot[Any]) -> str:
    """A CSS class for the status line: ok, refreshing, stale or waiting."""
    if snapshot.refreshing:
        return "refreshing"
    if snapshot.error is not None:
        return "stale"
    return "ok" if snapshot.taken_at is not None else "waiting"
