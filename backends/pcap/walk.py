"""Walking the capture tree through directory file descriptors, one directory at a time.

Every directory is opened relative to its parent's descriptor with ``O_NOFOLLOW``, so a
symlink (or a directory swapped for one mid-walk) never takes the walk outside root, and
``st_dev`` is compared with root's so the walk stays on one filesystem unless told not
to. A directory that cannot be read becomes a record with an error; a file that vanishes
between listing and stat is simply not counted. Only per-directory totals are kept.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import re
import stat
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace

from backends.pcap.model import DirRecord, RecentFile

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
#: A directory modified this close to the moment it was read is read again next time (see
#: DirRecord.racy): 50 ms where timestamps have sub-second parts (Linux stamps from a clock
#: that ticks every few ms), 2 s where they do not (whole seconds, FAT's two).
RACY_FINE_NS = 50_000_000
RACY_COARSE_NS = 2_000_000_000


def is_racy(mtime_ns: int, read_ns: int) -> bool:
    window = RACY_FINE_NS if mtime_ns % 1_000_000_000 else RACY_COARSE_NS
    return mtime_ns >= read_ns - window

Matcher = Callable[[str], object]


class WalkCancelled(Exception):
    """The scan was cancelled or ran out of time; nothing partial is published."""


_SUFFIX_ONLY = re.compile(r"\*[^*?\[\]]+")


def matcher(patterns: tuple[str, ...]) -> Matcher:
    """Case-sensitive like the shell on Linux. Patterns that are all ``*.ext`` (the default)
    become one ``str.endswith`` on a tuple; anything else one compiled regex."""
    if all(_SUFFIX_ONLY.fullmatch(p) for p in patterns):
        suffixes = tuple(p[1:] for p in patterns)
        return lambda name: name.endswith(suffixes)
    return re.compile("|".join(fnmatch.translate(p) for p in patterns)).match


def describe_os_error(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def open_beneath(root_fd: int, rel: str) -> int:
    """Open directory ``rel`` below ``root_fd`` one component at a time, following no symlink.

    Raises OSError (ELOOP/ENOTDIR for a symlink or non-directory on the way, ENOENT if gone).
    """
    fd = os.dup(root_fd)
    try:
        for part in rel.split("/") if rel else ():
            if part in ("", ".", ".."):
                raise OSError(22, "Invalid path component", rel)
            child = os.open(part, DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


@dataclass(frozen=True, slots=True)
class WalkOptions:
    patterns: tuple[str, ...]
    root_dev: int
    cross_filesystems: bool
    now_ns: int
    active_window_ns: int


def join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def scan_dir(fd: int, rel: str, st: os.stat_result, match: Matcher, options: WalkOptions) -> DirRecord:
    """Read one directory's entries: totals of its matching files and the names of its subdirectories.

    The per-file loop is the scan's hot path: one ``lstat`` per matching name, plain
    int comparisons, no objects built except for files in the active window.
    """
    files = total = blocks = 0
    oldest_ns = newest_ns = -1
    oldest_name = newest_name = ""
    recent: list[RecentFile] = []
    subdirs: list[str] = []
    active_since = options.now_ns - options.active_window_ns
    is_regular = stat.S_ISREG
    read_ns = time.time_ns()
    with os.scandir(fd) as entries:
        for entry in entries:
            name = entry.name
            if entry.is_dir(follow_symlinks=False):
                subdirs.append(name)
                continue
            if not match(name):
                continue
            try:
                info = entry.stat(follow_symlinks=False)  # a symlink stays a symlink: not S_ISREG
            except FileNotFoundError:
                continue  # vanished between listing and stat
            if not is_regular(info.st_mode):
                continue
            mtime = info.st_mtime_ns
            files += 1
            total += info.st_size
            blocks += info.st_blocks
            if oldest_ns < 0 or mtime < oldest_ns or (mtime == oldest_ns and name < oldest_name):
                oldest_ns, oldest_name = mtime, name
            if mtime > newest_ns or (mtime == newest_ns and name > newest_name):
                newest_ns, newest_name = mtime, name
            if mtime >= active_since:
                recent.append(RecentFile(name, info.st_size, mtime))
    return DirRecord(
        path=rel,
        dev=st.st_dev,
        ino=st.st_ino,
        mtime_ns=st.st_mtime_ns,
        files=files,
        bytes=total,
        allocated=blocks * 512,
        oldest=(oldest_name, oldest_ns) if files else None,
        newest=(newest_name, newest_ns) if files else None,
        recent=tuple(sorted(recent, key=lambda r: r.name)),
        subdirs=tuple(sorted(subdirs)),
        racy=is_racy(st.st_mtime_ns, read_ns),
    )


def _recent_unchanged(fd: int, record: DirRecord) -> bool:
    """True when every file that was in the active window still has its recorded size and mtime."""
    for recent in record.recent:
        try:
            info = os.stat(recent.name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if info.st_size != recent.size or info.st_mtime_ns != recent.mtime_ns:
            return False
    return True


def _reuse(record: DirRecord, options: WalkOptions) -> DirRecord:
    """An unchanged directory's record, its active-window list aged to now."""
    active_since = options.now_ns - options.active_window_ns
    still = tuple(r for r in record.recent if r.mtime_ns >= active_since)
    return record if still == record.recent else replace(record, recent=still)


