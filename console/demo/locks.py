"""The Locks panel's demo activity: a held lock with a waiter, stale locks, a hazardous repository.

Run as ``python -m console.demo.locks --dir DIR --parent PID`` (one HelperSpec in
console.demo.world). It builds, once per world, with real git commands:

* ``repo/``, a clone of ``origin.git`` in the state the incident's sync scripts left
  behind: two stashes, one commit ahead and one behind its upstream, and a rebase
  stopped on a conflict (one unmerged path);
* ``repo/.git/dashboard_sync.lock``, the incident's noclobber pid lock, written by a
  shell that has since exited: stale;
* ``repo/.git/index.lock``, an hour old with no git process working there: stale;

and then holds ``locks/status-sync.lock`` through `opsconsole lock`'s own code (flock +
sidecar) while a child process blocks waiting for it, so the panel shows a holder and
a waiter.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from backends.locks import acquire, holding, read_kernel_locks
from console.demo.helper import MARKER, die_with_parent, remove_world

REPO = "repo"
ORIGIN = "origin.git"
HELD_LOCK = "status-sync.lock"
READY_FILE = "locks-ready"
#: The stale index.lock is this old (older than the default stale_after, 600 s).
STALE_INDEX_AGE_S = 3600.0
PARENT_POLL_S = 0.5
READY_WAIT_S = 10.0
#: What the demo holder says it runs, as a sync job would.
HOLDER_COMMAND = ("scripts/slurm_dashboard_sync.sh", "--push")

_GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", "GIT_EDITOR": "true",
    "GIT_AUTHOR_NAME": "demo", "GIT_AUTHOR_EMAIL": "demo@example.invalid",
    "GIT_COMMITTER_NAME": "demo", "GIT_COMMITTER_EMAIL": "demo@example.invalid", "LC_ALL": "C",
}


def repo_dir(world: Path) -> Path:
    return world / REPO


def lock_globs(world: Path) -> tuple[str, ...]:
    """The lock globs of a demo world: its lock directory and the demo repository's git dir."""
    return (f"{world / 'locks'}/*", f"{repo_dir(world)}/.git/*.lock")


def ready_repos(world: Path, timeout_s: float = READY_WAIT_S) -> tuple[Path, ...]:
    """The demo repository to watch, once the helper has built it (waits briefly for that)."""
    deadline = time.monotonic() + timeout_s
    while not (world / READY_FILE).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return (repo_dir(world),)


class WorldGone(Exception):
    """The console removed the world while we built in it: stop, never recreate it."""


