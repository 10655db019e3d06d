"""The detail view of one session: its fields as listed, then (fetched) its state now and history.

A session purged since the table was drawn shows its tombstone: who removed it, when,
and what state it was in. The view never answers "not found" for a listed session.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from backends.sessions import Event, EventKind, Session, SessionRecord, Tombstone, session_record
from panels.detail import DetailScreen
from panels.sessions.style import STATE_STYLES


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp)) if timestamp else "unknown"


def session_text(session: Session, heading: str) -> Text:
    text = Text(f"{heading}\n", style="bold underline")
    text.append("  state: ").append(str(session.state), style=STATE_STYLES[session.state]).append("\n")
    for name, value in (
        ("label", session.label or "(none)"), ("owner", session.owner or "(none)"),
        ("progress", f"{session.progress:.0%}" + (f" - {session.note}" if session.note else "")),
        ("created", _when(session.created_at)), ("changed", _when(session.updated_at)),
        ("last access", _when(session.last_access_at)),
    ):
        text.append(f"  {name}: {value}\n")
    if session.error:
        text.append(f"  error: {session.error}\n", style="red")
    if session.result is not None:
        text.append(f"  result: {session.result}\n")
    if session.meta:
        text.append(f"  meta: {dict(session.meta)}\n")
    return text


def tombstone_text(stone: Tombstone) -> Text:
    text = Text("Purged\n", style="bold underline")
    text.append(
        f"  this session was purged at {_when(stone.removed_at)} by {stone.actor}\n"
        f"  it was {stone.last_state} when it was removed (event #{stone.seq})\n"
    )
    return text


def event_line(event: Event) -> Text:
    line = Text(f"  #{event.seq:<6} {_when(event.at)}  ")
    if event.kind is EventKind.START:
        line.append("started", style="green")
    elif event.kind is EventKind.PURGE:
        line.append(f"purged (was {event.from_state})", style="bold")
    elif event.kind is EventKind.TRANSITION:
        line.append(f"{event.from_state} → ")
        line.append(str(event.to_state), style=STATE_STYLES.get(event.to_state, ""))  # type: ignore[arg-type]
    else:
        line.append(str(event.kind), style="dim")
    extras = " ".join(f"{key}={value}" for key, value in event.detail.items() if key not in ("label", "owner"))
    return line.append(f"  by {event.actor}" + (f"  {extras}" if extras else "") + "\n")


def record_text(record: SessionRecord, session_id: str, source: str) -> Text:
    text = Text()
    if isinstance(record.found, Tombstone):
        text.append_text(tombstone_text(record.found))
    elif isinstance(record.found, Session):
        text.append_text(session_text(record.found, "Now"))
    elif record.history is None:
        return Text("This source (HTTP) keeps no history; the fields above are its last reply.\n", style="dim")
    else:
        return Text(f"{source} has no record of {session_id}: the registry was replaced or reset.\n", style="yellow")
    text.append("\nHistory\n", style="bold underline")
    for event in record.history or ():
        text.append_text(event_line(event))
    return text


class SessionDetailScreen(DetailScreen):
    def __init__(self, session: Session, source: str) -> None:
        super().__init__(f"Session {session.id}")
        self.session = session
        self.source = source

    def compose_content(self) -> ComposeResult:
        with VerticalScroll(id="session-detail-body"):
            yield Static(session_text(self.session, "As listed"), markup=False)
            yield Static("", id="session-detail-now", markup=False)

    def load(self) -> SessionRecord:
        return session_record(self.source, self.session.id)

    def show_loaded(self, data: SessionRecord) -> None:
        self.query_one("#session-detail-now", Static).update(record_text(data, self.session.id, self.source))
