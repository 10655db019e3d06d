"""The session registry's vocabulary: states, legal moves, and the immutable records it returns.

The state machine lives here, once, so the SQLite and PostgreSQL stores, the HTTP source
and the simulator all agree on what a legal move is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any


class SessionState(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    STOPPED = "stopped"  # the incident's "partial": stopped by the user
    FAILED = "failed"
    EXPIRED = "expired"


class EventKind(StrEnum):
    """What an event records; only ``start``, ``transition`` and ``purge`` change the state set."""

    START = "start"
    TRANSITION = "transition"
    PROGRESS = "progress"
    TOUCH = "touch"
    PURGE = "purge"


STATES: tuple[SessionState, ...] = tuple(SessionState)
#: States a session may be purged from (an active session is stopped or expired first).
PURGEABLE: frozenset[SessionState] = frozenset(STATES) - {SessionState.ACTIVE}

#: For each target state, the states it may be reached from. ``start`` creates ACTIVE.
ALLOWED_FROM: Mapping[SessionState, frozenset[SessionState]] = MappingProxyType(
    {
        SessionState.ACTIVE: frozenset(),
        SessionState.COMPLETED: frozenset({SessionState.ACTIVE}),
        SessionState.STOPPED: frozenset({SessionState.ACTIVE}),
        SessionState.FAILED: frozenset({SessionState.ACTIVE}),
        SessionState.EXPIRED: frozenset(STATES) - {SessionState.EXPIRED},
    }
)


def is_legal(current: SessionState, target: SessionState) -> bool:
    return current in ALLOWED_FROM[target]


class RegistryError(Exception):
    """A registry problem a user or app can act on; str() is one line."""


class UnknownSession(RegistryError):
    def __init__(self, session_id: str) -> None:
        super().__init__(f"session {session_id!r} does not exist")
        self.session_id = session_id


class SessionExists(RegistryError):
    def __init__(self, session_id: str, state: SessionState | None) -> None:
        where = f"is {state}" if state is not None else "was purged"
        super().__init__(f"session {session_id!r} already exists ({where}); ids are never reused")
        self.session_id = session_id


class IllegalTransition(RegistryError):
    """A move the state machine forbids; names the session, its state and the move."""

    def __init__(self, session_id: str, state: SessionState | None, move: str) -> None:
        now = "purged" if state is None else str(state)
        super().__init__(f"session {session_id!r} is {now}: cannot {move}")
        self.session_id = session_id
        self.state = state
        self.move = move


@dataclass(frozen=True, slots=True)
class Session:
    """One session as stored. ``meta``, ``result`` and ``error`` are filled by `get()` only;
    snapshots leave them out to stay cheap at 10,000 rows."""

    id: str
    state: SessionState
    label: str
    owner: str
    progress: float
    created_at: float
    updated_at: float
    last_access_at: float
    note: str = ""
    meta: Mapping[str, Any] | None = None
    result: Any = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """One committed change; ``seq`` orders all events of a registry (the cursor)."""

    seq: int
    session: str
    kind: EventKind
    from_state: SessionState | None
    to_state: SessionState | None
    at: float
    actor: str
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Tombstone:
    """What `get()` returns for a purged session: the purge event and who/when."""

    id: str
    last_state: SessionState
    label: str
    owner: str
    removed_at: float
    actor: str
    seq: int


@dataclass(frozen=True, slots=True)
class RegistrySnapshot:
    """Every non-purged session as of one instant, grouped by state, with the event cursor."""

    cursor: int
    taken_at: float
    by_state: Mapping[SessionState, tuple[Session, ...]]

    @property
    def counts(self) -> dict[SessionState, int]:
        return {state: len(self.by_state.get(state, ())) for state in STATES}

    def sessions(self) -> list[Session]:
        return [s for state in STATES for s in self.by_state.get(state, ())]


@dataclass(frozen=True, slots=True)
class Changes:
    """Events after a cursor plus the current row of each session they touch, read together.

    ``sessions`` maps an id to its row, or to None when it was purged. ``gap`` is True when
    more events waited than were read: the caller should re-read a full snapshot instead.
    """

    cursor: int
    events: tuple[Event, ...]
    sessions: Mapping[str, Session | None]
    gap: bool = False
