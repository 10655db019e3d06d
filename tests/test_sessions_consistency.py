"""Four writer processes and a snapshotting reader; writers SIGKILLed mid-transaction.

Run against SQLite and the real PostgreSQL. What must hold in every snapshot: each
session in exactly one state, counts that add up, a cursor that never goes back, and a
session that leaves the snapshots has a tombstone saying who removed it and when.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time

from backends.sessions import Registry, Tombstone
from backends.sessions.simulate import WorkerPlan, run_worker
from tests.sessions_helpers import check_consistency, url_fixture

url = url_fixture  # pytest finds the fixture here

WRITERS = 4


def start_writers(url: str, duration_s: float) -> list[multiprocessing.process.BaseProcess]:
    context = multiprocessing.get_context("spawn")
    writers = [
        context.Process(target=run_worker, args=(WorkerPlan(url, n, 0.0, duration_s, contend=True, seed=n),))
        for n in range(WRITERS)
    ]
    for writer in writers:
        writer.start()
    return writers


def test_snapshots_stay_consistent_while_four_processes_write(url: str):
    writers = start_writers(url, duration_s=4.0)
    reader = Registry.open(url)
    problems: list[str] = []
    previous_ids: set[str] = set()
    previous_cursor = -1
    snapshots = 0
    try:
        while any(writer.is_alive() for writer in writers) or snapshots < 3:
            snap = reader.snapshot()
            snapshots += 1
            ids = [session.id for sessions in snap.by_state.values() for session in sessions]
            if len(ids) != len(set(ids)):
                problems.append(f"snapshot {snapshots}: a session is listed in two states")
            if sum(snap.counts.values()) != len(ids):
                problems.append(f"snapshot {snapshots}: counts {snap.counts} do not add up to {len(ids)}")
            if snap.cursor < previous_cursor:
                problems.append(f"snapshot {snapshots}: cursor went back {previous_cursor} -> {snap.cursor}")
            for gone in previous_ids - set(ids):
                if not isinstance(reader.get(gone), Tombstone):
                    problems.append(f"{gone} left the snapshots without a tombstone")
            previous_ids, previous_cursor = set(ids), snap.cursor
    finally:
        for writer in writers:
            writer.join(30)
        reader.close()
    assert [writer.exitcode for writer in writers] == [0] * WRITERS
    assert problems == []
    assert snapshots >= 3 and previous_cursor > 100  # the writers really wrote meanwhile
    with Registry.open(url) as registry:
        assert check_consistency(registry) == []
        assert any(isinstance(registry.get(f"shared-{n}"), Tombstone) for n in range(200))


HALF_DONE = """
import sys, time
from backends.sessions import Registry, SessionState
registry = Registry.open(sys.argv[1])
def work(tx):
    tx.execute(f"UPDATE {registry.sessions_table} SET state = 'completed' WHERE id = 'victim'")
    registry._append(tx, [("victim", "transition", "active", "completed", time.time(), "doomed", {})])
    print("inside", flush=True)
    time.sleep(60)
registry._write(work)
"""


def test_a_writer_killed_mid_transaction_leaves_nothing_half_done(url: str):
    with Registry.open(url) as registry:
        registry.start("victim")
        cursor = registry.cursor()
        child = subprocess.Popen([sys.executable, "-c", HALF_DONE, url], stdout=subprocess.PIPE, text=True,
                                 cwd=os.getcwd(), env={**os.environ, "PYTHONPATH": os.getcwd()})
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == "inside"
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.wait(10)
        # the write lock / row lock died with the writer; the half-done move left no trace
        registry.stop("victim")
        assert [e.to_state for e in registry.events_since(cursor)] == ["stopped"]
        assert registry.cursor() == cursor + 1
        assert check_consistency(registry) == []


def test_writers_killed_at_random_leave_the_registry_consistent(url: str):
    watcher = Registry.open(url)
    for round_number in range(3):
        writers = start_writers(url, duration_s=120.0)
        started = watcher.cursor()
        deadline = time.monotonic() + 60
        while watcher.cursor() < started + 50 + 30 * round_number:  # writing at full speed now
            assert time.monotonic() < deadline, "the writers did not get going"
            time.sleep(0.05)
        for writer in writers:
            os.kill(writer.pid, signal.SIGKILL)  # type: ignore[arg-type]
            time.sleep(0.05)
        for writer in writers:
            writer.join(10)
        assert [writer.exitcode for writer in writers] == [-signal.SIGKILL] * WRITERS
    watcher.close()
    with Registry.open(url) as registry:
        assert check_consistency(registry) == []
        registry.start("after-the-crash")  # nobody holds a lock any more
