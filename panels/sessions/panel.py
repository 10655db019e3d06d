"""The Sessions panel: every session of the registry, live, with a colour and a count per state.

`f` cycles a state filter, `/` filters by text and `o`/`O` sort (from TablePanel); Enter
opens the session's history. `s` stops an active session, `x` expires one, `P` purges old
finished sessions: all three through the confirm dialog and the audit log. An HTTP
source is read-only, so there the actions are greyed out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar
from urllib.parse import urlsplit

from textual import on
from textual.binding import Binding, BindingType

from backends.rows import Row, RowSet
from backends.sessions import (
    STATES,
    ExpireSession,
    PurgeSessions,
    Session,
    SessionState,
    SessionsView,
    StopSession,
)
from panels.sessions.detail import SessionDetailScreen
from panels.sessions.purge import PurgeAgeScreen
from panels.sessions.style import STATE_STYLES
from panels.status import format_age
from panels.table import Column, VirtualTable
from panels.table_panel import TablePanel

#: Where session_row puts the state.
STATE_COLUMN = 3
#: What `f` steps through: every state, then no filter.
FILTER_CYCLE: tuple[SessionState | None, ...] = (*STATES, None)


def _percent(value: Any) -> str:
    return f"{value:.0%}"


def _since(timestamp: float | None) -> float | None:
    """A row keeps the moment, not the age, so that a row changes only when its session
    does (ages move on screen every second; 100,000 rows rebuilt for it took a core).
    Negated, it sorts as the age does: youngest first."""
    return -timestamp if timestamp else None


def _state_style(value: Any) -> str | None:
    return STATE_STYLES.get(value)


def session_row(session: Session) -> Row:
    return Row(
        session.id,
        (session.id, session.label, session.owner, session.state, session.progress,
         _since(session.created_at), _since(session.last_access_at)),
    )


@dataclass(frozen=True, slots=True)
class BuiltRows:
    """The last rows built, with what they were built from: the next view updates them."""

    view: SessionsView
    state_filter: SessionState | None
    rows: RowSet
    #: When the newest session among the rows was created (0: no rows).
    newest: float


def built_rows(view: SessionsView, state_filter: SessionState | None) -> BuiltRows:
    """All the rows of a view (newest first), built anew."""
    sessions = [s for s in view.sessions if state_filter is None or s.state is state_filter]
    newest = sessions[0].created_at if sessions else 0.0
    return BuiltRows(view, state_filter, RowSet.build(map(session_row, sessions)), newest)


def updated_rows(built: BuiltRows, view: SessionsView) -> BuiltRows | None:
    """The rows of ``view`` from the rows built for an earlier view, or None when they must
    be built anew: what changed is not known, or a session would not go at the top (the
    rows are newest first, and a session older than the newest row came back into the
    state filter)."""
    changed = view.changed_since(built.view)
    if changed is None:
        return None
    wanted = built.state_filter
    upserts: list[Row] = []
    removed: list[str] = []
    new: list[Session] = []
    for session_id in changed:
        session = view.by_id.get(session_id)
        if session is None or (wanted is not None and session.state is not wanted):
            removed.append(session_id)
        elif built.rows.position(session_id) is not None:
            upserts.append(session_row(session))
        elif session.created_at < built.newest:
            return None
        else:
            new.append(session)
    if not (upserts or removed or new):
        return replace(built, view=view)
    new.sort(key=lambda session: session.created_at, reverse=True)
    rows = built.rows.updated([*map(session_row, new), *upserts], removed, at_start=True)
    return BuiltRows(view, wanted, rows, new[0].created_at if new else built.newest)


def title_counts(counts: dict[str, int], state_filter: SessionState | None) -> str:
    """``3 active · 40 completed …`` in the states' colours; the filtered state underlined."""
    parts = []
    for state in STATES:
        style = STATE_STYLES[state] + (" underline" if state is state_filter else "")
        parts.append(f"[{style}]{counts.get(state, 0)} {state}[/]")
    return " · ".join(parts)


