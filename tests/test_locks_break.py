"""Breaking stale locks: only stale ones, re-verified at the moment of acting, race-proof."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from pathlib import Path

import pytest

from backends.actions import Progress
from backends.locks.breaking import BreakLock, FileIdentity, _put_back, file_identity
from tests.locks_helpers import dead_pid, opsconsole, running, sleeper, spawn_holder, write_config

STALE_AFTER = 600.0
BREAKERS = 16


def execute(action: BreakLock, plan):
    return action.execute(plan, Progress(), threading.Event())


def stale_lock(tmp_path: Path, name: str = "job.lock") -> Path:
    path = tmp_path / name
    path.write_text(f"{dead_pid()}\n")
    return path


def test_stale_pid_lock_is_broken(tmp_path):
    path = stale_lock(tmp_path)
    action = BreakLock(path, stale_after=STALE_AFTER)
    plan = action.plan()
    assert not plan.nothing_to_do and "is not running" in plan.text()
    assert plan.audit["verdict"] == "stale" and plan.audit["sha256"]
    outcome = execute(action, plan)
    assert outcome.ok and outcome.details["result"] == "removed"
    assert os.listdir(tmp_path) == []  # nothing left aside either


def test_held_and_unknown_locks_are_not_offered(tmp_path):
    with running() as child:
        (tmp_path / "held.lock").write_text(f"{child.pid}\n")
        (tmp_path / "remote.lock").write_text(f"pid={dead_pid()} host=elsewhere-9\n")
        for name in ("held.lock", "remote.lock", "missing.lock"):
            plan = BreakLock(tmp_path / name, stale_after=STALE_AFTER).plan()
            assert plan.nothing_to_do, name
    assert (tmp_path / "held.lock").exists() and (tmp_path / "remote.lock").exists()


def test_lock_retaken_between_plan_and_break_is_not_removed_and_the_operator_is_told(tmp_path):
    path = stale_lock(tmp_path)
    action = BreakLock(path, stale_after=STALE_AFTER)
    plan = action.plan()
    with running() as child:
        # Another job breaks the stale lock its own way and takes the lock anew.
        path.unlink()
        path.write_text(f"{child.pid}\n")
        outcome = execute(action, plan)
        assert not outcome.ok and outcome.details["result"] == "retaken"
        assert f"re-taken by pid {child.pid}" in outcome.message
        assert path.read_text() == f"{child.pid}\n"


def test_lock_rewritten_in_place_by_a_live_holder_is_not_removed(tmp_path):
    path = stale_lock(tmp_path)
    action = BreakLock(path, stale_after=STALE_AFTER)
    plan = action.plan()
    with running() as child:
        with open(path, "w") as out:  # same inode, new holder
            out.write(f"{child.pid}\n")
        outcome = execute(action, plan)
        assert not outcome.ok and path.read_text() == f"{child.pid}\n"


def test_lock_replaced_by_another_stale_file_is_not_removed_without_a_new_plan(tmp_path):
    path = stale_lock(tmp_path)
    action = BreakLock(path, stale_after=STALE_AFTER)
    plan = action.plan()
    path.unlink()
    path.write_text(f"{dead_pid()}\n")  # stale too, but not the file the operator confirmed
    outcome = execute(action, plan)
    assert not outcome.ok and outcome.details["result"] == "replaced" and path.exists()


class RaceAfterRecheck(BreakLock):
    """A break with a hook in the gap between its last verdict and its rename: the race, made to happen."""

    def __init__(self, path: Path, race) -> None:  # type: ignore[no-untyped-def]
        super().__init__(path, stale_after=STALE_AFTER)
        self.race = race

    def _recheck(self, judged: FileIdentity):  # type: ignore[no-untyped-def]
        refusal = super()._recheck(judged)
        if refusal is None:
            self.race()
        return refusal


def test_lock_rewritten_by_a_live_holder_after_the_recheck_is_put_back(tmp_path):
    path = stale_lock(tmp_path)
    inode = path.stat().st_ino
    with running() as child:
        def retake() -> None:  # same inode, a new live holder's pid
            with open(path, "w") as out:
                out.write(f"{child.pid}\n")

        action = RaceAfterRecheck(path, retake)
        outcome = execute(action, action.plan())
        assert not outcome.ok and outcome.details["result"] == "put_back"
        assert "not the one judged stale" in outcome.message
        assert path.read_text() == f"{child.pid}\n" and path.stat().st_ino == inode
    assert sorted(os.listdir(tmp_path)) == ["job.lock"]


def test_lock_replaced_by_a_new_holder_after_the_recheck_is_put_back(tmp_path):
    path = stale_lock(tmp_path)
    with running() as child:
        def replace() -> None:  # another job breaks it its own way and writes a new file
            fresh = tmp_path / "fresh"
            fresh.write_text(f"{child.pid}\n")
            os.replace(fresh, path)

        action = RaceAfterRecheck(path, replace)
        outcome = execute(action, action.plan())
        assert not outcome.ok and outcome.details["result"] == "put_back"
        assert path.read_text() == f"{child.pid}\n"
    assert sorted(os.listdir(tmp_path)) == ["job.lock"]


def test_lock_flocked_by_a_process_after_the_recheck_is_put_back(tmp_path):
    path = stale_lock(tmp_path)
    holders = []
    action = RaceAfterRecheck(path, lambda: holders.append(spawn_holder(path, "flock")))
    try:
        outcome = execute(action, action.plan())
        assert not outcome.ok and outcome.details["result"] == "put_back"
        assert "locked by a process" in outcome.message
        assert path.exists() and sorted(os.listdir(tmp_path)) == ["job.lock"]
    finally:
        for holder in holders:
            holder.kill()
            holder.wait()


def test_a_moved_file_goes_back_and_never_over_a_new_one(tmp_path):
    path, aside = tmp_path / "job.lock", tmp_path / ".job.lock.broken-x"
    aside.write_text("moved\n")
    back = _put_back(aside, path, "not the judged file")
    assert back.details["result"] == "put_back" and path.read_text() == "moved\n" and not aside.exists()
    path.write_text("new holder\n")
    aside.write_text("moved again\n")
    displaced = _put_back(aside, path, "not the judged file")
    assert displaced.details["result"] == "displaced" and str(aside) in displaced.message
    assert path.read_text() == "new holder\n"  # the new holder's file was not touched


def test_file_identity_is_inode_and_content(tmp_path):
    path = tmp_path / "a"
    path.write_text("1\n")
    first = file_identity(str(path))
    assert isinstance(first, FileIdentity) and first.inode == path.stat().st_ino
    path.write_text("2\n")
    assert file_identity(str(path)) != first


def _breaker(path: str, barrier, results) -> None:
    action = BreakLock(path, stale_after=STALE_AFTER)
    plan = action.plan()
    barrier.wait()
    outcome = action.execute(plan, Progress(), threading.Event())
    results.put((outcome.ok, outcome.details.get("result"), outcome.message))


def _new_holder(path: str, barrier, results, done) -> None:
    """Takes the lock the incident's way (noclobber create, then write the pid) once it is free."""
    barrier.wait()
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            time.sleep(0.0002)
    os.write(fd, f"{os.getpid()}\n".encode())
    os.close(fd)
    st = os.stat(path)
    results.put(("holder", (st.st_ino, st.st_ctime_ns), os.getpid()))
    done.wait(60)


