"""`opsconsole lock NAME -- COMMAND`: run a command while holding a kernel lock, with a sidecar.

The incident's ``set -C; echo $$ > x.lock`` lock outlives a job that dies and then needs
someone to judge and remove it. A kernel flock cannot go stale: the kernel releases it
when the last descriptor closes, however the holder ends. This wrapper takes an flock on
``NAME.lock`` in the console's lock directory — the same whole-file flock that
``filelock.FileLock`` and ``flock(1)`` take, so all three exclude each other — and
records who holds it in a sidecar (backends/locks/sidecar.py) for the Locks panel.

Waiting blocks in ``flock(2)`` itself (not a poll loop), so a waiter shows in
/proc/locks and the panel lists it; ``--wait`` bounds the wait with an interval timer.
The command runs as a child that gets SIGTERM if the wrapper dies (PR_SET_PDEATHSIG),
so nothing keeps working unprotected after the lock is gone.
"""

from __future__ import annotations

import ctypes
import fcntl
import getpass
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from backends.locks.judge import OPSCONSOLE_MARK
from backends.locks.proc import read_kernel_locks
from backends.locks.sidecar import SidecarRecord, sidecars_in, write_sidecar

#: Exit status when the lock stays busy for --wait seconds (EX_TEMPFAIL).
EXIT_BUSY = 75
#: Shell conventions for a command that cannot run.
EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND = 126, 127
#: Signals passed on to the command. SIGINT and SIGQUIT are not: a terminal sends those
#: to the command itself (same process group), and passing them on would double them.
FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)
TERMINAL_SIGNALS = (signal.SIGINT, signal.SIGQUIT)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_PR_SET_PDEATHSIG = 1


class LockNameError(ValueError):
    """The lock name would not be a plain file name in the lock directory."""


class LockBusy(Exception):
    """The lock stayed held by others for the whole wait."""


class _WaitOver(Exception):
    pass


def lock_file(directory: Path, name: str) -> Path:
    """``DIRECTORY/NAME.lock``; names are plain file names (letters, digits, ``.``, ``_``, ``-``)."""
    if not _NAME.fullmatch(name):
        raise LockNameError(
            f"invalid lock name {name!r}: use letters, digits, '.', '_' and '-' (at most 100), not starting with . _ -"
        )
    return directory / f"{name}.lock"


def ensure_directory(directory: Path) -> None:
    """Create the lock directory (private to its user unless it is the system one)."""
    directory.mkdir(mode=0o755 if os.geteuid() == 0 else 0o700, parents=True, exist_ok=True)


def _open(path: Path) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except PermissionError:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)  # another user's lock file: flock needs no write


def _flock(fd: int, operation: int, wait_s: float | None) -> bool:
    """Take the flock; block at most ``wait_s`` (None: forever). False when the wait ran out."""
    try:
        fcntl.flock(fd, operation | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        if wait_s is not None and wait_s <= 0:
            return False

    def over(signum: int, frame: FrameType | None) -> None:
        raise _WaitOver

    previous = signal.signal(signal.SIGALRM, over) if wait_s is not None else None
    try:
        if wait_s is not None:
            signal.setitimer(signal.ITIMER_REAL, wait_s)
        fcntl.flock(fd, operation)  # blocking: the kernel lists us as a waiter
        return True
    except _WaitOver:
        return False
    finally:
        if wait_s is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


def acquire(path: Path, *, shared: bool, wait_s: float | None) -> int:
    """An fd holding the flock on ``path``; raises LockBusy when ``wait_s`` runs out.

    Must run in the main thread when ``wait_s`` is set (it uses SIGALRM). If the file was
    removed or replaced while we waited, the lock we got guards nothing: try again.
    """
    deadline = None if wait_s is None else time.monotonic() + wait_s
    while True:
        fd = _open(path)
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            if not _flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX, left):
                raise LockBusy(str(path))
            held, current = os.fstat(fd), os.stat(path)
        except BaseException:
            os.close(fd)
            raise
        if (held.st_dev, held.st_ino) == (current.st_dev, current.st_ino):
            if held.st_size == 0:
                try:
                    os.pwrite(fd, f"{OPSCONSOLE_MARK}{path.stem}\n".encode(), 0)
                except OSError:
                    pass  # read-only descriptor: the sidecar still names us
            return fd
        os.close(fd)


def _clear_orphan_sidecars(path: Path) -> None:
    """Remove sidecars of this lock whose writer no longer holds it (a killed wrapper's)."""
    st = os.stat(path)
    kernel = read_kernel_locks().get((st.st_dev, st.st_ino))
    holders = {lock.pid for lock in kernel.held} if kernel else set()
    for pid, sidecar in sidecars_in(path.parent).get(path.name, {}).items():
        if pid not in holders:
            sidecar.unlink(missing_ok=True)


@contextmanager
def holding(path: Path, command: Sequence[str], *, shared: bool, wait_s: float | None) -> Iterator[SidecarRecord]:
    """Hold the lock with a sidecar naming ``command``; released (sidecar first) on exit."""
    fd = acquire(path, shared=shared, wait_s=wait_s)
    record = SidecarRecord(
        pid=os.getpid(),
        host=socket.gethostname(),
        user=getpass.getuser(),
        command=tuple(command),
        started_at=time.time(),
        mode="shared" if shared else "exclusive",
    )
    sidecar: Path | None = None
    try:
        _clear_orphan_sidecars(path)
        sidecar = write_sidecar(path, record)
        yield record
    finally:
        if sidecar is not None:
            sidecar.unlink(missing_ok=True)
        os.close(fd)


def _die_with_parent() -> None:
    """In the child: SIGTERM when the wrapper dies, so it never runs on without the lock."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def run_command(command: Sequence[str]) -> int:
    """Run ``command`` to the end, passing on termination signals; its exit status (128+N if killed).

    Raises FileNotFoundError / PermissionError when it cannot be started.
    """
    child = subprocess.Popen(list(command), preexec_fn=_die_with_parent)  # noqa: PLW1509 - single-threaded CLI
    previous = {signum: signal.signal(signum, lambda signum, frame: child.send_signal(signum)) for signum in FORWARDED}
    # After the fork, so the command does not inherit "ignored": it gets these from the terminal.
    previous.update({signum: signal.signal(signum, signal.SIG_IGN) for signum in TERMINAL_SIGNALS})
    try:
        code = child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 128 - code if code < 0 else code
