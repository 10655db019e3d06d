"""The session registry library: ``from backends.sessions import Registry``.

``Registry.open("sqlite:////var/lib/app/sessions.db")`` or ``Registry.open("postgresql://…")``;
see README "Registry library".
"""

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
from backends.sessions.registry import AsyncRegistry, Registry

__all__ = [
    "ALLOWED_FROM", "PURGEABLE", "STATES", "AsyncRegistry", "Changes", "Event", "EventKind",
    "IllegalTransition", "Registry", "RegistryError", "RegistrySnapshot", "Session",
    "SessionExists", "SessionState", "Tombstone", "UnknownSession",
]
