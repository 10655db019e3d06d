"""Real lock holders, waiters and pid-file processes for the Locks tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from backends.locks.proc import read_kernel_locks

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent

#: Child programs: take a lock (flock or POSIX), say "ready", then sleep until killed.
HOLD = {
    "flock": "import fcntl,os,sys,time; f=open(sys.argv[1],'a'); fcntl.flock(f,fcntl.{op}); print('ready',flush=True); time.sleep(600)",
    "posix": "import fcntl,os,sys,time; f=open(sys.argv[1],'a'); fcntl.lockf(f,fcntl.{op}); print('ready',flush=True); time.sleep(600)",
    # An open file description lock: struct flock {short type, whence; off_t start, len; pid_t pid}.
    "ofd": "import fcntl,os,struct,sys,time; f=open(sys.argv[1],'a'); "
           "fcntl.fcntl(f,fcntl.F_OFD_SETLKW,struct.pack('hhqqi',fcntl.F_WRLCK,0,0,0,0)); "
           "print('ready',flush=True); time.sleep(600)",
}


def eventually(probe: Callable[[], T | None], timeout_s: float = 10.0) -> T:
    """The first truthy result of ``probe``, polled until ``timeout_s`` (then the test fails)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        time.sleep(0.01)


def spawn_holder(path: Path, kind: str = "flock", *, blocking: bool = False, shared: bool = False
                 ) -> subprocess.Popen[str]:
    """A process that takes (or, with ``blocking``, waits for) a lock on ``path``."""
    op = "LOCK_SH" if shared else "LOCK_EX"
    child = subprocess.Popen([sys.executable, "-c", HOLD[kind].format(op=op), str(path)],
                             stdout=subprocess.PIPE, text=True)
    if not blocking:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    return child


def kernel_entry(path: Path):
    st = os.stat(path)
    return read_kernel_locks().get((st.st_dev, st.st_ino))


def wait_for_waiters(path: Path, count: int) -> None:
    eventually(lambda: (entry := kernel_entry(path)) is not None and len(entry.waiting) >= count)


@contextmanager
def running() -> Iterator[subprocess.Popen[bytes]]:
    """A live process for as long as the block runs (started a moment before it)."""
    child = sleeper()
    try:
        yield child
    finally:
        child.kill()
        child.wait()


def sleeper() -> subprocess.Popen[bytes]:
    """A live process the caller kills; its pid is written into lock files after it started."""
    child = subprocess.Popen(["sleep", "600"])
    time.sleep(0.05)
    return child


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def opsconsole(*args: str, env: dict[str, str] | None = None, timeout: float = 60,
               input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "console", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env, input=input, check=False)


def write_config(tmp_path: Path, globs: list[str], repos: list[Path] = (), **extra: str) -> Path:
    """A config file watching ``globs`` and ``repos``, auditing into tmp_path."""
    lines = [f'audit_log = "{tmp_path / "audit.log"}"', "[locks]",
             "paths = [" + ", ".join(f'"{g}"' for g in globs) + "]",
             "repos = [" + ", ".join(f'"{r}"' for r in repos) + "]"]
    lines += [f"{key} = {value}" for key, value in extra.items()]
    config = tmp_path / "config.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


def set_mtime(path: Path, seconds_ago: float) -> None:
    when = time.time() - seconds_ago
    os.utime(path, (when, when))
