"""What retention cleanup would delete: oldest files first, until every rule holds.

The plan is computed from a fresh walk (the cache is for display; deleting needs the
truth). It never holds more files than it selects: eligible files go into a heap keyed
newest-first, and the newest is dropped whenever the rest still meets every rule. The
byte need of ``max_total_bytes`` is only known once the walk has summed the tree, so a
walk that dropped too much is repeated with the exact need (rare: only when the tree
grew under the walk, or the newest files are protected by ``keep_newest``).
"""

from __future__ import annotations

import heapq
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

from backends.pcap.inuse import InUse
from backends.pcap.model import Disk, PcapSettings
from backends.pcap.trend import disk_usage
from backends.pcap.walk import DIR_FLAGS, WalkOptions, iter_files, join

#: A walk is repeated at most this many times before the plan settles for what it has.
MAX_PASSES = 3


class Rule(StrEnum):
    MAX_AGE = "max_age_days"
    MAX_TOTAL = "max_total_bytes"
    MIN_FREE = "min_free_percent"


class Skip(StrEnum):
    """Why a file is not deleted (in the plan, or found at the moment of deleting)."""

    ACTIVE = "active window"
    OPEN = "open by a process"
    LOCKED = "locked"
    HARDLINKED = "hard-linked"
    CHANGED = "changed since the plan"
    VANISHED = "vanished"


@dataclass(frozen=True, slots=True, order=True)
class Candidate:
    """A file the plan deletes, as it was when planned; ``path`` is bytes relative to root."""

    mtime_ns: int
    path: bytes
    dev: int = field(compare=False)
    ino: int = field(compare=False)
    size: int = field(compare=False)
    allocated: int = field(compare=False)


@dataclass(frozen=True, slots=True)
class Needs:
    """How much must go for the rules to hold, measured when planning."""

    age_cutoff_ns: int | None
    total_bytes: int
    apparent: int  # bytes of files (max_total_bytes)
    allocated: int  # disk blocks (min_free_percent)


@dataclass(frozen=True, slots=True)
class CleanupPlan:
    root: str
    files: tuple[Candidate, ...]  # oldest first
    bytes: int
    drivers: tuple[Rule, ...]
    skipped: dict[str, int]
    needs: Needs
    disk: Disk
    unmet: tuple[Rule, ...]  # rules that still fail after deleting every eligible file
    uninspectable: int
    settings: PcapSettings


class _Pass:
    """One walk: sums, the newest ``keep`` files, and the selection heap."""

    def __init__(self, keep: int) -> None:
        self.total = 0
        self.keep = keep
        self.newest: list[tuple[int, bytes]] = []  # min-heap of the newest ``keep``
        self.selected: list[tuple[int, bytes, Candidate]] = []  # max-heap by (mtime, path), negated
        self.apparent = 0
        self.allocated = 0
        self.dropped = False
        self.skipped: Counter[str] = Counter()

    def note_newest(self, mtime_ns: int, path: bytes) -> None:
        if self.keep == 0:
            return
        if len(self.newest) < self.keep:
            heapq.heappush(self.newest, (mtime_ns, path))
        elif (mtime_ns, path) > self.newest[0]:
            heapq.heapreplace(self.newest, (mtime_ns, path))

    def add(self, candidate: Candidate, needs: Needs) -> None:
        heapq.heappush(self.selected, (-candidate.mtime_ns, _negate(candidate.path), candidate))
        self.apparent += candidate.size
        self.allocated += candidate.allocated
        self.trim(needs)

    def trim(self, needs: Needs) -> None:
        """Drop the newest selected file while the rest still meets the byte needs (never an aged-out one)."""
        while self.selected:
            top = self.selected[0][2]
            if needs.age_cutoff_ns is not None and top.mtime_ns < needs.age_cutoff_ns:
                return
            if self.apparent - top.size < needs.apparent or self.allocated - top.allocated < needs.allocated:
                return
            heapq.heappop(self.selected)
            self.apparent -= top.size
            self.allocated -= top.allocated
            self.dropped = True


def _negate(path: bytes) -> tuple[int, ...]:
    """A key that sorts bytes in reverse, so the max-heap breaks mtime ties deterministically."""
    return tuple(-b for b in path) + (1,)


