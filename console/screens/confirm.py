"""The confirm dialog every destructive action goes through.

Cancel has the focus and Enter presses it; the Confirm button cannot take focus, so
only `y` (or a mouse click on it) confirms. Esc and `n` cancel.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from backends.actions import Plan


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("y", "confirm", "Confirm", id="confirm.yes"),
        Binding("escape,n", "cancel", "Cancel", id="confirm.cancel"),
    ]

    AUTO_FOCUS = "#cancel"

    def __init__(self, plan: Plan) -> None:
        super().__init__(classes="dialog-screen")
        self.plan = plan

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog -danger"):
            yield Label(self.plan.title, id="dialog-title")
            with VerticalScroll(id="plan"):
                yield Static("\n".join(self.plan.lines) or "(no details)", id="plan-text", markup=False)
            yield Label("y confirm · Esc cancel · Enter = Cancel", id="dialog-hint")
            with Horizontal(id="dialog-buttons"):
                yield Button("Cancel", id="cancel", variant="primary")
                confirm = Button("Confirm (y)", id="confirm", variant="error")
                confirm.can_focus = False
                yield confirm

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "confirm")

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)
