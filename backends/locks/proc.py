"""The kernel's file locks, from /proc/locks, indexed by the file they are on.

/proc/locks lists every flock, POSIX (fcntl) and OFD lock on the host, with the holder's
pid and the file as ``MAJOR:MINOR:INODE`` (major and minor in hex). A line whose second
field is ``->`` is a process blocked waiting for the lock above it. Files are matched by
device and inode, because that is all the kernel says; paths come from our own scan.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

PROC_LOCKS = Path("/proc/locks")

#: Lock types of /proc/locks that are file locks a process takes (leases and delegations are not).
FILE_LOCK_TYPES = frozenset({"FLOCK", "POSIX", "OFDLCK"})


@dataclass(frozen=True, slots=True)
class KernelLock:
    """One line of /proc/locks.

    ``pid`` is None when the kernel does not say (OFD locks belong to an open file, not a
    process, and show -1; a pid from another pid namespace shows 0).
    """

    type: str
    mode: str
    pid: int | None
    device: int
    inode: int
    start: str
    end: str
    blocked: bool

    def describe(self) -> str:
        """"flock write", "posix read 0-EOF", "ofd write 10-19"."""
        kind = {"FLOCK": "flock", "POSIX": "posix", "OFDLCK": "ofd"}.get(self.type, self.type.lower())
        text = f"{kind} {self.mode.lower()}"
        if self.type != "FLOCK" and (self.start, self.end) != ("0", "EOF"):
            text += f" {self.start}-{self.end}"
        return text


@dataclass(frozen=True, slots=True)
class FileLocks:
    """The granted locks and the blocked waiters on one file."""

    held: tuple[KernelLock, ...] = ()
    waiting: tuple[KernelLock, ...] = ()


@dataclass(slots=True)
class _Gathering:
    held: list[KernelLock] = field(default_factory=list)
    waiting: list[KernelLock] = field(default_factory=list)


def parse_line(line: str) -> KernelLock | None:
    """One /proc/locks line, or None for a line that is not a file lock or cannot be read."""
    fields = line.split()
    if len(fields) < 8:
        return None
    blocked = fields[1] == "->"
    rest = fields[2:] if blocked else fields[1:]
    if len(rest) < 7 or rest[0] not in FILE_LOCK_TYPES:
        return None
    lock_type, _advisory, mode, pid_text, where, start, end = rest[:7]
    parts = where.split(":")
    if len(parts) != 3:
        return None
    try:
        device = os.makedev(int(parts[0], 16), int(parts[1], 16))
        inode = int(parts[2])
        pid = int(pid_text)
    except ValueError:
        return None
    return KernelLock(lock_type, mode, pid if pid > 0 else None, device, inode, start, end, blocked)


def index_locks(lines: Iterable[str]) -> dict[tuple[int, int], FileLocks]:
    """Group the locks by ``(device, inode)`` of the file they are on."""
    gathered: dict[tuple[int, int], _Gathering] = {}
    for line in lines:
        lock = parse_line(line)
        if lock is None:
            continue
        entry = gathered.setdefault((lock.device, lock.inode), _Gathering())
        (entry.waiting if lock.blocked else entry.held).append(lock)
    return {key: FileLocks(tuple(g.held), tuple(g.waiting)) for key, g in gathered.items()}


def read_kernel_locks(path: Path = PROC_LOCKS) -> dict[tuple[int, int], FileLocks]:
    """The host's file locks now, by ``(device, inode)``.

    Raises OSError when /proc/locks cannot be read (not Linux, /proc not mounted); the
    caller says so rather than showing every lock as free.
    """
    with open(path, encoding="ascii", errors="replace") as source:
        return index_locks(source)
