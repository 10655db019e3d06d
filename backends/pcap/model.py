"""The shapes of the PCAP panel's data: per-directory records, settings, and the published value.

Everything here is a frozen dataclass: records travel between scan worker processes,
the on-disk cache and the panel, and nobody may change one in place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from backends.human import human_bytes


class ScanMode(StrEnum):
    FULL = "full"
    INCREMENTAL = "incremental"


@dataclass(frozen=True, slots=True)
class PcapSettings:
    """What the scanner, cache and cleanup need from ``[pcap]``, with the cache dir resolved."""

    root: Path
    cache_dir: Path
    patterns: tuple[str, ...]
    ttl: float = 300.0
    scan_timeout: float = 120.0
    active_window_s: float = 120.0
    full_rescan_every: int = 12
    cross_filesystems: bool = False
    max_age_days: float | None = None
    max_total_bytes: int | None = None
    min_free_percent: float | None = None
    keep_newest: int = 10
    workers: int = 2

    @classmethod
    def of(cls, pcap: Any, default_cache_dir: Path) -> PcapSettings:
        """From the console's ``[pcap]`` config section (duck-typed: backends import no console)."""
        retention = pcap.retention
        return cls(
            root=Path(pcap.root),
            cache_dir=Path(pcap.cache_dir or default_cache_dir),
            patterns=tuple(pcap.patterns),
            ttl=pcap.ttl,
            scan_timeout=pcap.scan_timeout,
            active_window_s=pcap.active_window_s,
            full_rescan_every=pcap.full_rescan_every,
            cross_filesystems=pcap.cross_filesystems,
            max_age_days=retention.max_age_days,
            max_total_bytes=retention.max_total_bytes,
            min_free_percent=retention.min_free_percent,
            keep_newest=retention.keep_newest,
        )


@dataclass(frozen=True, slots=True)
class RecentFile:
    """A file inside the active window at scan time: re-checked by every incremental rescan."""

    name: str
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class DirRecord:
    """One directory's own files (not its subdirectories'), as of its last scan.

    ``oldest``/``newest`` are (name, mtime_ns). ``racy`` marks a directory whose mtime was
    too close to the scan to trust (a change in the same clock tick would not move it):
    the next incremental rescan reads it again, as git does with its racy index entries.
    """

    path: str
    dev: int
    ino: int
    mtime_ns: int
    files: int = 0
    bytes: int = 0
    allocated: int = 0
    oldest: tuple[str, int] | None = None
    newest: tuple[str, int] | None = None
    recent: tuple[RecentFile, ...] = ()
    subdirs: tuple[str, ...] = ()
    racy: bool = False
    error: str | None = None

    def same_content(self, other: DirRecord) -> bool:
        """Equal as far as totals go (scan bookkeeping such as ``racy`` aside)."""
        return (
            self.path, self.files, self.bytes, self.allocated, self.oldest, self.newest,
            self.subdirs, self.error, self.recent,
        ) == (
            other.path, other.files, other.bytes, other.allocated, other.oldest, other.newest,
            other.subdirs, other.error, other.recent,
        )


@dataclass(frozen=True, slots=True)
class FileAt:
    path: str
    mtime: float


@dataclass(frozen=True, slots=True)
class SubdirTotals:
    """Counts for one top-level subdirectory of root ("." for files directly in root)."""

    name: str
    files: int
    bytes: int
    allocated_bytes: int
    active_files: int
    newest_mtime: float | None


@dataclass(frozen=True, slots=True)
class ScanError:
    path: str
    error: str


@dataclass(frozen=True, slots=True)
class Totals:
    """The whole tree's counts, derived from the directory records."""

    files: int
    bytes: int
    allocated_bytes: int
    oldest: FileAt | None
    newest: FileAt | None
    active_files: int
    subdirs: tuple[SubdirTotals, ...]
    errors: tuple[ScanError, ...]


@dataclass(frozen=True, slots=True)
class ScanInfo:
    mode: ScanMode
    dirs: int
    by_pid: int
    started_at: float
    duration_s: float
    serial: int
    rescanned_dirs: int


@dataclass(frozen=True, slots=True)
class Disk:
    total: int
    used: int
    free: int

    @property
    def free_percent(self) -> float:
        return 100.0 * self.free / self.total if self.total else 0.0


@dataclass(frozen=True, slots=True)
class Rebuilder:
    """Who is scanning right now (another process holds the scan lock)."""

    pid: int
    since: float


@dataclass(frozen=True, slots=True)
class CacheInfo:
    path: str
    written_at: float
    age_s: float
    ttl_s: float
    last_scan_s: float
    refreshing: bool
    rebuilder: Rebuilder | None
    stale_served: int
    warning: str | None = None


@dataclass(frozen=True, slots=True)
class PcapStats:
    """The `pcap` value of `snapshot --json` (DESIGN.md); keys after ``errors`` are additions."""

    root: str
    files: int
    bytes: int
    allocated_bytes: int
    oldest: FileAt | None
    newest: FileAt | None
    active_files: int
    scan: ScanInfo
    disk: Disk
    growth_bytes_per_hour: float | None
    seconds_to_full: float | None
    errors: tuple[ScanError, ...]
    subdirs: tuple[SubdirTotals, ...] = ()
    history: tuple[tuple[float, int], ...] = field(default=())
    cache: CacheInfo | None = None

    def summary(self) -> str:
        """One line for `snapshot` without --json."""
        return (
            f"{self.files} files, {human_bytes(self.bytes)}, "
            f"{self.disk.free_percent:.0f}% free, {self.scan.mode} scan of {self.scan.dirs} dirs"
        )