def test_sixteen_breakers_racing_remove_it_once_and_never_touch_the_new_holders_file(tmp_path):
    path = stale_lock(tmp_path)
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(BREAKERS + 1)
    results, done = context.Queue(), context.Event()
    holder = context.Process(target=_new_holder, args=(str(path), barrier, results, done))
    breakers = [context.Process(target=_breaker, args=(str(path), barrier, results)) for _ in range(BREAKERS)]
    for process in (holder, *breakers):
        process.start()
    try:
        outcomes = [results.get(timeout=60) for _ in range(BREAKERS + 1)]
        for process in breakers:
            process.join(30)
        taken = [item for item in outcomes if item[0] == "holder"]
        breaks = [item for item in outcomes if item[0] != "holder"]
        assert len(taken) == 1 and len(breaks) == BREAKERS
        assert sum(1 for ok, result, _ in breaks if ok and result == "removed") == 1
        assert {result for ok, result, _ in breaks if not ok} <= {"gone", "retaken"}
        _, identity, pid = taken[0]
        st = path.stat()
        # Same inode, and an unchanged ctime: it was never even renamed aside and put back.
        assert (st.st_ino, st.st_ctime_ns) == identity and path.read_text() == f"{pid}\n"
        assert sorted(os.listdir(tmp_path)) == ["job.lock"]  # nothing left renamed aside
    finally:
        done.set()
        holder.join(10)
        for process in (holder, *breakers):
            if process.is_alive():
                process.kill()


