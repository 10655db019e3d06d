"""The PostgreSQL registry (psycopg 3, the ``postgres`` extra): for apps spanning hosts.

Tables live in their own schema (``opsconsole`` unless the URL says ``?schema=name``), so
they never meet an app's own ``sessions`` table. Writes run at READ COMMITTED and lock the
session row (SELECT … FOR UPDATE) before checking its state; the cursor row is the last
lock taken, so events commit in cursor order; it is released before the disk flush,
which the caller then waits for without holding anything (`_flush_barrier`), so
concurrent writers share flushes. A trigger NOTIFYs each committing write, which is how
a follower learns of changes without polling the tables.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from backends.sessions.model import Event, RegistryError, SessionState
from backends.sessions.registry import Applied, ChangeOp, Registry, Tx

try:
    import psycopg
    from psycopg import errors as pg_errors
    from psycopg.types.json import Jsonb
except ImportError:  # pragma: no cover - depends on the install
    psycopg = None  # type: ignore[assignment]

DEFAULT_SCHEMA = "opsconsole"
#: Written as the schema's comment once its tables and functions are in place; an open
#: that finds it skips the DDL (which would lock the events table), a change bumps it.
SCHEMA_VERSION = "opsconsole sessions 2"
CONNECT_TIMEOUT_S = 5


def _schema_sql(schema: str) -> str:
    s = f'"{schema}"'
    return f"""
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.sessions (
    id TEXT PRIMARY KEY, state TEXT NOT NULL, label TEXT NOT NULL, owner TEXT NOT NULL,
    progress DOUBLE PRECISION NOT NULL, note TEXT NOT NULL, meta TEXT, result TEXT, error TEXT,
    created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
    last_access_at DOUBLE PRECISION NOT NULL);
CREATE INDEX IF NOT EXISTS sessions_state_updated ON {s}.sessions (state, updated_at);
CREATE TABLE IF NOT EXISTS {s}.events (
    seq BIGINT PRIMARY KEY, session TEXT NOT NULL, kind TEXT NOT NULL, from_state TEXT,
    to_state TEXT, at DOUBLE PRECISION NOT NULL, actor TEXT NOT NULL, detail TEXT);
CREATE INDEX IF NOT EXISTS events_session ON {s}.events (session, seq);
CREATE TABLE IF NOT EXISTS {s}.cursor (one INTEGER PRIMARY KEY CHECK (one = 1), value BIGINT NOT NULL);
INSERT INTO {s}.cursor (one, value) VALUES (1, 0) ON CONFLICT DO NOTHING;
CREATE OR REPLACE FUNCTION {s}.apply_change(
    p_id TEXT, p_kind TEXT, p_target TEXT, p_permitted TEXT[], p_changes JSONB,
    p_detail TEXT, p_actor TEXT, p_at DOUBLE PRECISION,
    OUT current_state TEXT, OUT purged BOOLEAN, OUT seq BIGINT) LANGUAGE plpgsql AS $$
BEGIN
    -- The commit record goes out without waiting for the disk, so the cursor row's lock is
    -- not held through a flush; the caller then waits for durability (see _apply).
    PERFORM set_config('synchronous_commit', 'off', true);
    purged := false;
    SELECT state INTO current_state FROM {s}.sessions WHERE id = p_id FOR UPDATE;
    IF current_state IS NULL THEN
        purged := EXISTS (SELECT 1 FROM {s}.events WHERE session = p_id);
    END IF;
    IF p_kind = 'start' THEN
        IF current_state IS NOT NULL OR purged THEN RETURN; END IF;
        INSERT INTO {s}.sessions (id, state, label, owner, progress, note, meta, created_at,
            updated_at, last_access_at)
        VALUES (p_id, p_target, p_changes->>'label', p_changes->>'owner', 0, '',
            p_changes->>'meta', p_at, p_at, p_at);
    ELSIF current_state IS NULL OR NOT (current_state = ANY (p_permitted)) THEN
        RETURN;
    ELSE
        UPDATE {s}.sessions SET
            state = COALESCE(p_target, state), updated_at = p_at, last_access_at = p_at,
            progress = CASE WHEN p_changes ? 'progress' THEN (p_changes->>'progress')::float8 ELSE progress END,
            note = CASE WHEN p_changes ? 'note' THEN p_changes->>'note' ELSE note END,
            result = CASE WHEN p_changes ? 'result' THEN p_changes->>'result' ELSE result END,
            error = CASE WHEN p_changes ? 'error' THEN p_changes->>'error' ELSE error END
        WHERE id = p_id;
    END IF;
    -- The cursor row is the last lock taken: events commit in cursor order.
    UPDATE {s}.cursor SET value = value + 1 WHERE one = 1 RETURNING value INTO seq;
    INSERT INTO {s}.events (seq, session, kind, from_state, to_state, at, actor, detail)
    VALUES (seq, p_id, p_kind, current_state, COALESCE(p_target, current_state), p_at, p_actor, p_detail);
