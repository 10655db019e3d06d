"""The SQLite registry: one file in WAL mode, writes begun IMMEDIATE, a busy timeout.

BEGIN IMMEDIATE takes the write lock before the precondition is read, so two processes can
never both read "active" and both move the session on, and a writer never meets
SQLITE_BUSY halfway through (it waits at BEGIN, up to the busy timeout). A killed writer's
uncommitted frames are ignored by the next reader: the WAL keeps every transaction whole.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from backends.sessions.model import RegistryError
from backends.sessions.netfs import network_fstype
from backends.sessions.registry import Registry, Tx

#: How long a writer waits for another process's write to finish before giving up.
BUSY_TIMEOUT_S = 10.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, state TEXT NOT NULL, label TEXT NOT NULL, owner TEXT NOT NULL,
    progress REAL NOT NULL, note TEXT NOT NULL, meta TEXT, result TEXT, error TEXT,
    created_at REAL NOT NULL, updated_at REAL NOT NULL, last_access_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS sessions_state_updated ON sessions (state, updated_at);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY, session TEXT NOT NULL, kind TEXT NOT NULL, from_state TEXT,
    to_state TEXT, at REAL NOT NULL, actor TEXT NOT NULL, detail TEXT);
CREATE INDEX IF NOT EXISTS events_session ON events (session, seq);
CREATE TABLE IF NOT EXISTS cursor (one INTEGER PRIMARY KEY CHECK (one = 1), value INTEGER NOT NULL);
INSERT INTO cursor (one, value) VALUES (1, 0) ON CONFLICT DO NOTHING;
"""


def _schema_ready(connection: sqlite3.Connection) -> bool:
    """The tables exist and the cursor row is there: the schema script (a write) is not
    needed, so an operator with read access only can still watch and look."""
    try:
        return connection.execute("SELECT 1 FROM cursor").fetchone() is not None
    except sqlite3.OperationalError:  # no such table: a new database
        return False


def sqlite_path(url: str) -> Path:
    """``sqlite:///relative.db`` (relative to the current directory) or ``sqlite:////abs/path.db``."""
    parts = urlsplit(url)
    if parts.netloc or not parts.path or parts.path == "/":
        raise RegistryError(f"bad SQLite URL {url!r}: expected sqlite:///path/to/file.db")
    # One slash is the separator (SQLAlchemy's rule): four slashes make an absolute path.
    return Path(unquote(parts.path)[1:])


class SqliteRegistry(Registry):
    def __init__(self, url: str, *, actor: str | None = None, one_connection: bool = False) -> None:
        super().__init__(url, actor=actor, one_connection=one_connection)
        self.path = sqlite_path(url)
        if not self.path.parent.is_dir():
            raise RegistryError(f"cannot open {url}: directory {self.path.parent} does not exist")
        fstype = network_fstype(self.path.parent)
        if fstype is not None:
            raise RegistryError(
                f"cannot open {url}: {self.path.parent} is on a network filesystem ({fstype});"
                " SQLite WAL needs one host's shared memory - put the file on a local disk"
                " or use a postgresql:// registry"
            )
        connection = self._connection()
        try:
            mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise RegistryError(f"cannot open {url}: SQLite refused WAL mode (journal_mode is {mode})")
            if not _schema_ready(connection):
                connection.executescript(SCHEMA)
        except sqlite3.Error as error:
            raise RegistryError(f"cannot open {url}: {error}") from None

    def _connect(self) -> Any:
        try:
            connection = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            # NORMAL in WAL mode: a commit is atomic and survives a process crash; only an
            # OS crash can lose the last commits (never half of one).
            connection.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.Error as error:
            raise RegistryError(f"cannot open {self.url}: {error}") from None
        return connection

    def _begin_write(self, tx: Tx) -> None:
        tx.execute("BEGIN IMMEDIATE")

    def _begin_read(self, tx: Tx) -> None:
        # A deferred transaction: its first SELECT fixes the WAL snapshot every later one sees.
        tx.execute("BEGIN")

    def _is_retryable(self, error: BaseException) -> bool:
        return False  # IMMEDIATE writers queue at BEGIN; nothing is aborted to break a deadlock

    def data_version(self) -> int:
        """Changes whenever another connection commits: a free "anything new?" check.

        Per connection by definition, so the caller's thread must keep asking on its own.
        """
        return self._connection().execute("PRAGMA data_version").fetchone()[0]