class SessionsPanel(TablePanel):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "cycle_state", "State", tooltip="Show one state only (cycles; then all)", id="sessions.filter_state"),
        Binding("s", "stop_session", "Stop", tooltip="Stop the selected active session", id="sessions.stop"),
        Binding("x", "expire_session", "Expire", tooltip="Expire the selected session", id="sessions.expire"),
        Binding("P", "purge", "Purge", tooltip="Purge finished sessions older than a chosen age", id="sessions.purge"),
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.state_filter: SessionState | None = None
        self._value: SessionsView | None = None
        #: The value before the current one: the rows on screen may still be from it.
        self._previous: SessionsView | None = None
        #: Written by the one row build running at a time (TablePanel), read by the next.
        self._built: BuiltRows | None = None
        self._title = ""

    def on_mount(self) -> None:
        """Draw a snapshot that arrived while mounting (Textual also runs Panel.on_mount).

        Panel.show_snapshot skips rendering until mounted, and a fast first collection can
        land in that window; with a long interval nothing would redraw it for a while.
        """
        self.call_after_refresh(self._render_current)

    def _render_current(self) -> None:
        if self.snapshot is not None:
            self.render_snapshot(self.snapshot)

    def tick(self) -> None:
        """The ages move even while the registry is quiet: the lines whose age text moved."""
        super().tick()
        if self.is_mounted and self.shown:
            self.table.repaint_moved_lines()

    def columns(self) -> list[Column]:
        return [
            Column("id", max_width=24),
            Column("label", flex=True, max_width=24),
            Column("owner", max_width=10),
            Column("state", format=str, style=_state_style, max_width=9),
            Column("progress", numeric=True, format=_percent, max_width=8),
            Column("age", numeric=True, format=self._age, max_width=5),
            Column("last access", numeric=True, format=self._age, max_width=11),
        ]

    def _age(self, since: float | None) -> str:
        """An age cell: what _since keeps, read against the clock when the line is drawn."""
        return "" if since is None else format_age(self.clock() + since)

    def build_rows(self, value: SessionsView) -> RowSet:
        """Update the rows built last with what changed since, else build them all."""
        built, wanted = self._built, self.state_filter
        fresh = updated_rows(built, value) if built is not None and built.state_filter is wanted else None
        self._built = fresh or built_rows(value, wanted)
        return self._built.rows

    def render_summary(self, value: SessionsView | None) -> None:
        if value is None:
            return
        if value is not self._value:
            self._previous, self._value = self._value, value
        # The filter first: a narrow panel cuts the title's end, never what the table hides.
        shown = f"[reverse]only {self.state_filter}[/]  " if self.state_filter else ""
        title = f"{self.number} {self.spec.title}  {shown}{title_counts(dict(value.counts), self.state_filter)}"
        if title != self._title:
            self._title = self.border_title = title
        self.refresh_bindings_if_changed()

    @property
    def writable(self) -> bool:
        """Actions need a registry; an HTTP source is only read."""
        return self._value is not None and urlsplit(self._value.source).scheme not in ("http", "https")

    @property
    def selected_session(self) -> Session | None:
        row = self.selected_row
        return None if row is None else self.session_of(row.key)  # type: ignore[arg-type]

    def session_of(self, session_id: str) -> Session | None:
        """The session of a row: from the current value, else from the previous one (the rows
        on screen may be from it still, and Enter on a session purged a moment ago opens its
        tombstone instead of nothing)."""
        for value in (self._value, self._previous):
            found = None if value is None else value.by_id.get(session_id)
            if found is not None:
                return found
        return None

    @on(VirtualTable.CursorMoved)
    def _cursor_moved(self) -> None:
        self.refresh_bindings_if_changed()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action not in ("stop_session", "expire_session", "purge"):
            return True
        if not self.writable:
            return None
        row = self.selected_row  # its state column, not a lookup: this runs on every cursor move
        state = None if row is None else row.values[STATE_COLUMN]
        if action == "stop_session":
            return True if state is SessionState.ACTIVE else None
        if action == "expire_session":
            return True if state is not None and state is not SessionState.EXPIRED else None
        return True

    # -- keys ------------------------------------------------------------------------

    def action_cycle_state(self) -> None:
        self.state_filter = FILTER_CYCLE[(FILTER_CYCLE.index(self.state_filter) + 1) % len(FILTER_CYCLE)]
        self._render_current()

    def action_stop_session(self) -> None:
        session = self.selected_session
        if session is not None and self._value is not None:
            self.post_message(self.ActionRequested(StopSession(self._value.source, session.id)))

    def action_expire_session(self) -> None:
        session = self.selected_session
        if session is not None and self._value is not None:
            self.post_message(self.ActionRequested(ExpireSession(self._value.source, session.id)))

    def action_purge(self) -> None:
        if self._value is None:
            return
        source = self._value.source

        def chosen(age: float | None) -> None:
            if age is not None:
                self.post_message(self.ActionRequested(PurgeSessions(source, age)))

        self.app.push_screen(PurgeAgeScreen(), chosen)

    def open_detail(self, row: Row) -> None:
        session = self.session_of(row.key)  # type: ignore[arg-type]
        if session is not None and self._value is not None:
            self.app.push_screen(SessionDetailScreen(session, self._value.source))
