"""The session registry: every operation is one database transaction with a state precondition.

One implementation of the operations serves SQLite and PostgreSQL; a store subclass only
says how to connect, how to begin a write or a consistent read, and its DDL. The cursor is
a counter row bumped inside every writing transaction, so events become visible in cursor
order and a reader following ``events_since(cursor)`` never skips one.

Thread use: a Registry may be shared by threads (each thread gets its own connection) and
survives ``fork`` (a child opens fresh connections). `AsyncRegistry` runs the same calls in
worker threads for asyncio apps.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import os
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, ParamSpec, Self, TypeVar
from urllib.parse import urlsplit

from backends.sessions.model import (
    ALLOWED_FROM,
    PURGEABLE,
    STATES,
    Changes,
    Event,
    EventKind,
    IllegalTransition,
    RegistryError,
    RegistrySnapshot,
    Session,
    SessionExists,
    SessionState,
    Tombstone,
    UnknownSession,
)

P = ParamSpec("P")
R = TypeVar("R")

#: Columns a snapshot reads (the `snapshot --json` contract plus the progress note).
SUMMARY_COLUMNS = "id, state, label, owner, progress, created_at, updated_at, last_access_at, note"
EVENT_COLUMNS = "seq, session, kind, from_state, to_state, at, actor, detail"


def default_actor() -> str:
    """Who an event names when the caller does not say: user@host pid N."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()} pid {os.getpid()}"


@dataclass(frozen=True, slots=True)
class ChangeOp:
    """One change to one session, as a store applies it."""

    session_id: str
    kind: EventKind
    target: SessionState | None
    permitted: frozenset[SessionState]
    changes: dict[str, Any]  # columns to set (for START: label, owner, meta)
    detail: dict[str, Any]
    actor: str
    at: float


@dataclass(frozen=True, slots=True)
class Applied:
    """What a store found: the state before, whether the id was purged, the event if written."""

    current: SessionState | None
    purged: bool
    event: Event | None


class Tx:
    """One open transaction: ``?`` placeholders, rewritten for the store's driver."""

    def __init__(self, cursor: Any, placeholder: str) -> None:
        self._cursor = cursor
        self._placeholder = placeholder

    def _sql(self, sql: str) -> str:
        return sql if self._placeholder == "?" else sql.replace("?", self._placeholder)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        self._cursor.execute(self._sql(sql), params)
        return self._cursor

    def many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._cursor.executemany(self._sql(sql), list(rows))

    def one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.execute(sql, params).fetchone()

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self.execute(sql, params).fetchall()


