"""Disk space of the capture filesystem and the growth trend from past scans."""

from __future__ import annotations

import os
from collections.abc import Sequence

from backends.pcap.model import Disk

#: The trend is the slope over this much recent history.
TREND_WINDOW_S = 6 * 3600.0
#: Fewer seconds of history than this give no trend (two scans a moment apart say nothing).
MIN_SPAN_S = 60.0


def disk_usage(path: str) -> Disk:
    """Total, used and free bytes of the filesystem holding ``path`` (free: what non-root may use)."""
    st = os.statvfs(path)
    return Disk(
        total=st.f_blocks * st.f_frsize,
        used=(st.f_blocks - st.f_bfree) * st.f_frsize,
        free=st.f_bavail * st.f_frsize,
    )


def growth_bytes_per_hour(history: Sequence[tuple[float, int]], now: float) -> float | None:
    """Least-squares slope of (time, bytes) over the trend window, in bytes per hour."""
    points = [(t, b) for t, b in history if t >= now - TREND_WINDOW_S]
    if len(points) < 2 or points[-1][0] - points[0][0] < MIN_SPAN_S:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_b = sum(b for _, b in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return None
    slope = sum((t - mean_t) * (b - mean_b) for t, b in points) / var
    return slope * 3600.0


def seconds_to_full(disk: Disk, growth_per_hour: float | None) -> float | None:
    """When the filesystem fills at the current growth; None when captures are not growing."""
    if growth_per_hour is None or growth_per_hour <= 0:
        return None
    return disk.free / (growth_per_hour / 3600.0)


def add_point(history: Sequence[tuple[float, int]], at: float, total: int, keep: int) -> tuple[tuple[float, int], ...]:
    """History with one more point, the oldest dropped past ``keep``."""
    return (*history, (at, total))[-keep:]

