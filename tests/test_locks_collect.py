"""The Locks collector on real files, real kernel locks and real processes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest

from backends.collector import Collector
from backends.locks.collect import judge_path, make_locks_collect, scan_locks
from backends.locks.holders import OUR_GIT_FLAG, find_git_processes
from backends.locks.model import LockKind, LockVerdict
from tests.locks_helpers import (
    dead_pid,
    running,
    set_mtime,
    sleeper,
    spawn_holder,
    wait_for_waiters,
)

STALE_AFTER = 600.0


def one(tmp_path: Path, name: str):
    entry = judge_path(str(tmp_path / name), stale_after=STALE_AFTER)
    assert entry is not None
    return entry


def stop(*children: subprocess.Popen) -> None:
    for child in children:
        child.kill()
        child.wait()


@pytest.mark.parametrize("kind", ["flock", "posix"])
def test_kernel_lock_holder_and_waiter_are_seen(tmp_path, kind):
    path = tmp_path / "job.lock"
    path.touch()
    holder = spawn_holder(path, kind)
    waiter = spawn_holder(path, kind, blocking=True)
    try:
        wait_for_waiters(path, 1)
        entry = one(tmp_path, "job.lock")
        assert entry.kind is (LockKind.FLOCK if kind == "flock" else LockKind.POSIX)
        assert entry.verdict is LockVerdict.HELD
        assert entry.holder is not None and entry.holder.pid == holder.pid and entry.holder.alive
        assert entry.holder.name and entry.holder.cmdline and entry.holder.started_at
        assert [w.pid for w in entry.waiters] == [waiter.pid]
        assert entry.kernel_lock == f"{kind} write"
    finally:
        stop(holder, waiter)
    # The kernel released it with the holder: free, never stale.
    set_mtime(path, 10)  # past the 2 s in which an empty file counts as being written
    after = one(tmp_path, "job.lock")
    assert after.verdict is LockVerdict.FREE and after.waiters == ()


def test_ofd_lock_is_held_with_no_pid_to_name(tmp_path):
    """The kernel reports OFD locks without a process: held, holder unknown, nothing to stop."""
    path = tmp_path / "ofd.lock"
    path.touch()
    holder = spawn_holder(path, "ofd")
    try:
        entry = one(tmp_path, "ofd.lock")
        assert (entry.kind, entry.verdict, entry.kernel_lock) == (LockKind.POSIX, LockVerdict.HELD, "ofd write")
        assert entry.holder.pid is None
    finally:
        stop(holder)


def test_shared_flock_lists_every_holder(tmp_path):
    path = tmp_path / "shared.lock"
    path.touch()
    first, second = spawn_holder(path, shared=True), spawn_holder(path, shared=True)
    try:
        entry = one(tmp_path, "shared.lock")
        pids = {entry.holder.pid, *(h.pid for h in entry.also_held_by)}
        assert entry.verdict is LockVerdict.HELD and pids == {first.pid, second.pid}
        assert entry.kernel_lock == "flock read"
    finally:
        stop(first, second)


def test_pid_file_of_a_live_process_is_held(tmp_path):
    with running() as child:  # the file is written after the process started, as a real job does
        (tmp_path / "live.pid").write_text(f"{child.pid}\n")
        entry = one(tmp_path, "live.pid")
    assert (entry.kind, entry.verdict) == (LockKind.PIDFILE, LockVerdict.HELD)
    assert entry.holder.pid == child.pid and entry.holder.alive and entry.holder.same_process
    assert entry.holder.name == "sleep"


def test_pid_file_of_a_dead_process_is_stale(tmp_path):
    pid = dead_pid()
    (tmp_path / "dead.lock").write_text(f"pid={pid}\n")
    entry = one(tmp_path, "dead.lock")
    assert entry.verdict is LockVerdict.STALE and entry.holder.alive is False
    assert f"pid {pid} is not running" in entry.reason


def test_pid_file_of_a_recycled_pid_is_stale(tmp_path):
    """The pid runs, but as a process started after the file was written: not the holder."""
    with running() as child:
        path = tmp_path / "recycled.lock"
        path.write_text(json.dumps({"pid": child.pid}))
        set_mtime(path, 3600)
        entry = one(tmp_path, "recycled.lock")
    assert entry.verdict is LockVerdict.STALE
    assert entry.holder.alive is True and entry.holder.same_process is False
    assert "reused" in entry.reason


def test_recorded_start_time_that_does_not_match_is_a_recycled_pid(tmp_path):
    with running() as child:
        (tmp_path / "j.lock").write_text(json.dumps({"pid": child.pid, "started_at": time.time() - 86400}))
        entry = one(tmp_path, "j.lock")
    assert entry.verdict is LockVerdict.STALE and entry.holder.same_process is False


def test_pid_file_of_another_host_is_unknown_with_the_host_named(tmp_path):
    (tmp_path / "remote.lock").write_text(f"pid={os.getpid()} host=build-server-7\n")
    entry = one(tmp_path, "remote.lock")
    assert entry.verdict is LockVerdict.UNKNOWN and "build-server-7" in entry.reason
    assert entry.holder.host == "build-server-7" and entry.holder.alive is None


def test_filelock_marker_of_this_host_is_judged(tmp_path):
    import socket

    (tmp_path / "soft.lock").write_text(f"{dead_pid()}\n{socket.gethostname()}\n")
    assert one(tmp_path, "soft.lock").verdict is LockVerdict.STALE


@pytest.mark.parametrize("content", [b"hello world\n", b"\xff\xfe\x00garbage", b"pid=12 pid=x y"])
def test_garbled_content_is_unknown_and_shown(tmp_path, content):
    (tmp_path / "g.lock").write_bytes(content)
    entry = one(tmp_path, "g.lock")
    assert entry.verdict is LockVerdict.UNKNOWN and entry.reason.startswith("garbled")
    assert entry.content is not None  # shown as it is (made printable)


def test_huge_lock_file_is_unknown_and_not_read_whole(tmp_path):
    path = tmp_path / "huge.lock"
    with open(path, "wb") as out:
        out.write(b"1234\n")
        out.truncate(50 * 1024 * 1024)
    entry = one(tmp_path, "huge.lock")
    assert entry.verdict is LockVerdict.UNKNOWN and "too large" in entry.reason
    assert len(entry.content) <= 200


def test_empty_file_is_being_written_for_two_seconds_then_free(tmp_path):
    path = tmp_path / "empty.lock"
    path.touch()
    young = one(tmp_path, "empty.lock")
    assert young.verdict is LockVerdict.HELD and "being written" in young.reason
    set_mtime(path, 3)
    old = one(tmp_path, "empty.lock")
    assert old.verdict is LockVerdict.FREE


def test_git_index_lock_verdicts(tmp_path):
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    lock = repo / ".git" / "index.lock"
    lock.touch()
    young = judge_path(str(lock), stale_after=STALE_AFTER)
    assert (young.kind, young.verdict) == (LockKind.GIT, LockVerdict.UNKNOWN)
    set_mtime(lock, 3600)
    old = judge_path(str(lock), stale_after=STALE_AFTER)
    assert old.verdict is LockVerdict.STALE and "no git process" in old.reason
    # A real git process working in the repository (blocked reading its stdin) holds it.
    git = subprocess.Popen(["git", "hash-object", "--stdin"], cwd=repo, stdin=subprocess.PIPE,
                           stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.2)
        held = judge_path(str(lock), stale_after=STALE_AFTER)
        assert held.verdict is LockVerdict.HELD and held.holder.pid == git.pid
    finally:
        git.communicate(b"")


def test_a_scripts_own_lock_in_dot_git_is_a_pid_file_not_gits(tmp_path):
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / ".git" / "dashboard_sync.lock").write_text(f"{dead_pid()}\n")
    entry = judge_path(str(repo / ".git" / "dashboard_sync.lock"), stale_after=STALE_AFTER)
    assert (entry.kind, entry.verdict) == (LockKind.PIDFILE, LockVerdict.STALE)


def test_scan_dedupes_symlinked_directories_and_skips_non_files(tmp_path):
    real = tmp_path / "run-lock"
    real.mkdir()
    (tmp_path / "var-lock").symlink_to(real)  # as /var/lock -> /run/lock
    (real / "a.lock").write_text("1\n")
    (real / "subsys").mkdir()
    os.mkfifo(real / "fifo.lock")  # opening it would block: never opened
    entries = scan_locks([f"{real}/*", f"{tmp_path}/var-lock/*"], stale_after=STALE_AFTER)
    assert [Path(e.path).name for e in entries] == ["a.lock"]


def test_cancelled_scan_stops(tmp_path):
    (tmp_path / "a.lock").write_text("1\n")
    cancelled = threading.Event()
    cancelled.set()
    with pytest.raises(TimeoutError):
        scan_locks([f"{tmp_path}/*"], stale_after=STALE_AFTER, cancelled=cancelled)


async def test_stale_pid_lock_is_recognised_at_the_first_refresh_after_its_holder_dies(tmp_path):
    collector = Collector("locks", make_locks_collect([f"{tmp_path}/*"], [], stale_after=STALE_AFTER),
                          interval_s=60, timeout_s=10)
    child = sleeper()
    try:
        (tmp_path / "job.lock").write_text(f"{child.pid}\n")
        first = await collector.refresh()
        assert [e.verdict for e in first.value.locks] == [LockVerdict.HELD]
        child.kill()
        await asyncio.to_thread(child.wait)
        second = await collector.refresh()
        assert [e.verdict for e in second.value.locks] == [LockVerdict.STALE]
    finally:
        child.kill()
        await collector.stop()


async def test_a_watched_repositorys_git_locks_are_listed_without_a_glob_for_them(tmp_path):
    """`[locks].repos` alone brings in the repository's `.git/*.lock`: git's and the sync scripts'."""
    repo = tmp_path / "sync [repo]"  # glob characters in the path are taken literally
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    index = repo / ".git" / "index.lock"
    index.touch()
    set_mtime(index, 3600)
    (repo / ".git" / "dashboard_sync.lock").write_text(f"{dead_pid()}\n")
    collector = Collector("locks", make_locks_collect([], [repo], stale_after=STALE_AFTER), interval_s=60, timeout_s=10)
    try:
        snapshot = await collector.refresh()
    finally:
        await collector.stop()
    assert snapshot.ok, snapshot.error
    found = {Path(entry.path).name: (entry.kind, entry.verdict) for entry in snapshot.value.locks}
    assert found == {"index.lock": (LockKind.GIT, LockVerdict.STALE),
                     "dashboard_sync.lock": (LockKind.PIDFILE, LockVerdict.STALE)}


