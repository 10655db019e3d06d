"""The registry's state machine, operations and errors, against SQLite and the real PostgreSQL."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import FrozenInstanceError, replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backends.sessions import (
    AsyncRegistry,
    EventKind,
    IllegalTransition,
    Registry,
    RegistryError,
    Session,
    SessionExists,
    SessionState,
    Tombstone,
    UnknownSession,
)
from backends.sessions import sqlite_store
from backends.sessions.model import ALLOWED_FROM, STATES, is_legal
from backends.sessions.netfs import fstype_of
from tests.sessions_helpers import check_consistency, url_fixture
from tests.nobody import as_nobody

A, C, S, F, E = (SessionState.ACTIVE, SessionState.COMPLETED, SessionState.STOPPED,
                 SessionState.FAILED, SessionState.EXPIRED)


url = url_fixture  # pytest finds the fixture here


@pytest.fixture(name="registry")
def registry_fixture(url: str) -> Iterator[Registry]:
    with Registry.open(url, actor="test") as opened:
        yield opened


def test_the_transition_table_is_the_issues():
    legal = {(src, dst) for dst in STATES for src in STATES if is_legal(src, dst)}
    assert legal == {(A, C), (A, S), (A, F), (A, E), (C, E), (S, E), (F, E)}
    assert ALLOWED_FROM[A] == frozenset()  # only start makes a session active


def test_a_session_lives_its_life_and_every_step_is_an_event(registry: Registry):
    registry.start("s-1", label="pcap analysis", owner="alice", meta={"file": "a.pcap"})
    registry.progress("s-1", 0.25, note="reading")
    registry.touch("s-1")
    registry.complete("s-1", result={"rows": 3})
    found = registry.get("s-1")
    assert isinstance(found, Session)
    assert (found.state, found.label, found.owner, found.progress, found.note) == (C, "pcap analysis", "alice", 1.0, "reading")
    assert found.meta == {"file": "a.pcap"} and found.result == {"rows": 3}
    history = registry.history("s-1")
    assert [(e.kind, e.from_state, e.to_state, e.actor) for e in history] == [
        (EventKind.START, None, A, "test"),
        (EventKind.PROGRESS, A, A, "test"),
        (EventKind.TOUCH, A, A, "test"),
        (EventKind.TRANSITION, A, C, "test"),
    ]
    assert [e.seq for e in history] == [1, 2, 3, 4] and registry.cursor() == 4


@pytest.mark.parametrize(
    ("finish", "move", "message"),
    [
        ("complete", "stop", "session 's-1' is completed: cannot stop (move to stopped)"),
        ("stop", "complete", "session 's-1' is stopped: cannot complete (move to completed)"),
        ("expire", "expire", "session 's-1' is expired: cannot expire (move to expired)"),
        ("fail", "progress", "session 's-1' is failed: cannot record progress (only active sessions progress)"),
    ],
)
def test_an_illegal_move_names_the_session_its_state_and_the_move(registry: Registry, finish, move, message):
    registry.start("s-1")
    getattr(registry, finish)(*(("s-1", "boom") if finish == "fail" else ("s-1",)))
    cursor = registry.cursor()
    with pytest.raises(IllegalTransition) as caught:
        if move == "progress":
            registry.progress("s-1", 0.5)
        else:
            getattr(registry, move)("s-1")
    assert str(caught.value) == message
    assert registry.cursor() == cursor  # nothing was written


def test_unknown_duplicate_and_bad_input_are_clear_errors(registry: Registry):
    with pytest.raises(UnknownSession, match="session 'nope' does not exist"):
        registry.stop("nope")
    registry.start("s-1")
    with pytest.raises(SessionExists, match=r"session 's-1' already exists \(is active\)"):
        registry.start("s-1")
    with pytest.raises(RegistryError, match="must be between 0 and 1, got 1.5"):
        registry.progress("s-1", 1.5)
    with pytest.raises(RegistryError, match="active sessions cannot be purged"):
        registry.purge(0, states=[A])


def test_purge_leaves_a_tombstone_and_ids_are_never_reused(registry: Registry):
    registry.start("old", label="L", owner="bob")
    registry.fail("old", "disk full")
    registry.start("live")
    assert registry.purge_candidates(0) == [("old", F)]
    (event,) = registry.purge(0, actor="operator")
    assert (event.kind, event.from_state, event.to_state) == (EventKind.PURGE, F, None)
    stone = registry.get("old")
    assert isinstance(stone, Tombstone)
    assert (stone.last_state, stone.label, stone.owner, stone.actor, stone.seq) == (F, "L", "bob", "operator", event.seq)
    assert [e.kind for e in registry.history("old")] == [EventKind.PURGE]
    assert [s.id for s in registry.snapshot().sessions()] == ["live"]
    with pytest.raises(SessionExists, match="was purged"):
        registry.start("old")
    with pytest.raises(IllegalTransition, match="session 'old' is purged: cannot expire"):
        registry.expire("old")
    assert registry.get("never") is None


def test_purge_respects_age_and_states(registry: Registry):
    registry.start("done")
    registry.complete("done")
    assert registry.purge(3600) == []  # too young
    assert registry.purge(0, states=[S]) == []  # not a chosen state
    assert [e.session for e in registry.purge(0, states=[C])] == ["done"]


def test_expire_idle_expires_sessions_not_accessed_lately(registry: Registry):
    for name in ("idle-active", "idle-done", "busy"):
        registry.start(name)
    registry.complete("idle-done")
    time.sleep(0.3)
    registry.touch("busy")
    events = registry.expire_idle(0.2)
    assert sorted((e.session, e.from_state) for e in events) == [("idle-active", A), ("idle-done", C)]
    assert registry.snapshot().counts[E] == 2 and registry.expire_idle(0.2) == []


def test_snapshot_groups_by_state_and_changes_since_reads_rows_with_events(registry: Registry):
    for name in ("a", "b", "c"):
        registry.start(name)
    registry.stop("b")
    snap = registry.snapshot()
    assert {state: [s.id for s in sessions] for state, sessions in snap.by_state.items() if sessions} == {
        A: ["a", "c"], S: ["b"]}
    assert snap.cursor == 4 and snap.counts[A] == 2 and snap.by_state[A][0].meta is None
    registry.complete("a")
    registry.expire("b")
    registry.purge(0, states=[E])
    changes = registry.changes_since(snap.cursor)
    # b's expiry (6) went with the purge; its tombstone (7) says why it left
    assert [e.seq for e in changes.events] == [5, 7] and changes.cursor == 7
    assert changes.sessions["b"] is None and changes.sessions["a"].state is C  # type: ignore[union-attr]
    assert "c" not in changes.sessions
    assert registry.changes_since(snap.cursor, limit=1).gap
    assert [e.seq for e in registry.events_since(5)] == [7]


def test_snapshot_records_are_ordinary_frozen_sessions(registry: Registry):
    """The snapshot builds its 10,000 records the cheap way; what comes out must not differ."""
    registry.start("a", label="pcap", owner="alice", meta={"k": 1})
    registry.progress("a", 0.5, note="halfway")
    registry.start("b")
    registry.fail("b", "boom")
    snap = registry.snapshot()
    by_id = {session.id: session for session in snap.sessions()}
    for session_id in ("a", "b"):
        listed, stored = by_id[session_id], registry.get(session_id)
        assert type(listed) is Session and isinstance(stored, Session)
        assert listed == replace(stored, meta=None, result=None, error=None)  # all but what get() adds
        assert repr(listed).startswith(f"Session(id={session_id!r}, state=<SessionState.")
    assert by_id["a"].note == "halfway" and by_id["a"].state is A and by_id["b"].state is F
    with pytest.raises(FrozenInstanceError):
        by_id["a"].state = C  # type: ignore[misc]
    changes = registry.changes_since(0)  # the follower's rows come from the same builder
    assert changes.sessions["a"] == by_id["a"] and type(changes.sessions["a"]) is Session


async def test_async_twin_runs_the_same_operations(registry: Registry):
    twin = AsyncRegistry(registry)
    await twin.start("a")
    await twin.complete("a")
    found = await twin.get("a")
    assert isinstance(found, Session) and found.state is C
    with pytest.raises(AttributeError):
        twin._write  # noqa: B018 - private methods are not offered


OPS = st.lists(
    st.tuples(st.sampled_from(["start", "progress", "complete", "stop", "fail", "expire", "touch", "purge"]),
              st.integers(0, 5)),
    min_size=1, max_size=25,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(per_thread=st.lists(OPS, min_size=3, max_size=3))
def test_random_operations_from_threads_keep_the_registry_consistent(url: str, per_thread):
    """Three threads apply random operations (legal or not) to shared ids at once."""
    registry = Registry.open(url, actor="hypothesis")
    prefix = f"h{time.monotonic_ns()}-"
    barrier = threading.Barrier(len(per_thread))
    failures: list[BaseException] = []
    outcomes: list[tuple[str, str, bool]] = []  # appended from several threads (list.append is atomic)

    def apply(ops: list[tuple[str, int]]) -> None:
        barrier.wait()
        for op, number in ops:
            session_id = f"{prefix}{number}"
            try:
                if op == "purge":
                    registry.purge(0)
                elif op == "progress":
                    registry.progress(session_id, 0.5)
                elif op == "fail":
                    registry.fail(session_id, "x")
                else:
                    getattr(registry, op)(session_id)
                outcomes.append((op, session_id, True))
            except (IllegalTransition, UnknownSession, SessionExists):
                outcomes.append((op, session_id, False))
            except BaseException as error:  # noqa: BLE001 - reported below
                failures.append(error)

    threads = [threading.Thread(target=apply, args=(ops,)) for ops in per_thread]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert not failures, failures
        assert check_consistency(registry) == []
        # every refused move really was illegal at that moment: replaying the event log
        # through the transition table never meets an illegal step
        state: dict[str, SessionState | None] = {}
        for event in registry.events_since(0):
            before = state.get(event.session)
            if event.kind is EventKind.START:
                assert before is None and event.session not in state
            elif event.kind in (EventKind.TRANSITION,):
                assert before is event.from_state and is_legal(before, event.to_state)  # type: ignore[arg-type]
            elif event.kind is EventKind.PURGE:  # a purge takes the session's earlier events along
                assert event.from_state is not A and event.session not in state
            state[event.session] = event.to_state
        assert len(outcomes) == sum(len(ops) for ops in per_thread)
    finally:
        registry.close()


MOUNTINFO = """\
22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
40 22 0:35 / /mnt/share rw,relatime shared:2 - nfs4 server:/export rw,vers=4.2
41 40 0:36 / /mnt/share/local\\040disk rw shared:3 - ext4 /dev/vdb rw
42 22 0:37 / /srv/smb rw shared:4 - cifs //host/share rw
"""


@pytest.mark.parametrize(
    ("path", "fstype"),
    [("/var/lib/app", "ext4"), ("/mnt/share/app/s.db", "nfs4"), ("/mnt/share/local disk/s.db", "ext4"),
     ("/srv/smb", "cifs"), ("/mnt/shared", "ext4")],
)
def test_the_mount_holding_a_path_decides_its_filesystem(path, fstype):
    assert fstype_of(path, MOUNTINFO) == fstype


@pytest.mark.parametrize(
    ("bad", "message"),
    [("mysql://x/y", "unsupported registry URL"), ("sqlite://host/x.db", "bad SQLite URL"),
     ("sqlite:////no/such/dir/x.db", "directory /no/such/dir does not exist"),
     ("postgresql://postgres@127.0.0.1:5432/test?schema=Bad-Name", "bad schema"),
     ("postgresql://nobody@127.0.0.1:1/test", "cannot connect to postgresql://nobody@127.0.0.1:1/test")],
)
def test_bad_urls_are_one_line_errors(bad, message):
    with pytest.raises(RegistryError, match=message) as caught:
        Registry.open(bad)
    assert "\n" not in str(caught.value)


def test_a_database_on_a_network_filesystem_is_refused_before_wal(tmp_path, monkeypatch):
    """No NFS mount here: the mount table's answer is replaced, the refusal is the real code."""
    monkeypatch.setattr(sqlite_store, "network_fstype", lambda path: "nfs4" if path == tmp_path else None)
    with pytest.raises(RegistryError) as caught:
        Registry.open(f"sqlite:///{tmp_path}/s.db")
    assert str(caught.value) == (
        f"cannot open sqlite:///{tmp_path}/s.db: {tmp_path} is on a network filesystem (nfs4); SQLite WAL"
        " needs one host's shared memory - put the file on a local disk or use a postgresql:// registry")
    assert not (tmp_path / "s.db").exists()


