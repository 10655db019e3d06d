"""Building real capture trees in tmp dirs for the PCAP tests."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from backends.collector import CollectContext
from backends.pcap.model import DirRecord, PcapSettings, Totals
from backends.pcap.scan import totals
from backends.pcap.walk import DIR_FLAGS, WalkOptions, walk
from console.config import DEFAULT_PATTERNS

#: Far enough in the past to be outside any active window and never "racy".
OLD = time.time() - 10 * 86400


def settings_for(root: Path, cache: Path, **changes: object) -> PcapSettings:
    base = PcapSettings(root=root, cache_dir=cache, patterns=DEFAULT_PATTERNS, workers=2)
    return replace(base, **changes)  # type: ignore[arg-type]


def make_file(path: Path, size: int, mtime: float | None = OLD) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as file:
        file.write(b"\0" * size)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def age_dirs(root: Path, mtime: float = OLD) -> None:
    """Give every directory an old mtime, so an unchanged one is not re-read as racy."""
    for dirpath, _, _ in os.walk(root):
        os.utime(dirpath, (mtime, mtime))


def context(timeout_s: float = 60.0, *, force: bool = False) -> CollectContext:
    return CollectContext(previous=None, force=force, deadline=time.monotonic() + timeout_s,
                          cancelled=threading.Event())


def walk_totals(
    root: Path, previous: Mapping[str, DirRecord] | None = None, *, window_s: float = 120.0, now_ns: int | None = None,
) -> tuple[dict[str, DirRecord], Totals, int]:
    """An in-process walk of the whole tree: (records, totals, directories read)."""
    fd = os.open(root, DIR_FLAGS & ~os.O_NOFOLLOW)
    try:
        options = WalkOptions(DEFAULT_PATTERNS, os.fstat(fd).st_dev, False,
                              time.time_ns() if now_ns is None else now_ns, int(window_s * 1e9))
        records: dict[str, DirRecord] = {}
        read = 0
        for record, was_read in walk(fd, "", previous, options):
            records[record.path] = record
            read += was_read
    finally:
        os.close(fd)
    return dict(sorted(records.items())), totals(records.values(), options.now_ns, options.active_window_ns), read
