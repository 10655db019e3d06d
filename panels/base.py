"""The frame every panel shares: a titled border, a body, and the collector's status line.

Panels render snapshots and raise actions; they never do I/O themselves.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar

from rich.text import Text
from textual.actions import parse
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static

from backends.actions import Action
from backends.catalog import PanelSpec
from backends.collector import Snapshot
from panels.status import status_kind, status_text

STATUS_KINDS = ("ok", "refreshing", "stale", "waiting")


def show_text(static: Static, text: str | Text, *, layout: bool = False) -> bool:
    """Put ``text`` in ``static`` only if it differs from what is there; True if it did.

    ``layout=False`` (the default) is for lines whose size CSS fixes: a new text repaints
    the line without laying the screen out again.
    """
    if static.content == text:
        return False
    static.update(text, layout=layout)
    return True


class Panel(Widget, can_focus=True):
    """One of the four panels; subclasses add a body, bindings, and actions."""

    BINDINGS: ClassVar[list[BindingType]] = []

    class ActionRequested(Message):
        """A panel asks the app to run an action through the action protocol."""

        def __init__(self, action: Action) -> None:
            super().__init__()
            self.action = action

    def __init__(self, spec: PanelSpec, number: int, clock: Callable[[], float] = time.time) -> None:
        super().__init__(id=f"panel-{spec.name}", classes="panel")
        self.spec = spec
        self.number = number
        self.clock = clock
        self.snapshot: Snapshot[Any] | None = None
        self.border_title = f"{number} {spec.title}"
        #: Whether the panel is on screen; the main screen says (hidden tab, zoom, a modal on top).
        self.shown = True
        #: A snapshot arrived while hidden and is drawn when the panel is shown again.
        self._behind = False
        self._availability: tuple[bool | None, ...] | None = None
        self._rendered_value: object = None

    def compose(self) -> ComposeResult:
        yield from self.compose_body()
        yield Static("waiting for first collection…", id="status", classes="panel-status -waiting")

    def compose_body(self) -> ComposeResult:
        """The panel's own widgets, above the status line."""
        yield from ()

    def on_mount(self) -> None:
        if self.snapshot is not None:
            self.show_snapshot(self.snapshot)

    def show_snapshot(self, snapshot: Snapshot[Any]) -> None:
        """Take a new snapshot from the collector; called on the event loop.

        A hidden panel only keeps it: drawing what nobody sees costs the loop and the
        terminal, and the panel draws the newest snapshot when it is shown.
        """
        self.snapshot = snapshot
        if not (self.is_mounted and self.shown):
            self._behind = True
            return
        self._behind = False
        self.update_status()
        if snapshot.refreshing and snapshot.value is self._rendered_value:
            return  # a collection started: only the status line has news
        self._rendered_value = snapshot.value
        self.render_snapshot(snapshot)

    def set_shown(self, shown: bool) -> None:
        """Told by the screen whether the panel is visible; catches up when it becomes so."""
        self.shown = shown
        if shown and self._behind and self.snapshot is not None:
            self.show_snapshot(self.snapshot)

    def render_snapshot(self, snapshot: Snapshot[Any]) -> None:
        """Subclasses redraw their body from the snapshot's value here."""

    def tick(self) -> None:
        """Each second, from the screen's one tick (console.pacing): the ages move."""
        if self.is_mounted:
            self.update_status()

    def update_status(self) -> None:
        """Re-word the status line; ages move every second even when nothing else does."""
        if self.snapshot is None or not self.shown:
            return
        status = self.query_one("#status", Static)
        show_text(status, status_text(self.snapshot, self.clock()))
        kind = status_kind(self.snapshot)
        for name in STATUS_KINDS:
            status.set_class(name == kind, f"-{name}")

    def refresh_bindings_if_changed(self) -> None:
        """Refresh the footer's keys only when one of this panel's actions changed availability.

        ``refresh_bindings()`` makes every footer re-check every binding of the focus
        chain; called per snapshot it was most of an idle console's work.
        """
        availability = tuple(
            self.check_action(name, parameters)
            for bindings in self._bindings.key_to_bindings.values()
            for binding in bindings
            for _, name, parameters in [parse(binding.action)]
        )
        if availability != self._availability:
            self._availability = availability
            self.refresh_bindings()
