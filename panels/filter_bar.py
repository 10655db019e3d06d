"""The `/` text filter under a panel's table: typed live, Enter keeps it, Esc clears it."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Input


class FilterBar(Input):
    """An input that is shown while filtering, or while a filter is in force."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "clear_filter", "Clear filter", show=False, id="filter.clear"),
    ]

    class Done(Message):
        """The operator left the bar (Enter keeps the filter, Esc cleared it)."""

    def __init__(self) -> None:
        super().__init__(placeholder="filter: type to narrow, Enter keeps, Esc clears", classes="filter-bar")

    def reveal(self) -> None:
        self.display = True
        self.focus()

    def action_clear_filter(self) -> None:
        self.value = ""  # posts Changed(""), which clears the table's filter
        self.display = False
        self.post_message(self.Done())

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.display = bool(self.value)
        self.post_message(self.Done())