class Registry(ABC):
    """A session registry at a URL; see the module docstring and README "Registry library"."""

    #: Appended to the row-reading SELECT of a write, so PostgreSQL locks the row it checks.
    FOR_UPDATE = ""

    def __init__(self, url: str, *, actor: str | None = None, one_connection: bool = False) -> None:
        self.url = url
        self.actor = actor or default_actor()
        self._one_connection = one_connection
        self._local = threading.local()
        self._pid: int | None = None  # with one_connection: the process that opened it
        self._connections: list[Any] = []
        self._connections_lock = threading.Lock()

    # -- opening -------------------------------------------------------------------

    @staticmethod
    def open(url: str, *, actor: str | None = None, one_connection: bool = False) -> Registry:
        """Open (and create if needed) the registry at ``sqlite:///path`` or ``postgresql://…``.

        ``actor`` names the writer in events (default: user@host pid N). With
        ``one_connection`` every thread shares one connection, for a caller whose calls
        never overlap but whose threads come and go (a collector).
        """
        scheme = urlsplit(url).scheme
        if scheme == "sqlite":
            from backends.sessions.sqlite_store import SqliteRegistry

            return SqliteRegistry(url, actor=actor, one_connection=one_connection)
        if scheme in ("postgresql", "postgres"):
            from backends.sessions.postgres_store import PostgresRegistry

            return PostgresRegistry(url, actor=actor, one_connection=one_connection)
        raise RegistryError(
            f"unsupported registry URL {url!r}: expected sqlite:///path or postgresql://…"
        )

    # -- what a store provides -----------------------------------------------------

    @abstractmethod
    def _connect(self) -> Any:
        """A new connection in autocommit mode (transactions are begun explicitly)."""

    @abstractmethod
    def _begin_write(self, tx: Tx) -> None:
        """Begin a transaction that takes the write lock (or row locks) before reading."""

    @abstractmethod
    def _begin_read(self, tx: Tx) -> None:
        """Begin a read-only transaction that sees one instant for all its statements."""

    @abstractmethod
    def _is_retryable(self, error: BaseException) -> bool:
        """A transaction the database aborted to break a deadlock: safe to run again."""

    placeholder = "?"
    table_prefix = ""

    def _close_connection(self, connection: Any) -> None:
        connection.close()

    def listen(self) -> Any:
        """A connection that receives change notifications (the caller closes it), or None
        where the store has none and :meth:`data_version` answers "anything new?" instead."""
        return None

    def data_version(self) -> int:
        """A number that changes whenever another connection commits (stores without notifications)."""
        raise NotImplementedError(f"{type(self).__name__} has neither change notifications nor a data version")

    def _new_cursor(self, connection: Any) -> Any:
        """The cursor a transaction runs on (a store may ask for a faster result format)."""
        return connection.cursor()

    # -- connections and transactions ----------------------------------------------

    def _connection(self) -> Any:
        local = self if self._one_connection else self._local
        if getattr(local, "_pid", None) != os.getpid():  # new thread, or a forked child
            local._connection_of_pid = self._connect()
            local._pid = os.getpid()
            with self._connections_lock:
                self._connections.append(local._connection_of_pid)
        return local._connection_of_pid

    @contextmanager
    def _transaction(self, begin: Callable[[Tx], None]) -> Iterator[Tx]:
        cursor = self._new_cursor(self._connection())
        tx = Tx(cursor, self.placeholder)
        begin(tx)
        try:
            yield tx
        except BaseException:
            tx.execute("ROLLBACK")
            raise
        else:
            tx.execute("COMMIT")
        finally:
            cursor.close()

    def _write(self, work: Callable[[Tx], R]) -> R:
        """Run ``work`` in one write transaction, again if the database broke a deadlock."""
        for attempt in range(5):
            try:
                with self._transaction(self._begin_write) as tx:
                    return work(tx)
            except Exception as error:
                if attempt == 4 or not self._is_retryable(error):
                    raise
        raise AssertionError("unreachable")

    def _read(self, work: Callable[[Tx], R]) -> R:
        with self._transaction(self._begin_read) as tx:
            return work(tx)

    def close(self) -> None:
        """Close every connection this registry opened in this process."""
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            with contextlib.suppress(Exception):  # closing is best effort
                self._close_connection(connection)
        self._local = threading.local()
        self._pid = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- table names -----------------------------------------------------------------

    @property
    def sessions_table(self) -> str:
        return f"{self.table_prefix}sessions"

    @property
    def events_table(self) -> str:
        return f"{self.table_prefix}events"

    @property
    def cursor_table(self) -> str:
        return f"{self.table_prefix}cursor"

    # -- writing -------------------------------------------------------------------

    def _append(
        self, tx: Tx, events: Sequence[tuple[str, EventKind, str | None, str | None, float, str, dict[str, Any]]]
    ) -> list[Event]:
        """Take the next cursor values (the last lock a writer takes) and insert the events."""
        if not events:
            return []
        (last,) = tx.one(
            f"UPDATE {self.cursor_table} SET value = value + ? WHERE one = 1 RETURNING value",
            (len(events),),
        )
        first = last - len(events) + 1
        rows = [(first + i, *event[:6], json.dumps(event[6]) if event[6] else None) for i, event in enumerate(events)]
        tx.many(f"INSERT INTO {self.events_table} ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        return [_event(row) for row in rows]

    def _state_of(self, tx: Tx, session_id: str) -> SessionState | None:
        row = tx.one(f"SELECT state FROM {self.sessions_table} WHERE id = ?{self.FOR_UPDATE}", (session_id,))
        return None if row is None else SessionState(row[0])

    def _was_purged(self, tx: Tx, session_id: str) -> bool:
        return tx.one(f"SELECT 1 FROM {self.events_table} WHERE session = ? LIMIT 1", (session_id,)) is not None

    def _change(
        self,
        session_id: str,
        kind: EventKind,
        target: SessionState | None,
        move: str,
        changes: Mapping[str, Any],
        detail: dict[str, Any],
        actor: str | None,
        allowed: frozenset[SessionState] | None = None,
    ) -> Event:
        """Apply one change and turn a refused precondition into the error that names it.

        ``target`` None keeps the state (progress, touch); ``allowed`` defaults to the
        states the target may be reached from.
        """
        op = ChangeOp(
            session_id=session_id, kind=kind, target=target,
            permitted=allowed if allowed is not None else ALLOWED_FROM[target],  # type: ignore[index]
            changes=dict(changes), detail=detail, actor=actor or self.actor, at=time.time(),
        )
        outcome = self._apply(op)
        if outcome.event is not None:
            return outcome.event
        if kind is EventKind.START:
            raise SessionExists(session_id, outcome.current)
        if outcome.current is None and not outcome.purged:
            raise UnknownSession(session_id)
        raise IllegalTransition(session_id, outcome.current, move)

    def _apply(self, op: ChangeOp) -> Applied:
        """Check the precondition, write the row and the event, in one transaction."""

        def work(tx: Tx) -> Applied:
            current = self._state_of(tx, op.session_id)
            purged = current is None and self._was_purged(tx, op.session_id)
            if op.kind is EventKind.START:
                if current is not None or purged:
                    return Applied(current, purged, None)
                tx.execute(
                    f"INSERT INTO {self.sessions_table} (id, state, label, owner, progress, note, meta,"
                    " created_at, updated_at, last_access_at) VALUES (?, ?, ?, ?, 0, '', ?, ?, ?, ?)",
                    (op.session_id, str(SessionState.ACTIVE), op.changes["label"], op.changes["owner"],
                     op.changes["meta"], op.at, op.at, op.at),
                )
            elif current is None or current not in op.permitted:
                return Applied(current, purged, None)
            else:
                values = {"updated_at": op.at, "last_access_at": op.at, **op.changes}
                if op.target is not None:
                    values["state"] = str(op.target)
                assignments = ", ".join(f"{column} = ?" for column in values)
                tx.execute(
                    f"UPDATE {self.sessions_table} SET {assignments} WHERE id = ?",
                    (*values.values(), op.session_id),
                )
            to_state = str(op.target or current)
            (event,) = self._append(
                tx, [(op.session_id, op.kind, current and str(current), to_state, op.at, op.actor, op.detail)]
            )
            return Applied(current, purged, event)

        return self._write(work)

    def start(
        self,
        session_id: str,
        *,
        label: str = "",
        owner: str = "",
        meta: Mapping[str, Any] | None = None,
        actor: str | None = None,
    ) -> Event:
        """Create a session in state ``active``; an id is never reused, even after a purge."""
        changes = {"label": label, "owner": owner, "meta": json.dumps(dict(meta)) if meta else None}
        detail = {"label": label, "owner": owner} if label or owner else {}
        return self._change(
            session_id, EventKind.START, SessionState.ACTIVE, "start", changes, detail, actor
        )

    def progress(self, session_id: str, fraction: float, *, note: str | None = None, actor: str | None = None) -> Event:
        """Record progress (0..1) of an active session."""
        if not 0.0 <= fraction <= 1.0:
            raise RegistryError(f"progress of session {session_id!r} must be between 0 and 1, got {fraction!r}")
        changes: dict[str, Any] = {"progress": fraction}
        if note is not None:
            changes["note"] = note
        detail = {"progress": fraction, **({"note": note} if note is not None else {})}
        return self._change(
            session_id, EventKind.PROGRESS, None, "record progress (only active sessions progress)",
            changes, detail, actor, allowed=frozenset({SessionState.ACTIVE}),
        )

    def complete(self, session_id: str, *, result: Any = None, actor: str | None = None) -> Event:
        changes = {"progress": 1.0, "result": None if result is None else json.dumps(result)}
        return self._transition(session_id, SessionState.COMPLETED, "complete", changes, {}, actor)

    def stop(self, session_id: str, *, actor: str | None = None) -> Event:
        return self._transition(session_id, SessionState.STOPPED, "stop", {}, {}, actor)

    def fail(self, session_id: str, error: str, *, actor: str | None = None) -> Event:
        return self._transition(session_id, SessionState.FAILED, "fail", {"error": error}, {"error": error}, actor)

    def expire(self, session_id: str, *, actor: str | None = None, expect: SessionState | None = None) -> Event:
        """Expire one session now, whatever its idle time (the panel's ``x``).

        With ``expect``, only while the session is still in that state: an operator who
        chose to expire an active session does not expire the result it completed since.
        """
        return self._transition(session_id, SessionState.EXPIRED, "expire", {}, {}, actor, expect)

    def _transition(
        self, session_id: str, target: SessionState, verb: str,
        changes: Mapping[str, Any], detail: dict[str, Any], actor: str | None,
        expect: SessionState | None = None,
    ) -> Event:
        move = f"{verb} (move to {target})"
        allowed = None
        if expect is not None:
            allowed = ALLOWED_FROM[target] & {SessionState(expect)}
            move += f": it was {expect} when the move was planned"
        return self._change(session_id, EventKind.TRANSITION, target, move, changes, detail, actor, allowed)

    def touch(self, session_id: str, *, actor: str | None = None) -> Event:
        """Record an access (the idle clock of `expire_idle`) without changing the state."""
        return self._change(session_id, EventKind.TOUCH, None, "touch", {}, {}, actor, allowed=frozenset(STATES))

    def expire_idle(self, older_than_s: float, *, actor: str | None = None) -> list[Event]:
        """Expire every session not accessed for ``older_than_s`` seconds, in one transaction."""
        now = time.time()
        cutoff = now - older_than_s

        def work(tx: Tx) -> list[Event]:
            rows = tx.all(
                f"SELECT id, state FROM {self.sessions_table} WHERE state <> ? AND last_access_at < ?"
                f" ORDER BY id{self.FOR_UPDATE}",
                (str(SessionState.EXPIRED), cutoff),
            )
            tx.many(
                f"UPDATE {self.sessions_table} SET state = ?, updated_at = ? WHERE id = ?",
                [(str(SessionState.EXPIRED), now, session_id) for session_id, _ in rows],
            )
            who = actor or self.actor
            return self._append(
                tx,
                [(sid, EventKind.TRANSITION, state, str(SessionState.EXPIRED), now, who, {"idle_s": older_than_s})
                 for sid, state in rows],
            )

        return self._write(work)

    def purge(
        self, older_than_s: float, *, states: Iterable[SessionState] = PURGEABLE, actor: str | None = None,
        ids: Iterable[str] | None = None,
    ) -> list[Event]:
        """Delete finished sessions last changed ``older_than_s`` ago; each leaves a tombstone.

        Their earlier events go too; the purge event (the tombstone) stays. With ``ids``
        (the `purge_candidates` a plan showed) only those go, and only if they still
        qualify: a session that grew old enough since the plan is left for the next purge.
        """
        chosen = self._purge_states(states)
        wanted = None if ids is None else frozenset(ids)
        now = time.time()
        cutoff = now - older_than_s

        def work(tx: Tx) -> list[Event]:
            rows = self._purge_rows(tx, chosen, cutoff, lock=True)
            if wanted is not None:
                rows = [row for row in rows if row[0] in wanted]
            doomed = [(row[0],) for row in rows]
            tx.many(f"DELETE FROM {self.events_table} WHERE session = ?", doomed)
            tx.many(f"DELETE FROM {self.sessions_table} WHERE id = ?", doomed)
            who = actor or self.actor
            return self._append(
                tx,
                [(sid, EventKind.PURGE, state, None, now, who, {"label": label, "owner": owner})
                 for sid, state, label, owner in rows],
            )

        return self._write(work)

    def purge_candidates(self, older_than_s: float, *, states: Iterable[SessionState] = PURGEABLE) -> list[tuple[str, SessionState]]:
        """What `purge` would delete now: (id, state) pairs, for a plan shown before acting."""
        chosen = self._purge_states(states)
        cutoff = time.time() - older_than_s
        rows = self._read(lambda tx: self._purge_rows(tx, chosen, cutoff, lock=False))
        return [(row[0], SessionState(row[1])) for row in rows]

    @staticmethod
    def _purge_states(states: Iterable[SessionState]) -> list[str]:
        chosen = sorted({SessionState(s) for s in states})
        if SessionState.ACTIVE in chosen:
            raise RegistryError("active sessions cannot be purged: stop or expire them first")
        return [str(s) for s in chosen]

    def _purge_rows(self, tx: Tx, states: list[str], cutoff: float, *, lock: bool) -> list[Any]:
        if not states:
            return []
        marks = ", ".join("?" for _ in states)
        return tx.all(
            f"SELECT id, state, label, owner FROM {self.sessions_table} WHERE state IN ({marks})"
            f" AND updated_at < ? ORDER BY id{self.FOR_UPDATE if lock else ''}",
            (*states, cutoff),
        )

    # -- reading -------------------------------------------------------------------

    def get(self, session_id: str) -> Session | Tombstone | None:
        """The session, or the tombstone of a purged one; None only for an id never seen."""

        return self._read(lambda tx: self._get(tx, session_id))

    def _get(self, tx: Tx, session_id: str) -> Session | Tombstone | None:
        row = tx.one(
            f"SELECT {SUMMARY_COLUMNS}, meta, result, error FROM {self.sessions_table} WHERE id = ?",
            (session_id,),
        )
        return _session(row) if row is not None else self._tombstone(tx, session_id)

    def _tombstone(self, tx: Tx, session_id: str) -> Tombstone | None:
        row = tx.one(
            f"SELECT {EVENT_COLUMNS} FROM {self.events_table} WHERE session = ? AND kind = ?"
            " ORDER BY seq DESC LIMIT 1",
            (session_id, str(EventKind.PURGE)),
        )
        if row is None:
            return None
        event = _event(row)
        return Tombstone(
            id=session_id, last_state=event.from_state or SessionState.EXPIRED,
            label=str(event.detail.get("label", "")), owner=str(event.detail.get("owner", "")),
            removed_at=event.at, actor=event.actor, seq=event.seq,
        )

    def record(self, session_id: str) -> tuple[Session | Tombstone | None, list[Event]]:
        """`get()` and `history()` read together, as of one instant (the detail view)."""

        def work(tx: Tx) -> tuple[Session | Tombstone | None, list[Event]]:
            return self._get(tx, session_id), self._history(tx, session_id)

        return self._read(work)

    def history(self, session_id: str) -> list[Event]:
        """The session's events, oldest first (after a purge: only the purge event)."""
        return self._read(lambda tx: self._history(tx, session_id))

    def _history(self, tx: Tx, session_id: str) -> list[Event]:
        return [
            _event(row)
            for row in tx.all(
                f"SELECT {EVENT_COLUMNS} FROM {self.events_table} WHERE session = ? ORDER BY seq", (session_id,)
            )
        ]

    def snapshot(self) -> RegistrySnapshot:
        """Every non-purged session as of one instant, grouped by state, with the cursor."""

        def work(tx: Tx) -> RegistrySnapshot:
            (cursor,) = tx.one(f"SELECT value FROM {self.cursor_table} WHERE one = 1")
            rows = tx.all(f"SELECT {SUMMARY_COLUMNS} FROM {self.sessions_table}")
            return RegistrySnapshot(cursor=cursor, taken_at=time.time(), by_state=_group(rows))

        return self._read(work)

    def events_since(self, cursor: int, *, limit: int | None = None) -> list[Event]:
        """Committed events after ``cursor``, in order (``limit`` caps how many)."""
        return self._read(lambda tx: self._events_after(tx, cursor, limit))

    def _events_after(self, tx: Tx, cursor: int, limit: int | None) -> list[Event]:
        sql = f"SELECT {EVENT_COLUMNS} FROM {self.events_table} WHERE seq > ? ORDER BY seq"
        if limit is not None:
            return [_event(row) for row in tx.all(sql + " LIMIT ?", (cursor, limit))]
        return [_event(row) for row in tx.all(sql, (cursor,))]

    def changes_since(self, cursor: int, *, limit: int = 5000) -> Changes:
        """Events after ``cursor`` and the rows they touch, read in one transaction.

        When more than ``limit`` events wait, ``gap`` is set and nothing else is read: a
        full `snapshot()` is cheaper than replaying them.
        """

        def work(tx: Tx) -> Changes:
            events = self._events_after(tx, cursor, limit + 1)
            if len(events) > limit:
                return Changes(cursor=cursor, events=(), sessions={}, gap=True)
            ids = sorted({event.session for event in events})
            found: dict[str, Session | None] = dict.fromkeys(ids)
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ", ".join("?" for _ in chunk)
                for row in tx.all(f"SELECT {SUMMARY_COLUMNS} FROM {self.sessions_table} WHERE id IN ({marks})", chunk):
                    found[row[0]] = _session(row)
            return Changes(cursor=events[-1].seq if events else cursor, events=tuple(events), sessions=found)

        return self._read(work)

    def cursor(self) -> int:
        """The seq of the last committed event (0 for a new registry)."""
        return self._read(lambda tx: tx.one(f"SELECT value FROM {self.cursor_table} WHERE one = 1")[0])


_STATE_OF = {str(state): state for state in STATES}


class _SummaryRow:
    """Builds the `Session` of one summary row (SUMMARY_COLUMNS order) at a third of the cost.

    A frozen dataclass's ``__init__`` sets each of Session's twelve fields through
    ``object.__setattr__``; at 10,000 rows that was half of a snapshot. This class has the
    very same slots, so it fills them with plain stores and then turns into a Session
    (CPython lets an object change ``__class__`` between classes of identical layout).
    What comes out is an ordinary frozen Session, equal to one built the slow way.
    """

    __slots__ = Session.__slots__  # type: ignore[attr-defined]  # set by dataclass(slots=True)

    def __init__(self, row: Sequence[Any]) -> None:
        (self.id, state, self.label, self.owner, self.progress, self.created_at, self.updated_at,
         self.last_access_at, self.note) = row
        self.state = _STATE_OF[state]
        self.meta = self.result = self.error = None
        self.__class__ = Session  # type: ignore[assignment]


def summary_session(row: Sequence[Any]) -> Session:
    """The Session of one summary row (SUMMARY_COLUMNS order)."""
    return _SummaryRow(row)  # type: ignore[return-value]  # it is a Session once built


def _session(row: Sequence[Any]) -> Session:
    if len(row) == 9:  # a summary row
        return summary_session(row)
    *summary, meta, result, error = row
    return replace(
        summary_session(summary),
        meta=json.loads(meta) if meta else {},
        result=json.loads(result) if result else None,
        error=error,
    )


def _event(row: Sequence[Any]) -> Event:
    seq, session, kind, from_state, to_state, at, actor, detail = row
    return Event(
        seq=seq, session=session, kind=EventKind(kind),
        from_state=SessionState(from_state) if from_state else None,
        to_state=SessionState(to_state) if to_state else None,
        at=at, actor=actor, detail=json.loads(detail) if detail else {},
    )


def _group(rows: Iterable[Sequence[Any]]) -> dict[SessionState, tuple[Session, ...]]:
    """Summary rows as Sessions grouped by state: the hot loop of a 10,000-row snapshot."""
    groups: dict[SessionState, list[Session]] = {state: [] for state in STATES}
    appenders = {state: group.append for state, group in groups.items()}
    for session in map(summary_session, rows):
        appenders[session.state](session)
    return {state: tuple(sessions) for state, sessions in groups.items()}


class AsyncRegistry:
    """The same operations for asyncio code: each call runs in a worker thread.

    ``reg = AsyncRegistry(Registry.open(url)); await reg.start("s-1")``. The wrapped
    registry gives each thread its own connection, so calls may overlap.
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.registry, name)
        if not callable(method) or name.startswith("_"):
            raise AttributeError(name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await asyncio.to_thread(method, *args, **kwargs)

        call.__name__ = name
        return call