def visit(
    fd: int,
    rel: str,
    previous: Mapping[str, DirRecord] | None,
    match: Matcher,
    options: WalkOptions,
) -> tuple[DirRecord, bool]:
    """This directory's record, reused when nothing in it moved; and whether it was read."""
    st = os.fstat(fd)
    old = previous.get(rel) if previous is not None else None
    if (
        old is not None
        and old.error is None
        and not old.racy
        and (old.dev, old.ino, old.mtime_ns) == (st.st_dev, st.st_ino, st.st_mtime_ns)
        and _recent_unchanged(fd, old)
    ):
        return _reuse(old, options), False
    try:
        return scan_dir(fd, rel, st, match, options), True
    except PermissionError as exc:
        return _unreadable(rel, st, exc), True


def _unreadable(rel: str, st: os.stat_result, exc: OSError) -> DirRecord:
    return DirRecord(path=rel, dev=st.st_dev, ino=st.st_ino, mtime_ns=st.st_mtime_ns, error=describe_os_error(exc))


def open_child(parent_fd: int, name: str, rel: str, options: WalkOptions) -> int | DirRecord | None:
    """A subdirectory's fd; a record for one we may not enter; None if gone or on another filesystem."""
    try:
        fd = os.open(name, DIR_FLAGS, dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return None  # removed, or replaced by a file or a symlink (O_NOFOLLOW refuses it)
        try:
            st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        except OSError:
            return None
        return _unreadable(rel, st, exc)
    if not options.cross_filesystems and os.fstat(fd).st_dev != options.root_dev:
        os.close(fd)
        return None
    return fd


def walk(
    start_fd: int,
    start_rel: str,
    previous: Mapping[str, DirRecord] | None,
    options: WalkOptions,
    cancelled: threading.Event | None = None,
    *,
    recursive: bool = True,
) -> Iterator[tuple[DirRecord, bool]]:
    """Records for ``start_rel`` and (if recursive) everything below it, depth first.

    Holds one descriptor per level, never one per directory seen. ``previous`` makes it
    incremental: a directory whose identity and mtime match its record, and whose
    active files did not change, is not read again, but its subdirectories still are
    visited (their own changes do not touch its mtime).
    """
    match = matcher(options.patterns)
    record, read = visit(start_fd, start_rel, previous, match, options)
    yield record, read
    if not recursive or record.error is not None:
        return
    stack: list[tuple[int, str, Iterator[str]]] = [(os.dup(start_fd), start_rel, iter(record.subdirs))]
    try:
        while stack:
            fd, rel, names = stack[-1]
            name = next(names, None)
            if name is None:
                os.close(fd)
                stack.pop()
                continue
            if cancelled is not None and cancelled.is_set():
                raise WalkCancelled
            child_rel = join(rel, name)
            child = open_child(fd, name, child_rel, options)
            if child is None:
                continue
            if isinstance(child, DirRecord):
                yield child, True
                continue
            try:
                record, read = visit(child, child_rel, previous, match, options)
            except BaseException:
                os.close(child)
                raise
            yield record, read
            if record.error is None and record.subdirs:
                stack.append((child, child_rel, iter(record.subdirs)))
            else:
                os.close(child)
    finally:
        for fd, _, _ in stack:
            os.close(fd)


def iter_files(
    root_fd: int, options: WalkOptions, cancelled: threading.Event | None = None
) -> Iterator[tuple[str, str, os.stat_result]]:
    """Every matching regular file below root as (directory, name, lstat), one directory at a time.

    For cleanup and the file index, which need files rather than totals; the same rules
    as the scan: no symlinks, one filesystem, unreadable and vanished entries skipped.
    Directories wait on the stack as paths (reopened beneath root), not descriptors, so
    a wide tree never runs out of file descriptors.
    """
    match = matcher(options.patterns)
    stack = [""]
    while stack:
        if cancelled is not None and cancelled.is_set():
            raise WalkCancelled
        rel = stack.pop()
        try:
            fd = open_beneath(root_fd, rel)
        except OSError:
            continue  # gone, swapped for a symlink, or unreadable: the scan reports those
        try:
            if not options.cross_filesystems and os.fstat(fd).st_dev != options.root_dev:
                continue
            subdirs: list[str] = []
            try:
                with os.scandir(fd) as entries:
                    for entry in entries:
                        try:
                            if entry.is_dir(follow_symlinks=False):
                                subdirs.append(entry.name)
                            elif match(entry.name) and entry.is_file(follow_symlinks=False):
                                info = entry.stat(follow_symlinks=False)
                                if stat.S_ISREG(info.st_mode):
                                    yield rel, entry.name, info
                        except FileNotFoundError:
                            continue
            except PermissionError:
                continue
            stack.extend(join(rel, name) for name in sorted(subdirs, reverse=True))
        finally:
            os.close(fd)
