"""A scan of the capture tree split over worker processes, and the totals derived from it.

One Python process doing ``scandir`` + ``stat`` is about 1.6x slower than ``du`` and its
GIL would be the TUI's; threads make it worse. So the tree is cut into subtrees (the
first levels are read one directory per task until there are enough pieces) and each
subtree is walked by one of a few worker processes. Workers return per-directory
records only, never file lists. A shared event stops them between directories when the
scan is cancelled or runs out of time.
"""

from __future__ import annotations

import concurrent.futures as cf
import concurrent.futures.process  # noqa: F401 - imported here, not lazily inside a scan (see _scan)
import contextlib
import multiprocessing
import multiprocessing.popen_spawn_posix
import multiprocessing.queues
import multiprocessing.synchronize
import os
import resource
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from backends.pcap.model import DirRecord, FileAt, ScanError, SubdirTotals, Totals
from backends.pcap.walk import (
    DIR_FLAGS,
    WalkCancelled,
    WalkOptions,
    describe_os_error,
    join,
    open_beneath,
    open_child,
    walk,
)

#: Split the tree until there are this many pieces per worker (or the tree runs out).
PIECES_PER_WORKER = 4
#: ... but never read more than this many levels one directory per task.
MAX_SPLIT_DEPTH = 3
#: How often the coordinator looks at its cancel event and deadline.
POLL_S = 0.05
#: An incremental rescan that reads at most this many directories runs in the calling
#: process (a few milliseconds of work, handing the GIL back after every directory);
#: one that finds more changed directories starts over in the workers.
INLINE_READ_BUDGET = 64

_worker_cancel: Any = None  # the pool's shared event, set in each worker by _init_worker


class ScanTimeout(Exception):
    """The scan ran past its time; the previous snapshot stays."""


class RootUnusable(Exception):
    """Root is missing or not a directory: a one-line message for the status line."""


#: Workers yield the CPU to the console (and anything interactive) on a busy machine.
WORKER_NICE = 10
#: The weakest priority Linux has.
NICE_MAX = 19


#: How often an idle worker checks that the process that started it is still there.
PARENT_POLL_S = 1.0


def worker_priority() -> int:
    """The nice value for scan workers: :data:`WORKER_NICE` weaker than the calling thread's."""
    return min(NICE_MAX, os.getpriority(os.PRIO_PROCESS, 0) + WORKER_NICE)


