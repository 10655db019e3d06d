"""Registries for the sessions tests: a SQLite file in tmp, or a fresh schema in the real PostgreSQL.

PostgreSQL tests skip (with the reason) when the server is not reachable, except under
CI (env CI set), where that is a failure: CI starts PostgreSQL and must not silently skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.sessions.postgres_store import PostgresRegistry
from backends.sessions.registry import Registry

POSTGRES_URL = os.environ.get("OPSCONSOLE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ("sqlite", "postgres")


def postgres_or_skip() -> None:
    """Skip when PostgreSQL is unreachable; under CI fail instead, naming the reason."""
    import psycopg

    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
    except psycopg.Error as error:
        reason = f"PostgreSQL not reachable at {POSTGRES_URL}: {str(error).strip().splitlines()[0]}"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI must run the PostgreSQL tests)")
        pytest.skip(reason)


def registry_url(backend: str, tmp_path: Path) -> str:
    """A new, empty registry's URL; PostgreSQL gets a schema of its own per test."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path}/sessions.db"
    postgres_or_skip()
    return f"{POSTGRES_URL}?schema=t_{uuid.uuid4().hex[:16]}"


def drop(url: str) -> None:
    if url.startswith("postgresql"):
        registry = Registry.open(url)
        assert isinstance(registry, PostgresRegistry)
        registry.drop()
        registry.close()


def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh registry URL for a fixture parametrized over BACKENDS; dropped afterwards."""
    value = registry_url(request.param, tmp_path)
    Registry.open(value).close()
    yield value
    drop(value)


#: ``url`` in a test module: a fresh registry, once per backend.
url_fixture = pytest.fixture(params=BACKENDS, name="url")(fresh_url)


def check_consistency(registry: Registry) -> list[str]:
    """Invariants that must hold whatever happened: a list of violations (empty is good).

    Every session is in one known state that matches its last state-changing event; the
    cursor equals the newest event; no two events share a seq.
    """
    problems: list[str] = []
    snapshot = registry.snapshot()
    events = registry.events_since(0)
    seqs = [event.seq for event in events]
    if len(set(seqs)) != len(seqs) or seqs != sorted(seqs):
        problems.append("event seqs repeat or are out of order")
    if seqs and seqs[-1] != snapshot.cursor:
        problems.append(f"cursor {snapshot.cursor} is not the newest event {seqs[-1]}")
    last_state: dict[str, object] = {}
    for event in events:
        last_state[event.session] = event.to_state
    seen: set[str] = set()
    for state, sessions in snapshot.by_state.items():
        for session in sessions:
            if session.id in seen:
                problems.append(f"{session.id} is listed twice")
            seen.add(session.id)
            if session.state is not state:
                problems.append(f"{session.id} is grouped under {state} but is {session.state}")
            if last_state.get(session.id) is not session.state:
                problems.append(f"{session.id} is {session.state} but its last event says {last_state.get(session.id)}")
    for session_id, state in last_state.items():
        if state is None and session_id in seen:
            problems.append(f"{session_id} was purged but is still listed")
        if state is not None and session_id not in seen:
            problems.append(f"{session_id} vanished without a purge event")
    return problems
