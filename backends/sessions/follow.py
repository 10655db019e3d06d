"""Following a registry live: a full read at start, then only the events since the cursor.

A collector run first asks the database whether anything committed since the last run
(SQLite: ``PRAGMA data_version``; PostgreSQL: a LISTEN connection's notifications), and
only then reads the events after its cursor together with the rows they touch. A full
snapshot is read at start, after an error, and when too many events wait (a gap).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from backends.collector import CollectContext
from backends.jsonable import JSON_SKIP
from backends.sessions.model import STATES, Changes, RegistrySnapshot, Session
from backends.sessions.registry import Registry

#: More waiting events than this and a full snapshot is cheaper than replaying them.
GAP_EVENTS = 5000
#: How many collections' changed ids a view remembers: a panel whose rows are older
#: than that (it skipped views while busy) builds its rows anew.
CHANGES_KEPT = 64


@dataclass(frozen=True, slots=True)
class Changed:
    """The ids one collection changed (added, updated or purged), from one cursor to the next."""

    after: int
    cursor: int
    ids: frozenset[str]


@dataclass(frozen=True, slots=True)
class SessionsView:
    """The Sessions panel's value (the ``sessions`` key of `snapshot --json`).

    ``cursor`` is the registry's event cursor, None for an HTTP source; ``full_reads``
    counts full re-reads, which happen only at start and after a gap or an error.
    ``by_id`` and ``changes`` (the last collections' changed ids) let the panel update the
    rows it has instead of rebuilding 100,000 of them every second; JSON leaves them out.
    """

    source: str
    cursor: int | None
    counts: Mapping[str, int]
    sessions: tuple[Session, ...]
    full_reads: int = 0
    by_id: Mapping[str, Session] = field(default_factory=dict, repr=False, compare=False, metadata={JSON_SKIP: True})
    changes: tuple[Changed, ...] = field(default=(), repr=False, compare=False, metadata={JSON_SKIP: True})

    def changed_since(self, earlier: SessionsView) -> frozenset[str] | None:
        """The ids changed from ``earlier`` to this view, or None when that is not known
        (another source, a full re-read between them, or more collections than are kept)."""
        if earlier.source != self.source or earlier.full_reads != self.full_reads or earlier.cursor is None:
            return None
        if earlier.cursor == self.cursor:
            return frozenset()
        for start, step in enumerate(self.changes):
            if step.after == earlier.cursor:
                return frozenset().union(*(later.ids for later in self.changes[start:]))
        return None


def view_of(source: str, cursor: int | None, sessions: Mapping[str, Session] | list[Session], full_reads: int,
            changes: tuple[Changed, ...] = ()) -> SessionsView:
    """Sessions newest first, with a count for every state (zero included)."""
    rows = list(sessions.values()) if isinstance(sessions, Mapping) else sessions
    by_id = MappingProxyType(dict(sessions) if isinstance(sessions, Mapping) else {s.id: s for s in rows})
    rows.sort(key=lambda s: s.created_at, reverse=True)
    counts = dict.fromkeys((str(s) for s in STATES), 0)
    for session in rows:
        counts[session.state] += 1
    return SessionsView(source, cursor, counts, tuple(rows), full_reads, by_id, changes)


class RegistryFollower:
    """The collect function of a sqlite:// or postgresql:// Sessions panel."""

    def __init__(self, url: str, *, gap_events: int = GAP_EVENTS) -> None:
        self.url = url
        self.gap_events = gap_events
        self._registry: Registry | None = None
        self._listener: Any = None
        self._version: int | None = None
        self._by_id: dict[str, Session] | None = None
        self._cursor = 0
        self._changes: tuple[Changed, ...] = ()
        self.full_reads = 0

    def __call__(self, context: CollectContext[SessionsView]) -> SessionsView:
        try:
            return self._collect(context)
        except BaseException:
            self.close()  # start over from a full read once the source is back
            raise

    def _collect(self, context: CollectContext[SessionsView]) -> SessionsView:
        if self._registry is None:
            self._registry = Registry.open(self.url, one_connection=True)
            self._listener = self._registry.listen()
        registry = self._registry
        if self._by_id is None or context.previous is None:
            return self._full(registry)
        if not self._changed(registry) and not context.force:
            return context.previous
        changes = registry.changes_since(self._cursor, limit=self.gap_events)
        if changes.gap:
            return self._full(registry)
        return self._apply(changes)

    def _changed(self, registry: Registry) -> bool:
        """The cheap check: has anyone committed since we last looked?"""
        if self._listener is None:
            version = registry.data_version()
            changed, self._version = version != self._version, version
            return changed
        return any(True for _ in self._listener.notifies(timeout=0.0))

    def _full(self, registry: Registry) -> SessionsView:
        if self._listener is None:
            self._version = registry.data_version()
        else:
            for _ in self._listener.notifies(timeout=0.0):
                pass  # everything announced so far is in the snapshot below
        snapshot: RegistrySnapshot = registry.snapshot()
        self._by_id = {session.id: session for session in snapshot.sessions()}
        self._cursor = snapshot.cursor
        self._changes = ()
        self.full_reads += 1
        return view_of(self.url, self._cursor, self._by_id, self.full_reads)

    def _apply(self, changes: Changes) -> SessionsView:
        assert self._by_id is not None
        for session_id, session in changes.sessions.items():
            if session is None:
                self._by_id.pop(session_id, None)
            else:
                self._by_id[session_id] = session
        step = Changed(self._cursor, changes.cursor, frozenset(changes.sessions))
        self._cursor = changes.cursor
        self._changes = (*self._changes[-(CHANGES_KEPT - 1):], step)
        return view_of(self.url, self._cursor, self._by_id, self.full_reads, self._changes)

    def close(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):  # a broken connection is closed anyway
                self._listener.close()
        if self._registry is not None:
            self._registry.close()
        self._registry = self._listener = self._by_id = None
        self._version = None