def _init_worker(cancel: Any, parent: int, priority: int) -> None:
    """``parent`` comes from the pool, not getppid(): a worker still starting when its
    console died is already reparented by the time this runs. ``priority`` is absolute:
    the pool has usually set it already (see ScanPool._lower_new_workers)."""
    global _worker_cancel
    _worker_cancel = cancel
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, max(priority, os.getpriority(os.PRIO_PROCESS, 0)))
    threading.Thread(target=_exit_with_parent, args=(parent,), name="parent-watch", daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """End this worker when its console is gone (even SIGKILLed): every worker holds the
    task queue's write end too, so it would never see end-of-file and wait forever. Not
    PR_SET_PDEATHSIG: that fires when the spawning *thread* ends, and collector threads
    are short-lived."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(0)


@dataclass(frozen=True, slots=True)
class TaskResult:
    records: tuple[DirRecord, ...]
    read: int
    pid: int
    max_rss: int


def scan_task(
    root: str, rel: str, previous: Mapping[str, DirRecord] | None, options: WalkOptions, recursive: bool
) -> TaskResult:
    """Worker side: records for ``rel`` (and its subtree if ``recursive``)."""
    records: list[DirRecord] = []
    read = 0
    root_fd = os.open(root, DIR_FLAGS & ~os.O_NOFOLLOW)
    try:
        if os.fstat(root_fd).st_dev != options.root_dev:
            raise RootUnusable(f"{root} changed filesystem during the scan")
        fd = _open_task_dir(root_fd, rel, options)
        if isinstance(fd, DirRecord):
            return TaskResult((fd,), 1, os.getpid(), _max_rss())
        if fd is None:
            return TaskResult((), 0, os.getpid(), _max_rss())
        try:
            for record, was_read in walk(fd, rel, previous, options, _worker_cancel, recursive=recursive):
                records.append(record)
                read += was_read
        finally:
            os.close(fd)
    finally:
        os.close(root_fd)
    return TaskResult(tuple(records), read, os.getpid(), _max_rss())


def _open_task_dir(root_fd: int, rel: str, options: WalkOptions) -> int | DirRecord | None:
    if not rel:
        return os.dup(root_fd)
    parent, _, name = rel.rpartition("/")
    try:
        parent_fd = open_beneath(root_fd, parent)
    except OSError:
        return None  # the parent went away or was swapped since it was listed
    try:
        return open_child(parent_fd, name, rel, options)
    finally:
        os.close(parent_fd)


def _max_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass(frozen=True, slots=True)
class ScanOutcome:
    records: dict[str, DirRecord]
    read: int
    now_ns: int
    worker_max_rss: dict[int, int]


class ScanPool:
    """Worker processes kept warm between scans (an incremental rescan must not pay start-up)."""

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self._context = multiprocessing.get_context("spawn")
        self._cancel = self._context.Event()
        self._executor: cf.ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._priority = worker_priority()
        self._lowered: set[int] = set()  # child pids already given their priority (or not ours)

    def executor(self) -> cf.ProcessPoolExecutor:
        if self._executor is None:
            # children started before this pool (another pool's, say) are not its workers
            self._lowered = {child.pid for child in multiprocessing.active_children() if child.pid is not None}
            self._executor = cf.ProcessPoolExecutor(
                self.workers, mp_context=self._context, initializer=_init_worker,
                initargs=(self._cancel, os.getpid(), self._priority),
            )
        return self._executor

    def _lower_new_workers(self) -> None:
        """Give workers started by the last submits their low priority at once.

        A spawned worker re-imports the program's main module before the pool's
        initializer runs (for the `opsconsole` script that is the whole CLI, a few
        hundred ms of CPU); at the console's own priority that start-up competes with
        its event loop on a small machine. Lowered from here, right after the submits
        that spawned them (well before a new interpreter gets to its imports), the
        start-up runs at the workers' priority too.
        """
        for child in multiprocessing.active_children():
            if child.pid is not None and child.pid not in self._lowered:
                self._lowered.add(child.pid)
                with contextlib.suppress(OSError):  # exited meanwhile, or not ours to change
                    if os.getpriority(os.PRIO_PROCESS, child.pid) < self._priority:
                        os.setpriority(os.PRIO_PROCESS, child.pid, self._priority)

    def scan(
        self,
        root: str,
        previous: Mapping[str, DirRecord] | None,
        *,
        patterns: tuple[str, ...],
        active_window_s: float,
        cross_filesystems: bool,
        deadline: float,
        cancelled: threading.Event,
    ) -> ScanOutcome:
        """Walk the tree (incrementally against ``previous`` when given); one scan at a time."""
        with self._lock:
            try:
                root_dev = _root_dev(root)
                options = WalkOptions(
                    patterns, root_dev, cross_filesystems, time.time_ns(), int(active_window_s * 1e9)
                )
                return self._scan(root, previous, options, deadline, cancelled)
            except cf.process.BrokenProcessPool:
                self._executor = None  # a worker died (OOM killer, kill -9): start afresh next time
                raise

    def _scan(
        self, root: str, previous: Mapping[str, DirRecord] | None, options: WalkOptions,
        deadline: float, cancelled: threading.Event,
    ) -> ScanOutcome:
        # Every module a scan needs is imported at the top of this file: importing one in
        # the collector thread would hold the GIL (and freeze the console) while it loads.
        if previous is not None:
            inline = _inline_incremental(root, previous, options, deadline, cancelled)
            if inline is not None:
                return inline
        grouped = _group(previous)
        executor = self.executor()
        records: dict[str, DirRecord] = {}
        read = 0
        rss: dict[int, int] = {}

        def run(tasks: list[tuple[str, bool]]) -> list[TaskResult]:
            if time.monotonic() > deadline:
                raise ScanTimeout("scan timed out")
            futures = [
                executor.submit(scan_task, root, rel, _subset(grouped, rel, recursive), options, recursive)
                for rel, recursive in tasks
            ]
            self._lower_new_workers()
            return self._gather(futures, deadline, cancelled)

        frontier, depth = [""], 0
        while frontier and (depth == 0 or (len(frontier) < PIECES_PER_WORKER * self.workers and depth < MAX_SPLIT_DEPTH)):
            next_frontier: list[str] = []
            for result in run([(rel, False) for rel in frontier]):
                read += result.read
                rss[result.pid] = max(rss.get(result.pid, 0), result.max_rss)
                for record in result.records:
                    records[record.path] = record
                    if record.error is None:
                        next_frontier.extend(join(record.path, name) for name in record.subdirs)
            frontier, depth = next_frontier, depth + 1
        for result in run([(rel, True) for rel in frontier]):
            read += result.read
            rss[result.pid] = max(rss.get(result.pid, 0), result.max_rss)
            for record in result.records:
                records[record.path] = record
        return ScanOutcome(dict(sorted(records.items())), read, options.now_ns, rss)

    def _gather(self, futures: list[cf.Future[TaskResult]], deadline: float, cancelled: threading.Event) -> list[TaskResult]:
        pending = set(futures)
        while pending:
            _, pending = cf.wait(pending, timeout=POLL_S)
            if pending and (cancelled.is_set() or time.monotonic() > deadline):
                self._cancel.set()
                try:
                    cf.wait(pending)
                finally:
                    self._cancel.clear()
                if cancelled.is_set():
                    raise WalkCancelled("scan cancelled")
                raise ScanTimeout("scan timed out")
        results = []
        for future in futures:
            try:
                results.append(future.result())
            except WalkCancelled:
                raise ScanTimeout("scan timed out") from None
        return results

    def close(self) -> None:
        """Stop the workers (after a running scan, which a cancelled collector ends soon).

        They hold nothing worth a graceful exit (results live in this process), and an
        interpreter's own teardown at nice 10 took a quarter of a second of the console's
        quit: they are terminated. They are our own unreaped children, so no pid is reused.
        """
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is None:
            return
        executor.shutdown(wait=False, cancel_futures=True)
        workers = getattr(executor, "_processes", None) or {}  # Python 3.14 has terminate_workers()
        for worker in list(workers.values()):
            with contextlib.suppress(OSError, ValueError):
                worker.terminate()
        executor.shutdown(wait=True)


def _inline_incremental(
    root: str, previous: Mapping[str, DirRecord], options: WalkOptions, deadline: float, cancelled: threading.Event
) -> ScanOutcome | None:
    """The incremental rescan in this process, or None when it would read too many directories."""
    records: dict[str, DirRecord] = {}
    read = 0
    root_fd = os.open(root, DIR_FLAGS & ~os.O_NOFOLLOW)
    try:
        if os.fstat(root_fd).st_dev != options.root_dev:
            return None
        for record, was_read in walk(root_fd, "", previous, options, cancelled):
            records[record.path] = record
            if was_read:
                read += 1
                if read > INLINE_READ_BUDGET:
                    return None
                time.sleep(0)  # hand the GIL to the event loop between directories read
            if time.monotonic() > deadline:
                raise ScanTimeout("scan timed out")
    finally:
        os.close(root_fd)
    return ScanOutcome(dict(sorted(records.items())), read, options.now_ns, {})


def _root_dev(root: str) -> int:
    try:
        root_fd = os.open(root, DIR_FLAGS & ~os.O_NOFOLLOW)
    except OSError as exc:
        raise RootUnusable(f"pcap root {root}: {describe_os_error(exc)}") from None
    try:
        return os.fstat(root_fd).st_dev
    finally:
        os.close(root_fd)


def _group(previous: Mapping[str, DirRecord] | None) -> dict[str, dict[str, DirRecord]] | None:
    """Previous records by top-level component, so each task is sent only its own subtree's."""
    if previous is None:
        return None
    grouped: dict[str, dict[str, DirRecord]] = defaultdict(dict)
    for path, record in previous.items():
        grouped[path.split("/", 1)[0]][path] = record
    return grouped


def _subset(grouped: dict[str, dict[str, DirRecord]] | None, rel: str, recursive: bool) -> dict[str, DirRecord] | None:
    if grouped is None:
        return None
    if not recursive:
        top = grouped.get(rel.split("/", 1)[0], {})
        return {rel: top[rel]} if rel in top else {}
    prefix = rel + "/"
    return {p: r for p, r in grouped.get(rel.split("/", 1)[0], {}).items() if p == rel or p.startswith(prefix)}


def totals(records: Iterable[DirRecord], now_ns: int, active_window_ns: int) -> Totals:
    """The tree's counts from its directory records; top-level breakdown included."""
    active_since = now_ns - active_window_ns
    files = total = allocated = active = 0
    oldest: tuple[int, str] | None = None
    newest: tuple[int, str] | None = None
    by_top: dict[str, list[int]] = {}
    top_newest: dict[str, int] = {}
    errors: list[ScanError] = []
    for record in records:
        if record.error is not None:
            errors.append(ScanError(record.path or ".", record.error))
            continue
        if not record.files:
            continue
        record_active = sum(1 for r in record.recent if r.mtime_ns >= active_since)
        files += record.files
        total += record.bytes
        allocated += record.allocated
        active += record_active
        top = record.path.split("/", 1)[0] if record.path else "."
        counts = by_top.setdefault(top, [0, 0, 0, 0])
        counts[0] += record.files
        counts[1] += record.bytes
        counts[2] += record.allocated
        counts[3] += record_active
        assert record.oldest is not None and record.newest is not None
        first = (record.oldest[1], join(record.path, record.oldest[0]))
        last = (record.newest[1], join(record.path, record.newest[0]))
        oldest = first if oldest is None or first < oldest else oldest
        newest = last if newest is None or last > newest else newest
        top_newest[top] = max(top_newest.get(top, last[0]), last[0])
    return Totals(
        files=files,
        bytes=total,
        allocated_bytes=allocated,
        oldest=None if oldest is None else FileAt(oldest[1], oldest[0] / 1e9),
        newest=None if newest is None else FileAt(newest[1], newest[0] / 1e9),
        active_files=active,
        subdirs=tuple(
            SubdirTotals(name, c[0], c[1], c[2], c[3], top_newest[name] / 1e9) for name, c in sorted(by_top.items())
        ),
        errors=tuple(sorted(errors, key=lambda e: e.path)),
    )