def test_an_operator_with_read_access_only_can_watch_and_look():
    """The console often runs as the on-call engineer, not as the app that owns the database:
    opening a registry that exists must not write (as root the reader drops to uid 65534)."""
    folder = Path(tempfile.mkdtemp())
    try:
        url = f"sqlite:///{folder / 'sessions.db'}"
        writer = Registry.open(url)
        writer.start("a", label="replay")
        folder.chmod(0o555)
        for path in folder.iterdir():
            path.chmod(0o444)

        def look() -> dict[str, object]:
            reader = Registry.open(url)
            return {"ids": [s.id for s in reader.snapshot().sessions()], "state": str(reader.get("a").state)}

        seen = as_nobody(look) if os.geteuid() == 0 else look()
        assert seen == {"ids": ["a"], "state": "active"}
        writer.complete("a")  # the app's own connection goes on writing
        assert writer.get("a").state is C
    finally:
        folder.chmod(0o755)
        shutil.rmtree(folder)


def test_a_file_that_is_not_a_database_is_refused_clearly(tmp_path):
    (tmp_path / "s.db").write_text("not a database, just text " * 100)
    with pytest.raises(RegistryError, match="cannot open .*file is not a database"):
        Registry.open(f"sqlite:///{tmp_path}/s.db")


@pytest.mark.parametrize(("ci", "outcome"), [("", "1 skipped"), ("1", "1 failed")])
def test_without_postgresql_the_tests_skip_with_the_reason_except_under_ci(ci, outcome):
    """CI must run the PostgreSQL half of the suite: an unreachable server fails it there."""
    root = Path(__file__).parent.parent
    env = {**os.environ, "CI": ci, "OPSCONSOLE_TEST_POSTGRES": "postgresql://nobody@127.0.0.1:1/test"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rsf", "-p", "no:cacheprovider",
         "tests/test_sessions_registry.py::test_the_transition_table_is_the_issues",
         "tests/test_sessions_registry.py::test_a_session_lives_its_life_and_every_step_is_an_event[postgres]"],
        cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert "1 passed" in result.stdout and outcome in result.stdout, result.stdout
    assert "PostgreSQL not reachable at postgresql://nobody@127.0.0.1:1/test" in result.stdout
    if ci:
        assert "CI must run the PostgreSQL tests" in result.stdout
