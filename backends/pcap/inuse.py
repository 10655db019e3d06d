"""Which files some process holds: one sweep of /proc/*/fd and /proc/locks per cleanup run."""

from __future__ import annotations

import os
from dataclasses import dataclass

FileId = tuple[int, int]  # (st_dev, st_ino)


@dataclass(frozen=True, slots=True)
class InUse:
    """Files open in any process we could inspect, files under a flock/POSIX lock, and
    how many processes we could not inspect (another user's, when not root)."""

    open_files: frozenset[FileId]
    locked: frozenset[FileId]
    uninspectable: int

    def reason(self, file_id: FileId) -> str | None:
        """"locked" first: a lock also shows to users who cannot see the holder's descriptors."""
        if file_id in self.locked:
            return "locked"
        if file_id in self.open_files:
            return "open"
        return None


def open_file_ids(proc: str = "/proc") -> tuple[frozenset[FileId], int]:
    """(dev, ino) of every regular file open in any process, and the processes we could not read."""
    found: set[FileId] = set()
    hidden = 0
    try:
        pids = [name for name in os.listdir(proc) if name.isdigit()]
    except OSError:
        return frozenset(), 0
    for pid in pids:
        fd_dir = f"{proc}/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except PermissionError:
            hidden += 1
            continue
        except OSError:
            continue  # exited meanwhile
        for fd in fds:
            try:
                st = os.stat(f"{fd_dir}/{fd}")
            except OSError:
                continue
            found.add((st.st_dev, st.st_ino))
    return frozenset(found), hidden


def locked_file_ids(path: str = "/proc/locks") -> frozenset[FileId]:
    """Files holding (or waited on by) a flock or POSIX lock, from /proc/locks.

    Lines look like ``1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF`` (major and minor
    in hex); a waiter's line has an extra ``->`` after the number.
    """
    found: set[FileId] = set()
    try:
        with open(path) as file:
            lines = file.read().splitlines()
    except OSError:
        return frozenset()
    for line in lines:
        fields = [f for f in line.split() if f != "->"]
        if len(fields) < 6:
            continue
        try:
            major, minor, inode = fields[5].split(":")
            found.add((os.makedev(int(major, 16), int(minor, 16)), int(inode)))
        except ValueError:
            continue
    return frozenset(found)


def sweep() -> InUse:
    opened, hidden = open_file_ids()
    return InUse(opened, locked_file_ids(), hidden)
