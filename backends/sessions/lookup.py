"""What a detail view needs beyond the snapshot: the session as of now and its history."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from backends.sessions.model import Event, Session, Tombstone
from backends.sessions.registry import Registry


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """``found`` is the session now, its tombstone, or None for an id the registry never had;
    ``history`` is None when the source keeps none (an HTTP endpoint)."""

    found: Session | Tombstone | None
    history: tuple[Event, ...] | None


def session_record(url: str, session_id: str) -> SessionRecord:
    """Read one session and its events in one transaction (blocking: run it in a thread)."""
    if urlsplit(url).scheme in ("http", "https"):
        return SessionRecord(None, None)
    with Registry.open(url) as registry:
        found, history = registry.record(session_id)
    return SessionRecord(found, tuple(history))
