"""The session registry: every session's state, moved only by legal transitions, in SQLite or PostgreSQL.

``Registry.open("sqlite:////var/lib/app/sessions.db")`` or ``Registry.open("postgresql://…")``
is the library an app's workers use (README "Registry library"); the console follows the
registry (follow) or an HTTP source (http_source) and acts on it (actions). DESIGN.md
"Storage". The names below are what panels/, console/ and the other resources may use.
"""

from typing import TYPE_CHECKING

from backends.face import lazy_face

if TYPE_CHECKING:
    from backends.sessions.actions import ExpireSession, PurgeSessions, StopSession
    from backends.sessions.follow import SessionsView
    from backends.sessions.lookup import SessionRecord, session_record
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
    from backends.sessions.simulate import LABELS, OWNERS, WorkerPlan, ensure_registry, run_simulation, run_worker
    from backends.sessions.source import sessions_collector

__getattr__, __dir__, __all__ = lazy_face(__name__)
