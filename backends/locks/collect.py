"""The Locks collector: lock files and their kernel locks, judged; watched repositories' hazards.

The file scan is blocking work and runs in a worker thread; git runs as asyncio
subprocesses at the same time. The same :func:`judge_path` serves one file to the break
action, so what the panel shows and what the action re-checks are one code path.
"""

from __future__ import annotations

import asyncio
import glob
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from backends.collector import CollectContext
from backends.locks.files import expand, read_lock_file
from backends.locks.git_hazards import GIT_TIMEOUT_S, repo_hazards
from backends.locks.holders import HolderLookup
from backends.locks.judge import judge
from backends.locks.model import LockEntry, LocksValue
from backends.locks.proc import read_kernel_locks

#: Files judged between looks at the cancel event.
CANCEL_CHECK_EVERY = 256


def scan_locks(
    patterns: Sequence[str], *, stale_after: float, cancelled: threading.Event | None = None
) -> tuple[LockEntry, ...]:
    """Every regular file matching the globs, once per file (by device and inode), judged."""
    try:
        kernel = read_kernel_locks()
    except OSError as exc:
        raise OSError(f"cannot read /proc/locks: {exc.strerror or exc}") from None
    lookup = HolderLookup()
    now = time.time()
    seen: set[tuple[int, int]] = set()
    entries: list[LockEntry] = []
    for count, path in enumerate(expand(patterns)):
        if cancelled is not None and count % CANCEL_CHECK_EVERY == 0 and cancelled.is_set():
            raise TimeoutError("lock scan cancelled")
        file = read_lock_file(path)
        if file is None or file.key in seen:  # /var/lock is often a symlink to /run/lock
            continue
        seen.add(file.key)
        entries.append(judge(file, kernel.get(file.key), lookup, now=now, stale_after=stale_after))
    return tuple(entries)


def judge_path(path: str, *, stale_after: float) -> LockEntry | None:
    """One file judged from fresh state; None when it no longer exists (or is not a regular file)."""
    kernel = read_kernel_locks()
    file = read_lock_file(path)
    if file is None:
        return None
    return judge(file, kernel.get(file.key), HolderLookup(), now=time.time(), stale_after=stale_after)


def lock_patterns(paths: Sequence[str], repos: Sequence[Path]) -> tuple[str, ...]:
    """The globs of ``[locks].paths``, plus each watched repository's ``.git/*.lock``.

    A repository is watched because jobs sync through it, and the locks that stop them
    live in its git directory: git's own ``index.lock``, and the sync scripts' pid locks
    (``.git/dashboard_sync.lock``). Repository paths are paths, not globs, so they are escaped.
    """
    own = tuple(f"{glob.escape(os.path.expanduser(str(repo)))}/.git/*.lock" for repo in repos)
    return tuple(dict.fromkeys((*paths, *own)))


def make_locks_collect(
    paths: Sequence[str], repos: Sequence[Path], *, stale_after: float
) -> Callable[[CollectContext[LocksValue]], object]:
    """The collector's async collect function for one [locks] configuration."""
    patterns = lock_patterns(paths, repos)

    async def collect(context: CollectContext[LocksValue]) -> LocksValue:
        git_timeout = max(0.1, min(GIT_TIMEOUT_S, context.remaining_s()))
        locks, repo_values = await asyncio.gather(
            asyncio.to_thread(scan_locks, patterns, stale_after=stale_after, cancelled=context.cancelled),
            asyncio.gather(*(repo_hazards(repo, timeout_s=git_timeout) for repo in repos)),
        )
        return LocksValue(locks=locks, repos=tuple(repo_values), stale_after=stale_after)

    return collect
