"""The Sessions panel's actions: stop or expire one session, purge old finished ones.

The plan reads the registry fresh; execution needs no separate re-check because every
registry write carries its own state precondition: a session that completed after the
plan was shown is refused by the database, and the outcome says so. Expire, which any
state but expired allows, is made conditional on the state the plan showed; purge
deletes only the sessions the plan listed.
"""

from __future__ import annotations

import threading
from collections import Counter

from backends.actions import Outcome, Plan, Progress
from backends.sessions.model import (
    PURGEABLE,
    Event,
    RegistryError,
    Session,
    SessionState,
    Tombstone,
    is_legal,
)
from backends.sessions.registry import Registry, default_actor

PURGE_LISTED = 8


def _actor() -> str:
    return f"opsconsole {default_actor()}"


def _describe(session: Session) -> str:
    who = f" by {session.owner}" if session.owner else ""
    return f"{session.id} ({session.label or 'no label'}{who}) is {session.state}"


class _SessionMove:
    """Move one session to ``target`` (stopped or expired)."""

    panel = "sessions"
    name: str
    target: SessionState
    verb: str

    def __init__(self, url: str, session_id: str) -> None:
        self.url = url
        self.session_id = session_id

    def plan(self) -> Plan:
        with Registry.open(self.url) as registry:
            found = registry.get(self.session_id)
        if found is None or isinstance(found, Tombstone):
            gone = "was purged" if found is not None else "does not exist"
            return Plan(self.name, self.session_id, f"session {self.session_id} {gone}: nothing to {self.verb}", nothing_to_do=True)
        if not is_legal(found.state, self.target):
            return Plan(
                self.name, self.session_id,
                f"session {self.session_id} is {found.state}: it cannot be {self.target}", nothing_to_do=True,
            )
        return Plan(
            self.name, self.session_id, f"{self.verb.capitalize()} session {self.session_id}?",
            lines=(_describe(found), f"it becomes {self.target}; the event is recorded with your name"),
            audit={"session": self.session_id, "state": str(found.state), "registry": self.url},
            payload=found.state,
        )

    def _act(self, registry: Registry, planned: SessionState) -> Event:
        """The move, with the registry's precondition as the re-check at the moment of acting."""
        return getattr(registry, self.verb)(self.session_id)  # type: ignore[no-any-return]

    def execute(self, plan: Plan, progress: Progress, cancelled: threading.Event) -> Outcome:
        with Registry.open(self.url, actor=_actor()) as registry:
            try:
                event = self._act(registry, plan.payload)
            except RegistryError as error:
                return Outcome(False, f"not done: {error}", {"result": "refused"})
        return Outcome(True, f"session {self.session_id} {self.target}", {"result": str(self.target), "seq": event.seq})


class StopSession(_SessionMove):
    name = "sessions.stop"
    target = SessionState.STOPPED
    verb = "stop"


class ExpireSession(_SessionMove):
    name = "sessions.expire"
    target = SessionState.EXPIRED
    verb = "expire"

    def _act(self, registry: Registry, planned: SessionState) -> Event:
        # Any state but expired may expire, so the plan's state is the precondition: a
        # session that completed after an operator chose to expire it while active stays.
        return registry.expire(self.session_id, expect=planned)


def format_duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{seconds:g} s"


class PurgeSessions:
    """Delete finished sessions not changed for ``older_than_s``; each leaves a tombstone."""

    name = "sessions.purge"
    panel = "sessions"

    def __init__(self, url: str, older_than_s: float, states: frozenset[SessionState] = PURGEABLE) -> None:
        self.url = url
        self.older_than_s = older_than_s
        self.states = states

    def plan(self) -> Plan:
        age = format_duration(self.older_than_s)
        with Registry.open(self.url) as registry:
            candidates = registry.purge_candidates(self.older_than_s, states=self.states)
        target = f"older than {age}"
        if not candidates:
            return Plan(self.name, target, f"no finished session is older than {age}: nothing to purge", nothing_to_do=True)
        by_state = Counter(str(state) for _, state in candidates)
        listed = [f"{sid} ({state})" for sid, state in candidates[:PURGE_LISTED]]
        more = len(candidates) - len(listed)
        return Plan(
            self.name, target,
            f"Purge {len(candidates)} session(s) unchanged for {age}?",
            lines=(
                ", ".join(f"{count} {state}" for state, count in sorted(by_state.items())),
                *listed,
                *([f"… and {more} more"] if more else []),
                "active sessions are never purged; each purged session keeps a tombstone",
                "sessions that change before the purge runs are left alone",
            ),
            audit={"older_than_s": self.older_than_s, "count": len(candidates), "by_state": dict(by_state), "registry": self.url},
            payload=tuple(sid for sid, _ in candidates),
        )

    def execute(self, plan: Plan, progress: Progress, cancelled: threading.Event) -> Outcome:
        """Purge what the plan listed, no more: each still finished and unchanged for the age."""
        planned: tuple[str, ...] = plan.payload
        with Registry.open(self.url, actor=_actor()) as registry:
            events = registry.purge(self.older_than_s, states=self.states, ids=planned)
        message = f"purged {len(events)} session(s)"
        if len(events) < len(planned):
            changed = len(planned) - len(events)
            message = f"purged {len(events)} of {len(planned)} session(s); {changed} changed since the plan and stayed"
        return Outcome(True, message, {"result": "purged", "count": len(events), "planned": len(planned)})
