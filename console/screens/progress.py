"""The progress dialog shown while an action executes; Esc asks it to stop between steps."""

from __future__ import annotations

import threading

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, ProgressBar

from backends.actions import Plan, Progress

POLL_S = 0.1


class ProgressScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="progress.cancel")]

    def __init__(self, plan: Plan, progress: Progress, cancelled: threading.Event) -> None:
        super().__init__(classes="dialog-screen")
        self.plan = plan
        self.progress = progress
        self.cancelled = cancelled

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog"):
            yield Label(self.plan.title, id="dialog-title")
            yield ProgressBar(total=None, show_eta=False, id="bar")
            yield Label("starting…", id="counts")
            yield Label("Esc cancels between steps", id="dialog-hint")

    def on_mount(self) -> None:
        self.set_interval(POLL_S, self.poll)

    def poll(self) -> None:
        """Show the action's latest counters (it updates them from its own thread)."""
        state = self.progress.read()
        self.query_one("#bar", ProgressBar).update(total=state.total, progress=state.done)
        of_total = f"/{state.total}" if state.total is not None else ""
        counts = f"{state.done}{of_total} {state.unit}".strip()
        self.query_one("#counts", Label).update(f"{counts} · {state.note}" if state.note else counts)

    def action_cancel(self) -> None:
        self.cancelled.set()
        self.query_one("#dialog-hint", Label).update("cancelling after the current step…")
