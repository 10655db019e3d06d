"""Breaking a stale lock without ever removing a lock somebody holds.

The incident's scripts removed "stale" lock files with ``rm``: between deciding and
removing, another job could have taken the lock, and its fresh file was the one removed.
Here, at the moment of acting and with every other opsconsole breaker of that directory
shut out (an flock on the directory itself):

1. the file is judged again, from fresh state, and must still be ``stale`` and still be
   the file the plan judged (device, inode, and a SHA-256 of its content);
2. it is renamed aside within its directory (atomic: the lock path is then free, and
   nobody can lock the file under its old name any more);
3. the renamed file must still be that same file, with no kernel lock on it; if it is
   not, it is put back (``link``, which never overwrites a lock file created meanwhile);
4. only then is it removed.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from backends.actions import Outcome, Plan, Progress
from backends.locks.collect import judge_path
from backends.locks.model import LockEntry, LockVerdict
from backends.locks.proc import read_kernel_locks

#: How long a breaker waits for another opsconsole breaker of the same directory.
BREAKERS_WAIT_S = 10.0
_POLL_S = 0.01


class BreakersBusy(Exception):
    """Another breaker kept the directory for longer than we wait."""


@dataclass(frozen=True, slots=True)
class FileIdentity:
    """The exact file judged: device, inode, size and content digest."""

    device: int
    inode: int
    size: int
    sha256: str


def file_identity(path: str) -> FileIdentity:
    """Read the whole file through one descriptor, so digest and inode describe the same file."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        digest = hashlib.sha256()
        while chunk := os.read(fd, 1 << 20):
            digest.update(chunk)
    finally:
        os.close(fd)
    return FileIdentity(st.st_dev, st.st_ino, st.st_size, digest.hexdigest())


@contextmanager
def breakers_excluded(directory: Path, cancelled: threading.Event) -> Iterator[None]:
    """Hold an exclusive flock on the lock's directory: one opsconsole breaker at a time there."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        deadline = time.monotonic() + BREAKERS_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if cancelled.is_set() or time.monotonic() > deadline:
                    raise BreakersBusy(f"another break in {directory} is still running") from None
                time.sleep(_POLL_S)
        yield
    finally:
        os.close(fd)


def aside_path(path: Path) -> Path:
    """A unique name in the same directory (same filesystem, so the rename is atomic)."""
    return path.with_name(f".{path.name}.broken-{os.getpid()}-{secrets.token_hex(4)}")


class BreakLock:
    """Remove one stale lock file, re-verified at the moment of acting (see module docstring)."""

    name = "locks.break_lock"
    panel = "locks"

    def __init__(self, path: str | Path, *, stale_after: float) -> None:
        self.path = Path(os.path.abspath(path))
        self.stale_after = stale_after

    def plan(self) -> Plan:
        target = str(self.path)
        entry = judge_path(target, stale_after=self.stale_after)
        if entry is None:
            return Plan(self.name, target, f"{target} does not exist: nothing to break", nothing_to_do=True)
        if entry.verdict is not LockVerdict.STALE:
            return Plan(
                self.name, target,
                f"{target} is {entry.verdict} ({entry.reason}): only a stale lock can be broken",
                nothing_to_do=True, audit=_audit(entry),
            )
        identity = file_identity(target)
        return Plan(
            self.name,
            target,
            f"Break stale lock {target}",
            lines=(
                f"judged stale ({entry.kind}): {entry.reason}",
                (
                    "at the moment of acting: judge it again; rename it aside; check the renamed file is "
                    "this one (inode and content) and unlocked; put it back if not; only then remove it"
                ),
            ),
            audit={**_audit(entry), "sha256": identity.sha256},
            payload=identity,
        )

    def execute(self, plan: Plan, progress: Progress, cancelled: threading.Event) -> Outcome:
        judged: FileIdentity = plan.payload
        target = str(self.path)
        progress.start(3, "steps")
        progress.note("waiting for other breakers")
        with breakers_excluded(self.path.parent, cancelled):
            if cancelled.is_set():
                return Outcome(False, "cancelled: nothing was done", {"result": "cancelled"})
            progress.advance(note="re-checking the verdict")
            refusal = self._recheck(judged)
            if refusal is not None:
                return refusal
            aside = aside_path(self.path)
            try:
                os.rename(self.path, aside)
            except FileNotFoundError:
                return Outcome(False, f"not broken: {target} is already gone", {"result": "gone"})
            progress.advance(note="checking the renamed file")
            problem = _renamed_problem(str(aside), judged)
            if problem is None and cancelled.is_set():
                problem = "cancelled"
            if problem is not None:
                return _put_back(aside, self.path, problem)
            os.unlink(aside)
            progress.advance(note="removed")
        return Outcome(True, f"broke stale lock {target}", {"result": "removed", "inode": judged.inode})

    def _recheck(self, judged: FileIdentity) -> Outcome | None:
        """None when the file is still the judged, stale one; else the outcome that says why not."""
        target = str(self.path)
        entry = judge_path(target, stale_after=self.stale_after)
        if entry is None:
            return Outcome(False, f"not broken: {target} is already gone", {"result": "gone"})
        if entry.verdict is not LockVerdict.STALE:
            who = f" by {entry.holder.label()}" if entry.holder and entry.verdict is LockVerdict.HELD else ""
            return Outcome(
                False,
                f"not broken: {target} was re-taken{who} since the plan: now {entry.verdict} ({entry.reason})",
                {"result": "retaken", "verdict": entry.verdict.value, "reason": entry.reason},
            )
        try:
            now = file_identity(target)
        except FileNotFoundError:
            return Outcome(False, f"not broken: {target} is already gone", {"result": "gone"})
        if now != judged:
            return Outcome(
                False,
                f"not broken: {target} was replaced or rewritten since the plan (inode or content differ)",
                {"result": "replaced"},
            )
        return None


def _renamed_problem(aside: str, judged: FileIdentity) -> str | None:
    """Why the file we moved must go back, or None when it is exactly the judged, unlocked file."""
    try:
        moved = file_identity(aside)
    except OSError as exc:
        return f"cannot read the renamed file ({exc.strerror})"
    if moved != judged:
        return "the renamed file is not the one judged stale (inode or content differ)"
    if read_kernel_locks().get((moved.device, moved.inode)) is not None:
        return "the renamed file is locked by a process"
    return None


def _put_back(aside: Path, path: Path, problem: str) -> Outcome:
    """Return the moved file to its name without ever replacing a file created there meanwhile."""
    try:
        os.link(aside, path)
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise
        return Outcome(
            False,
            f"not broken: {problem}; {path} was re-created meanwhile, so the moved file stays at {aside}",
            {"result": "displaced", "aside": str(aside), "problem": problem},
        )
    os.unlink(aside)
    return Outcome(False, f"not broken: {problem}; put back", {"result": "put_back", "problem": problem})


def _audit(entry: LockEntry) -> dict[str, object]:
    return {
        "path": entry.path,
        "kind": entry.kind.value,
        "verdict": entry.verdict.value,
        "reason": entry.reason,
        "device": entry.device,
        "inode": entry.inode,
        "holder_pid": entry.holder.pid if entry.holder else None,
    }
