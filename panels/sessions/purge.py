"""The small choice before a purge: how old a finished session must be to go."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

#: (label, seconds) offered for "purge sessions unchanged for at least …".
AGES: tuple[tuple[str, float], ...] = (
    ("1 hour", 3600.0),
    ("1 day", 86400.0),
    ("7 days", 7 * 86400.0),
    ("30 days", 30 * 86400.0),
    ("1 minute (tidy up a demo or a test run)", 60.0),
)


class PurgeAgeScreen(ModalScreen[float | None]):
    """Dismisses with the chosen age in seconds, or None when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "cancel", "Cancel", id="sessions.purge_cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="purge-age", classes="dialog"):
            yield Label("Purge finished sessions unchanged for at least…", id="purge-age-title")
            yield OptionList(*(Option(label, id=str(seconds)) for label, seconds in AGES), id="purge-ages")
            yield Label("Enter choose · Esc cancel · the next step shows the plan", id="purge-age-hint")

    def on_mount(self) -> None:
        self.query_one(OptionList).highlighted = 0

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(float(event.option.id or 0))

    def action_cancel(self) -> None:
        self.dismiss(None)