END $$;
CREATE OR REPLACE FUNCTION {s}.notify_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_notify('{notify_channel(schema)}', ''); RETURN NULL; END $$;
CREATE OR REPLACE TRIGGER events_notify AFTER INSERT ON {s}.events
    FOR EACH STATEMENT EXECUTE FUNCTION {s}.notify_events();
COMMENT ON SCHEMA {s} IS '{SCHEMA_VERSION}';
"""


def notify_channel(schema: str) -> str:
    return f"opsconsole_sessions_{schema}"


def split_url(url: str) -> tuple[str, str]:
    """The libpq URL without our ``schema`` parameter, and the schema name."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((value for key, value in query if key == "schema"), DEFAULT_SCHEMA)
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,40}", schema):
        raise RegistryError(f"bad schema {schema!r} in {url!r}: lower-case letters, digits and _ only")
    rest = urlencode([(key, value) for key, value in query if key != "schema"], quote_via=quote)
    return urlunsplit(parts._replace(query=rest)), schema


class PostgresRegistry(Registry):
    FOR_UPDATE = " FOR UPDATE"
    placeholder = "%s"

    def __init__(self, url: str, *, actor: str | None = None, one_connection: bool = False) -> None:
        if psycopg is None:
            raise RegistryError("a postgresql:// registry needs psycopg: pip install 'opsconsole[postgres]'")
        super().__init__(url, actor=actor, one_connection=one_connection)
        self.conninfo, self.schema = split_url(url)
        self.table_prefix = f'"{self.schema}".'
        try:
            # Several processes may create the schema at once; an advisory lock orders them.
            with self._connect() as setup:
                # The DDL locks the events table; skip it when an earlier open already ran it.
                ready = setup.execute(
                    "SELECT obj_description(to_regnamespace(%s), 'pg_namespace') = %s",
                    (self.schema, SCHEMA_VERSION),
                ).fetchone()[0]
                if not ready:
                    with setup.transaction():
                        setup.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.schema,))
                        setup.execute(_schema_sql(self.schema))
        except psycopg.Error as error:
            raise RegistryError(f"cannot open {url}: {_first_line(error)}") from None

    def _connect(self) -> Any:
        try:
            return psycopg.connect(self.conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        except psycopg.Error as error:
            raise RegistryError(f"cannot connect to {self.url}: {_first_line(error)}") from None

    def _new_cursor(self, connection: Any) -> Any:
        # Results in binary: floats and integers arrive as machine values instead of text
        # to parse, which nearly halves fetching a 10,000-session snapshot.
        return connection.cursor(binary=True)

    def _begin_write(self, tx: Tx) -> None:
        tx.execute("BEGIN ISOLATION LEVEL READ COMMITTED")

    def _begin_read(self, tx: Tx) -> None:
        tx.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    def _is_retryable(self, error: BaseException) -> bool:
        return isinstance(error, pg_errors.DeadlockDetected | pg_errors.SerializationFailure)

    def _apply(self, op: ChangeOp) -> Applied:
        """The same change as the base class, in one round trip: a function call in autocommit.

        Four round trips per transition (begin, check, update, commit) capped a writer at a
        few hundred transitions per second; the server-side function does them in one.
        """
        for attempt in range(5):
            try:
                row = self._connection().execute(
                    f"SELECT current_state, purged, seq FROM {self.table_prefix}apply_change"
                    "(%s, %s, %s, %s, %s, %s, %s, %s)",
                    (op.session_id, str(op.kind), op.target and str(op.target),
                     [str(s) for s in op.permitted], Jsonb(op.changes),
                     json.dumps(op.detail) if op.detail else None, op.actor, op.at),
                ).fetchone()
                break
            except psycopg.Error as error:
                # Two starts of one new id: the loser's retry finds the row and says so.
                if attempt == 4 or not (self._is_retryable(error) or isinstance(error, pg_errors.UniqueViolation)):
                    raise
        current_state, purged, seq = row
        current = SessionState(current_state) if current_state else None
        if seq is None:
            return Applied(current, purged, None)
        self._flush_barrier()
        event = Event(
            seq=seq, session=op.session_id, kind=op.kind, from_state=current,
            to_state=op.target or current, at=op.at, actor=op.actor, detail=op.detail,
        )
        return Applied(current, purged, event)

    def _flush_barrier(self) -> None:
        """Return only once the change just committed is on disk.

        A transaction that takes a transaction id commits with a flushed WAL record (unless
        the URL turned synchronous_commit off), and a flush covers every earlier record, so
        this waits for our change without holding any lock, and concurrent writers share
        one flush. Holding the cursor row through each writer's own flush capped all
        writers together at one flush per transition.
        """
        self._connection().execute("SELECT pg_current_xact_id()")

    def listen(self) -> Any:
        """A new connection LISTENing on this registry's channel (the caller closes it)."""
        connection = self._connect()
        connection.execute(f"LISTEN {notify_channel(self.schema)}")
        return connection

    def drop(self) -> None:
        """Remove the schema and everything in it (tests and benchmarks clean up with this)."""
        with self._connect() as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
