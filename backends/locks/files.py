"""Finding lock files and reading them without ever blocking or following a trap.

Only regular files are opened (a FIFO or device in /run/lock could block or have side
effects), with O_NOFOLLOW and O_NONBLOCK, and only their first few KiB are read: a pid
file is a few bytes, and a huge "lock file" is reported, not slurped.
"""

from __future__ import annotations

import glob
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

#: Bytes read from a lock file; anything longer is not a pid file.
READ_CAP = 4096

#: The lock files git itself creates in a repository's git directory.
GIT_OWN_LOCKS = frozenset(
    {
        "index.lock", "HEAD.lock", "ORIG_HEAD.lock", "FETCH_HEAD.lock", "MERGE_HEAD.lock",
        "config.lock", "packed-refs.lock", "shallow.lock", "AUTO_MERGE.lock",
    }
)


@dataclass(frozen=True, slots=True)
class LockFile:
    """A lock file as read at one moment: its identity (from fstat), and its first bytes.

    ``data`` is None when the file could not be opened; ``error`` then says why.
    """

    path: str
    st: os.stat_result
    data: bytes | None
    error: str | None = None

    @property
    def key(self) -> tuple[int, int]:
        return (self.st.st_dev, self.st.st_ino)

    @property
    def truncated(self) -> bool:
        return self.data is not None and len(self.data) > READ_CAP


def expand(patterns: Iterable[str]) -> Iterator[str]:
    """Paths matching the globs, in order, each once (``~`` expanded; dotfiles skipped)."""
    seen: set[str] = set()
    for pattern in patterns:
        for path in sorted(glob.glob(os.path.expanduser(pattern))):
            if path not in seen:
                seen.add(path)
                yield path


def read_lock_file(path: str) -> LockFile | None:
    """Read one candidate; None when it is gone or not a regular file (directories, FIFOs)."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return LockFile(path, st, None, exc.strerror or str(exc))
    try:
        st = os.fstat(fd)  # the file we actually read, even if the path was just replaced
        data = os.read(fd, READ_CAP + 1)
    except OSError as exc:
        return LockFile(path, st, None, exc.strerror or str(exc))
    finally:
        os.close(fd)
    return LockFile(path, st, data)


def git_worktree_of(path: str) -> Path | None:
    """The work tree whose git directory holds ``path``, if it is one of git's own locks.

    ``.git/index.lock`` -> the directory containing ``.git``; a linked work tree's
    ``.git/worktrees/NAME/index.lock`` -> that work tree (from its ``gitdir`` file).
    A lock a script keeps in ``.git`` (``.git/dashboard_sync.lock``) is not git's.
    """
    if f"{os.sep}.git{os.sep}" not in path:
        return None
    parts = Path(path).parts
    try:
        at = len(parts) - 2 - parts[-2::-1].index(".git")
    except ValueError:
        return None
    inside = parts[at + 1 :]
    root = Path(*parts[:at])
    if len(inside) == 1 and inside[0] in GIT_OWN_LOCKS:
        return root
    if inside[0] in ("refs", "logs") and inside[-1].endswith(".lock"):
        return root
    if len(inside) == 3 and inside[0] == "worktrees" and inside[2] in GIT_OWN_LOCKS:
        try:
            gitfile = Path(*parts[: at + 3], "gitdir").read_text().strip()
        except OSError:
            return root
        return Path(gitfile).parent
    return None