def _git(world: Path, where: str, *args: str, check: bool = True) -> None:
    """git in ``world/where``, with paths relative to it, so git never recreates a removed world."""
    if not (world / MARKER).exists():
        raise WorldGone(str(world))
    subprocess.run(
        ["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", *args],
        cwd=world / where, env={**os.environ, **_GIT_ENV}, check=check,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def _commit(world: Path, where: str, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        path = world / where / name
        path.parent.mkdir(exist_ok=True)  # never parents=True: a removed world stays removed
        path.write_text(text)
    _git(world, where, "add", *files)
    _git(world, where, "commit", "-q", "-m", message)


def build_repo(world: Path) -> None:
    """The incident's repository, half-way through a bad sync (see the module docstring)."""
    repo, other = REPO, "other-job"
    _git(world, ".", "init", "-q", "--bare", ORIGIN)
    _git(world, ".", "init", "-q", repo)
    (world / repo / "data").mkdir()
    _commit(world, repo, {"data/status/job_a.json": '{"status": "running"}\n',
                          "data/status/job_b.json": '{"status": "running"}\n'}, "status: initial")
    _git(world, repo, "remote", "add", "origin", f"../{ORIGIN}")
    _git(world, repo, "push", "-q", "-u", "origin", "main")
    # Another job pushes job_a's status meanwhile: the repo will be behind by one.
    _git(world, ".", "clone", "-q", ORIGIN, other)
    _commit(world, other, {"data/status/job_a.json": '{"status": "completed"}\n'}, "status: job_a completed")
    _git(world, other, "push", "-q", "origin", "main")
    # Our job commits its own view of job_a (ahead by one), then sets two updates aside.
    _commit(world, repo, {"data/status/job_a.json": '{"status": "failed"}\n'}, "status: job_a failed")
    status_b = world / repo / "data/status/job_b.json"
    status_b.write_text('{"status": "completed", "progress": 100}\n')
    _git(world, repo, "stash", "push", "-q", "-m", "sync: set aside job_b update before pull")
    status_b.write_text('{"status": "completed", "progress": 90}\n')
    _git(world, repo, "stash", "push", "-q", "-m", "sync: conflict, stashed everything")
    _git(world, repo, "fetch", "-q", "origin")
    _git(world, repo, "rebase", "origin/main", check=False)  # stops on the job_a conflict
    # The sync script's pid lock, left by a shell that exited; git's lock, left by a crash.
    git_dir = world / repo / ".git"
    subprocess.run(["sh", "-c", 'set -C; echo $$ > "$0"', str(git_dir / "dashboard_sync.lock")], check=True)
    index_lock = git_dir / "index.lock"
    index_lock.touch()
    old = time.time() - STALE_INDEX_AGE_S
    os.utime(index_lock, (old, old))


def run_waiter(world: Path, parent: int) -> int:
    """Block in flock on the held lock (the kernel lists us as its waiter) until our parent goes."""

    def leave_if_orphaned(signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGTERM or os.getppid() != parent:
            raise SystemExit(0)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, leave_if_orphaned)
    die_with_parent()
    fd = acquire(world / "locks" / HELD_LOCK, shared=False, wait_s=None)
    try:  # the holder went away: hold it until we are told to go
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
    finally:
        os.close(fd)
    return 0


def _wait_for_waiter(path: Path) -> None:
    """Until the kernel lists a process blocked on ``path`` (or READY_WAIT_S passes)."""
    st = os.stat(path)
    deadline = time.monotonic() + READY_WAIT_S
    while time.monotonic() < deadline:
        found = read_kernel_locks().get((st.st_dev, st.st_ino))
        if found is not None and found.waiting:
            return
        time.sleep(0.02)


def run_helper(world: Path, parent: int) -> int:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda signum, frame: stop.set())
    signal.signal(signal.SIGHUP, lambda signum, frame: None)
    die_with_parent()
    if not repo_dir(world).exists():
        try:
            build_repo(world)
        except WorldGone:
            return 0  # the console is gone and took the world with it
        except (OSError, subprocess.CalledProcessError) as exc:  # no git here: the locks still run
            print(f"demo locks: cannot build the demo repository: {exc}", flush=True)
    held = world / "locks" / HELD_LOCK
    waiter: subprocess.Popen[bytes] | None = None
    try:
        with holding(held, HOLDER_COMMAND, shared=False, wait_s=None):
            waiter = subprocess.Popen(
                [sys.executable, "-m", "console.demo.locks", "waiter", "--dir", str(world), "--parent", str(os.getpid())],
                stdin=subprocess.DEVNULL,
            )
            _wait_for_waiter(held)
            (world / READY_FILE).touch()
            while not stop.wait(PARENT_POLL_S) and os.getppid() == parent:
                pass
    finally:
        if waiter is not None:
            waiter.kill()
            waiter.wait()
    if os.getppid() != parent:
        remove_world(world, parent)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m console.demo.locks")
    parser.add_argument("role", nargs="?", choices=("helper", "waiter"), default="helper")
    parser.add_argument("--dir", type=Path, required=True, help="the demo world directory")
    parser.add_argument("--parent", type=int, required=True, help="the parent's pid")
    args = parser.parse_args(argv)
    if args.role == "waiter":
        return run_waiter(args.dir, args.parent)
    return run_helper(args.dir, args.parent)


if __name__ == "__main__":
    sys.exit(main())
