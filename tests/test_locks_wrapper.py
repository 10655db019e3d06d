"""`opsconsole lock NAME -- COMMAND`: mutual exclusion, release on any death, --wait, the sidecar."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import filelock
import psutil

from backends.locks.collect import judge_path
from backends.locks.model import LockKind, LockVerdict
from tests.locks_helpers import ROOT, eventually, opsconsole, wait_for_waiters

CONTENDERS = 8
ROUNDS = 5

#: One critical section: read the counter, linger, write it back plus one, and log entry/exit.
CRITICAL = (
    "import sys,time; d=sys.argv[1]; log=open(d+'/log','a'); log.write('in\\n'); log.flush(); "
    "n=int(open(d+'/counter').read()); time.sleep(0.005); open(d+'/counter','w').write(str(n+1)); "
    "log.write('out\\n'); log.flush()"
)


def lock_cmd(directory: Path, name: str, *command: str, options: tuple[str, ...] = ()) -> list[str]:
    return [sys.executable, "-m", "console", "lock", name, "--dir", str(directory), *options, "--", *command]


def start(directory: Path, name: str, *command: str, options: tuple[str, ...] = ()) -> subprocess.Popen[str]:
    return subprocess.Popen(lock_cmd(directory, name, *command, options=options), cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def held_by(path: Path) -> int | None:
    entry = judge_path(str(path), stale_after=600)
    return entry.holder.pid if entry is not None and entry.verdict is LockVerdict.HELD and entry.holder else None


def test_eight_contenders_exclude_each_other(tmp_path):
    (tmp_path / "counter").write_text("0")
    script = (f"for i in $(seq {ROUNDS}); do {sys.executable} -m console lock counter --dir {tmp_path} -- "
              f"{sys.executable} -c \"{CRITICAL}\" {tmp_path} || exit 1; done")
    contenders = [subprocess.Popen(["sh", "-c", script], cwd=ROOT) for _ in range(CONTENDERS)]
    assert [child.wait(timeout=120) for child in contenders] == [0] * CONTENDERS
    assert (tmp_path / "counter").read_text() == str(CONTENDERS * ROUNDS)  # no lost update
    log = (tmp_path / "log").read_text().split()
    assert log == ["in", "out"] * (CONTENDERS * ROUNDS)  # never two inside at once


def test_exit_status_is_the_commands(tmp_path):
    result = opsconsole("lock", "job", "--dir", str(tmp_path), "--", "sh", "-c", "exit 3")
    assert result.returncode == 3
    killed = opsconsole("lock", "job", "--dir", str(tmp_path), "--", "sh", "-c", "kill -9 $$")
    assert killed.returncode == 128 + signal.SIGKILL


def test_holder_and_sidecar_are_shown_then_released(tmp_path):
    holder = start(tmp_path, "sync", "sleep", "60")
    path = tmp_path / "sync.lock"
    try:
        eventually(lambda: path.exists() and held_by(path) == holder.pid
                   and list(tmp_path.glob(".sync.lock.*.json")))
        entry = judge_path(str(path), stale_after=600)
        assert entry.kind is LockKind.OPSCONSOLE and entry.holder.command == "sleep 60"
        assert entry.holder.user and entry.age_s is not None
        waiter = start(tmp_path, "sync", "true")
        wait_for_waiters(path, 1)
        waiting = judge_path(str(path), stale_after=600)
        assert [w.pid for w in waiting.waiters] == [waiter.pid]
    finally:
        holder.terminate()  # forwarded to the command; the wrapper then releases
    assert holder.wait(10) == 128 + signal.SIGTERM
    assert waiter.wait(10) == 0
    assert list(tmp_path.glob(".sync.lock.*.json")) == []  # sidecars go with their holders
    free = judge_path(str(path), stale_after=600)
    assert (free.kind, free.verdict) == (LockKind.OPSCONSOLE, LockVerdict.FREE)


def test_wait_timeout_exits_75_naming_the_holder(tmp_path):
    holder = start(tmp_path, "sync", "sleep", "60")
    try:
        eventually(lambda: held_by(tmp_path / "sync.lock") == holder.pid
                   and list(tmp_path.glob(".sync.lock.*.json")))
        began = time.monotonic()
        busy = opsconsole("lock", "sync", "--dir", str(tmp_path), "--wait", "0.5", "--", "true")
        assert busy.returncode == 75 and time.monotonic() - began >= 0.5
        assert re.fullmatch(rf"opsconsole: lock sync busy: held by pid {holder.pid} \(sleep 60\) for \d+s\n",
                            busy.stderr)
        immediate = opsconsole("lock", "--wait", "0", "sync", "--dir", str(tmp_path), "--", "true")
        assert immediate.returncode == 75
    finally:
        holder.kill()
        holder.wait()


def test_wrapper_killed_with_sigkill_releases_and_its_command_is_stopped(tmp_path):
    holder = start(tmp_path, "sync", "sleep", "60")
    path = tmp_path / "sync.lock"
    eventually(lambda: held_by(path) == holder.pid)
    command = eventually(lambda: psutil.Process(holder.pid).children())[0]
    holder.kill()
    holder.wait()
    eventually(lambda: not psutil.pid_exists(command.pid) or command.status() == psutil.STATUS_ZOMBIE)
    after = opsconsole("lock", "sync", "--dir", str(tmp_path), "--wait", "5", "--", "true")
    assert after.returncode == 0
    # The killed wrapper's sidecar was left behind; the next holder cleared it.
    assert list(tmp_path.glob(".sync.lock.*.json")) == []


def test_command_killed_with_sigkill_releases(tmp_path):
    holder = start(tmp_path, "sync", "sleep", "60")
    path = tmp_path / "sync.lock"
    eventually(lambda: held_by(path) == holder.pid)
    command = eventually(lambda: psutil.Process(holder.pid).children())[0]
    command.kill()
    assert holder.wait(10) == 128 + signal.SIGKILL
    assert opsconsole("lock", "sync", "--dir", str(tmp_path), "--wait", "5", "--", "true").returncode == 0


def test_shared_holders_coexist_and_exclude_an_exclusive_one(tmp_path):
    first = start(tmp_path, "ro", "sleep", "60", options=("--shared",))
    second = start(tmp_path, "ro", "sleep", "60", options=("--shared",))
    path = tmp_path / "ro.lock"
    try:
        def both() -> bool:
            entry = judge_path(str(path), stale_after=600) if path.exists() else None
            return entry is not None and len((entry.holder, *entry.also_held_by)) == 2
        eventually(both)
        exclusive = opsconsole("lock", "ro", "--dir", str(tmp_path), "--wait", "0.3", "--", "true")
        assert exclusive.returncode == 75
        shared = opsconsole("lock", "ro", "--shared", "--dir", str(tmp_path), "--wait", "0.3", "--", "true")
        assert shared.returncode == 0
    finally:
        for child in (first, second):
            child.kill()
            child.wait()


def test_it_excludes_filelock_users_of_the_same_file(tmp_path):
    with filelock.FileLock(tmp_path / "shared-with-python.lock"):
        busy = opsconsole("lock", "shared-with-python", "--dir", str(tmp_path), "--wait", "0.2", "--", "true")
        assert busy.returncode == 75 and f"held by pid {os.getpid()}" in busy.stderr


def test_usage_errors_are_one_line(tmp_path):
    cases = {
        ("lock", "a/b", "--dir", str(tmp_path), "--", "true"): "invalid lock name",
        ("lock", ".hidden", "--dir", str(tmp_path), "--", "true"): "invalid lock name",
        ("lock", "job", "--dir", str(tmp_path), "true"): "put -- before COMMAND",
        ("lock", "job", "--dir", str(tmp_path), "--"): "no COMMAND",
        ("lock", "job", "--wait", "-1", "--", "true"): "--wait must be at least 0 seconds",
        ("lock", "job", "--bogus", "--", "true"): "unrecognized arguments",
    }
    for args, message in cases.items():
        result = opsconsole(*args)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
        assert len(result.stderr.splitlines()) == 1
    missing = opsconsole("lock", "job", "--dir", str(tmp_path), "--", "no-such-command-xyz")
    assert missing.returncode == 127 and "command not found" in missing.stderr