def plan_cleanup(
    settings: PcapSettings,
    in_use: InUse,
    *,
    now: float | None = None,
    cancelled: threading.Event | None = None,
) -> CleanupPlan:
    """The files retention would delete now, oldest first, and why."""
    now_ns = int((time.time() if now is None else now) * 1e9)
    root = str(settings.root)
    disk = disk_usage(root)
    cutoff = None if settings.max_age_days is None else now_ns - int(settings.max_age_days * 86400e9)
    need_alloc = 0
    if settings.min_free_percent is not None:
        need_alloc = max(0, int(disk.total * settings.min_free_percent / 100) - disk.free)
    needs = Needs(cutoff, 0, 0, need_alloc)
    excluded: frozenset[tuple[int, bytes]] = frozenset()
    for _ in range(MAX_PASSES):
        walk = _walk(settings, in_use, needs, excluded, now_ns, cancelled)
        exact = Needs(cutoff, walk.total, _total_need(settings, walk.total), need_alloc)
        protected = frozenset(walk.newest)
        chosen = [c for *_, c in walk.selected if (c.mtime_ns, c.path) not in protected]
        if not walk.dropped or _meets(chosen, exact):
            break  # everything eligible is in, or what is in suffices
        needs, excluded = exact, protected
    files = _minimal(sorted(chosen), exact)
    return CleanupPlan(
        root=root,
        files=tuple(files),
        bytes=sum(f.size for f in files),
        drivers=_drivers(exact, files),
        skipped=dict(walk.skipped),
        needs=exact,
        disk=disk,
        unmet=_unmet(exact, files),
        uninspectable=in_use.uninspectable,
        settings=settings,
    )


def _walk(
    settings: PcapSettings, in_use: InUse, needs: Needs, excluded: frozenset[tuple[int, bytes]],
    now_ns: int, cancelled: threading.Event | None,
) -> _Pass:
    root_fd = os.open(str(settings.root), DIR_FLAGS & ~os.O_NOFOLLOW)
    try:
        options = WalkOptions(settings.patterns, os.fstat(root_fd).st_dev, settings.cross_filesystems, now_ns,
                              int(settings.active_window_s * 1e9))
        state = _Pass(settings.keep_newest)
        active_since = now_ns - options.active_window_ns
        for rel, name, st in iter_files(root_fd, options, cancelled):
            path = os.fsencode(join(rel, name))
            state.total += st.st_size
            state.note_newest(st.st_mtime_ns, path)
            if (st.st_mtime_ns, path) in excluded:
                continue
            reason = _ineligible(st, in_use, active_since)
            if reason is not None:
                state.skipped[reason] += 1
                continue
            state.add(Candidate(st.st_mtime_ns, path, st.st_dev, st.st_ino, st.st_size, st.st_blocks * 512), needs)
        return state
    finally:
        os.close(root_fd)


def _ineligible(st: os.stat_result, in_use: InUse, active_since: int) -> Skip | None:
    if st.st_mtime_ns >= active_since:
        return Skip.ACTIVE
    if st.st_nlink > 1:
        return Skip.HARDLINKED
    held = in_use.reason((st.st_dev, st.st_ino))
    if held == "open":
        return Skip.OPEN
    if held == "locked":
        return Skip.LOCKED
    return None


def _total_need(settings: PcapSettings, total: int) -> int:
    return 0 if settings.max_total_bytes is None else max(0, total - settings.max_total_bytes)


def _meets(files: list[Candidate], needs: Needs) -> bool:
    return sum(f.size for f in files) >= needs.apparent and sum(f.allocated for f in files) >= needs.allocated


def _minimal(files: list[Candidate], needs: Needs) -> list[Candidate]:
    """Oldest first, cut after the file where every rule holds (aged-out files all stay)."""
    apparent = allocated = 0
    for index, candidate in enumerate(files):
        aged = needs.age_cutoff_ns is not None and candidate.mtime_ns < needs.age_cutoff_ns
        if not aged and apparent >= needs.apparent and allocated >= needs.allocated:
            return files[:index]
        apparent += candidate.size
        allocated += candidate.allocated
    return files


def _drivers(needs: Needs, files: list[Candidate]) -> tuple[Rule, ...]:
    drivers = []
    if needs.age_cutoff_ns is not None and any(f.mtime_ns < needs.age_cutoff_ns for f in files):
        drivers.append(Rule.MAX_AGE)
    if needs.apparent > 0:
        drivers.append(Rule.MAX_TOTAL)
    if needs.allocated > 0:
        drivers.append(Rule.MIN_FREE)
    return tuple(drivers)


def _unmet(needs: Needs, files: list[Candidate]) -> tuple[Rule, ...]:
    unmet = []
    if sum(f.size for f in files) < needs.apparent:
        unmet.append(Rule.MAX_TOTAL)
    if sum(f.allocated for f in files) < needs.allocated:
        unmet.append(Rule.MIN_FREE)
    return tuple(unmet)
