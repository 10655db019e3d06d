"""The PCAP cache panel: capture totals, disk and trend, the shared cache's state, and a
breakdown by top-level subdirectory.

Keys: ``c`` plans a retention cleanup (confirm, progress, Esc cancels between files),
Enter or ``f`` opens the file index, ``/`` filters the breakdown.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static

from backends.human import human_bytes, human_duration, local_time
from backends.pcap import PcapCleanup, PcapSettings, PcapStats, deleted_log_path
from backends.rows import Row
from panels.base import show_text
from panels.pcap.index import FileIndexScreen
from panels.table import Column
from panels.table_panel import TablePanel

BLOCKS = "▁▂▃▄▅▆▇█"
BAR_WIDTH = 20


def sparkline(values: Sequence[float], width: int) -> str:
    """The last ``width`` values as block characters between their own min and max."""
    shown = list(values)[-width:]
    if not shown:
        return ""
    low, high = min(shown), max(shown)
    if high == low:
        return BLOCKS[0] * len(shown)
    return "".join(BLOCKS[round((v - low) / (high - low) * (len(BLOCKS) - 1))] for v in shown)


def disk_bar(used_fraction: float, width: int = BAR_WIDTH) -> str:
    filled = max(0, min(width, round(used_fraction * width)))
    return "█" * filled + "░" * (width - filled)


def totals_line(value: PcapStats) -> str:
    oldest = local_time(value.oldest.mtime if value.oldest else None)
    newest = local_time(value.newest.mtime if value.newest else None)
    return (f"{value.files:,} files · {human_bytes(value.bytes)} ({human_bytes(value.allocated_bytes)} on disk)"
            f" · {value.active_files} active · {oldest} → {newest}")


def disk_line(value: PcapStats) -> str:
    disk = value.disk
    used = disk.used / disk.total if disk.total else 0.0
    growth = "growth -" if value.growth_bytes_per_hour is None else f"growth {human_bytes(value.growth_bytes_per_hour)}/h"
    full = "not filling" if value.seconds_to_full is None else f"full in {human_duration(value.seconds_to_full)}"
    return f"disk {disk_bar(used)} {disk.free_percent:.0f}% free of {human_bytes(disk.total)} · {growth} · {full}"


def cache_line(value: PcapStats, now: float) -> str:
    """The shared cache: its age and TTL, and who is rebuilding it (short enough for a quarter screen)."""
    cache = value.cache
    if cache is None:
        return ""
    line = f"cache {human_duration(max(0.0, now - cache.written_at))} old, ttl {human_duration(cache.ttl_s)}"
    if cache.refreshing:
        who = (f"pid {cache.rebuilder.pid} since {time.strftime('%H:%M:%S', time.localtime(cache.rebuilder.since))}"
               if cache.rebuilder else "another process")
        line += f" · rebuilding: {who}"
    return line


def scan_line(value: PcapStats) -> str:
    """The last scan, and how many readers were served an expired result since."""
    scan = value.scan
    line = f"{scan.mode} scan {human_duration(scan.duration_s)} ({scan.rescanned_dirs}/{scan.dirs} dirs read)"
    if value.cache is not None:
        line += f" · {value.cache.stale_served} stale served"
    return line


def problems_line(value: PcapStats) -> str:
    parts = []
    if value.cache is not None and value.cache.warning:
        parts.append(value.cache.warning)
    if value.errors:
        named = ", ".join(f"{e.path} ({e.error})" for e in value.errors[:3])
        more = f" +{len(value.errors) - 3}" if len(value.errors) > 3 else ""
        parts.append(f"{len(value.errors)} unreadable: {named}{more}")
    return " · ".join(parts)


def short_time(timestamp: float | None) -> str:
    """``11-23 10:00``: the breakdown's newest-file column, narrow enough for 80 columns."""
    return local_time(timestamp)[5:] if timestamp is not None else "-"


class PcapPanel(TablePanel):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "cleanup", "Cleanup", tooltip="Plan a retention cleanup: oldest files first until "
                "[pcap.retention] holds", id="pcap.cleanup"),
        Binding("f", "file_index", "Files", tooltip="Open the file index: newest, oldest or largest first",
                id="pcap.files"),
    ]

    def columns(self) -> list[Column]:
        return [
            Column("Directory", flex=True, max_width=40),
            Column("Files", numeric=True),
            Column("Size", numeric=True, format=human_bytes),
            Column("Active", numeric=True),
            Column("Newest", format=short_time, min_width=11),
        ]

    def rows_of(self, value: Any) -> Iterable[Row]:
        if not isinstance(value, PcapStats):
            return
        for sub in value.subdirs:
            yield Row(sub.name, (sub.name, sub.files, sub.bytes, sub.active_files or None, sub.newest_mtime))

    def compose_summary(self) -> ComposeResult:
        for name in ("totals", "disk", "trend", "cache", "scan", "problems"):
            yield Static("", id=f"pcap-{name}", classes="pcap-line", markup=False)

    def render_summary(self, value: Any) -> None:
        if not isinstance(value, PcapStats):
            return
        trend = sparkline([float(b) for _, b in value.history], 40)
        lines = {
            "totals": totals_line(value),
            "disk": disk_line(value),
            "trend": f"size trend {trend} (last {min(len(value.history), 40)} scans)" if trend else "",
            "cache": cache_line(value, self.clock()),
            "scan": scan_line(value),
            "problems": problems_line(value),
        }
        for name, text in lines.items():
            line = self.query_one(f"#pcap-{name}", Static)
            show_text(line, text)
            if line.display != bool(text):
                line.display = bool(text)

    def update_status(self) -> None:
        super().update_status()
        if self.shown and self.snapshot is not None and isinstance(self.snapshot.value, PcapStats):
            show_text(self.query_one("#pcap-cache", Static), cache_line(self.snapshot.value, self.clock()))

    # -- actions ---------------------------------------------------------------------

    def _settings(self) -> PcapSettings | None:
        """The collector's settings: [pcap] from the app's config, cache dir as the scan used it."""
        value = self.snapshot.value if self.snapshot is not None else None
        config = getattr(self.app, "config", None)
        if not isinstance(value, PcapStats) or value.cache is None or config is None or config.pcap.root is None:
            return None
        return PcapSettings.of(config.pcap, Path(value.cache.path).parent)

    def action_cleanup(self) -> None:
        settings = self._settings()
        if settings is None:
            self.notify("cleanup: no scan of the capture directory yet", severity="warning")
            return
        self.post_message(self.ActionRequested(PcapCleanup(settings, deleted_log_path(self.app.audit.path))))

    def action_file_index(self) -> None:
        settings = self._settings()
        if settings is None:
            self.notify("file index: no scan of the capture directory yet", severity="warning")
            return
        self.app.push_screen(FileIndexScreen(settings))

    def open_detail(self, row: Row) -> None:
        self.action_file_index()