def test_this_consoles_own_gits_and_their_git_children_are_not_holders(tmp_path: Path) -> None:
    """`git --no-optional-locks stash list` (ours, for the hazards) runs a `git log` of its own
    without the flag: neither may make a stale index.lock look held. A stranger's git still does."""
    fake_git = tmp_path / "bin" / "git"  # a shell named git: /proc sees "git"
    fake_git.parent.mkdir()
    fake_git.symlink_to("/bin/sh")
    ours_repo, strangers_repo = tmp_path / "ours", tmp_path / "theirs"
    ours_repo.mkdir()
    strangers_repo.mkdir()
    ours = subprocess.Popen([str(fake_git), "-c", f"cd {ours_repo} && {fake_git} -c 'sleep 30; :'; :", OUR_GIT_FLAG],
                            start_new_session=True)
    stranger = subprocess.Popen([str(fake_git), "-c", "sleep 30; :"], cwd=strangers_repo, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not [child for child in psutil.Process(ours.pid).children() if child.name() == "git"]:
            assert time.monotonic() < deadline, "our git's own git child never started"
            time.sleep(0.02)
        found = find_git_processes()
        assert found.working_in(strangers_repo) == stranger.pid
        assert found.working_in(ours_repo) is None
    finally:
        for process in (ours, stranger):
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
