"""The frame every panel shares: a titled border, a body, and the collector's status line.

Panels render snapshots and raise actions; they never do I/O themselves.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar

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

    def compose(self) -> ComposeResult:
        yield from self.compose_body()
        yield Static("waiting for first collection…", id="status", classes="panel-status -waiting")

    def compose_body(self) -> ComposeResult:
        """The panel's own widgets, above the status line."""
        yield from ()

    def on_mount(self) -> None:
        self.set_interval(1.0, self.update_status)
        if self.snapshot is not None:
            self.show_snapshot(self.snapshot)

    def show_snapshot(self, snapshot: Snapshot[Any]) -> None:
        """Take a new snapshot from the collector; called on the event loop."""
        self.snapshot = snapshot
        if self.is_mounted:
            self.update_status()
            self.render_snapshot(snapshot)

    def render_snapshot(self, snapshot: Snapshot[Any]) -> None:
        """Subclasses redraw their body from the snapshot's value here."""

    def update_status(self) -> None:
        """Re-word the status line; ages move every second even when nothing else does."""
        if self.snapshot is None:
            return
        status = self.query_one("#status", Static)
        status.update(status_text(self.snapshot, self.clock()))
        kind = status_kind(self.snapshot)
        for name in STATUS_KINDS:
            status.set_class(name == kind, f"-{name}")
