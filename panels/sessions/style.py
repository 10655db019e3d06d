"""One colour per session state, shared by the table, the title counts and the detail view."""

from __future__ import annotations

from backends.sessions import SessionState

#: The state word is always shown too, so NO_COLOR loses nothing.
STATE_STYLES: dict[SessionState, str] = {
    SessionState.ACTIVE: "bold green",
    SessionState.COMPLETED: "cyan",
    SessionState.STOPPED: "yellow",
    SessionState.FAILED: "bold red",
    SessionState.EXPIRED: "#808080",  # a name both Rich and Textual markup know (Textual has no bright_black)
}