def test_cli_breaks_a_stale_lock_and_audits_it(tmp_path):
    path = stale_lock(tmp_path)
    config = write_config(tmp_path, [f"{tmp_path}/*.lock"])
    result = opsconsole("--config", str(config), "break-lock", str(path), "--yes")
    assert result.returncode == 0, result.stderr
    assert not path.exists() and "broke stale lock" in result.stdout
    lines = (tmp_path / "audit.log").read_text().splitlines()
    assert len(lines) == 1 and '"action":"locks.break_lock"' in lines[0] and '"result":"removed"' in lines[0]


@pytest.mark.parametrize(
    ("content", "expected"),
    [("pid=1 host=other-host-3\n", "unknown, not stale: names host other-host-3"),
     ("garbage\n", "unknown, not stale: garbled")],
)
def test_cli_refuses_what_is_not_stale_with_one_line_exit_2(tmp_path, content, expected):
    path = tmp_path / "x.lock"
    path.write_text(content)
    config = write_config(tmp_path, [f"{tmp_path}/*.lock"])
    result = opsconsole("--config", str(config), "break-lock", str(path), "--yes")
    assert result.returncode == 2 and expected in result.stderr and len(result.stderr.splitlines()) == 1
    assert path.read_text() == content and not (tmp_path / "audit.log").exists()


def test_cli_refuses_a_held_lock_and_a_missing_path(tmp_path):
    config = write_config(tmp_path, [f"{tmp_path}/*.lock"])
    with running() as child:
        (tmp_path / "held.lock").write_text(f"{child.pid}\n")
        held = opsconsole("--config", str(config), "break-lock", str(tmp_path / "held.lock"), "--yes")
    assert held.returncode == 2 and "is held, not stale" in held.stderr
    missing = opsconsole("--config", str(config), "break-lock", str(tmp_path / "nope.lock"), "--yes")
    assert missing.returncode == 2 and "no such lock file" in missing.stderr


def test_cli_read_only_refuses_and_no_yes_without_a_terminal_does_nothing(tmp_path):
    path = stale_lock(tmp_path)
    config = write_config(tmp_path, [f"{tmp_path}/*.lock"])
    refused = opsconsole("--config", str(config), "--read-only", "break-lock", str(path), "--yes")
    assert refused.returncode == 1 and "read-only mode" in refused.stderr and path.exists()
    unconfirmed = opsconsole("--config", str(config), "break-lock", str(path), input="")
    assert unconfirmed.returncode == 2 and "--yes" in unconfirmed.stderr and path.exists()


def test_cli_stop_holder_stops_a_held_locks_holder_and_only_that(tmp_path):
    config = write_config(tmp_path, [f"{tmp_path}/*.lock"])
    holder = sleeper()
    try:
        (tmp_path / "held.lock").write_text(f"{holder.pid}\n")
        stale = stale_lock(tmp_path, "stale.lock")
        refused = opsconsole("--config", str(config), "break-lock", str(stale), "--stop-holder", "--yes")
        assert refused.returncode == 2 and "is stale, not held" in refused.stderr
        result = opsconsole("--config", str(config), "break-lock", str(tmp_path / "held.lock"), "--stop-holder", "--yes")
        assert result.returncode == 0, result.stderr
        assert holder.wait(5) == -15 and "exited after SIGTERM" in result.stdout
    finally:
        holder.kill()
        holder.wait()
    audit = (tmp_path / "audit.log").read_text().splitlines()
    assert len(audit) == 1 and '"action":"locks.stop_holder"' in audit[0]
