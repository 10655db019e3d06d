"""The help screen: every binding of the app and of every panel, as currently mapped."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

HelpSection = tuple[str, Sequence[tuple[str, str]]]


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close", id="help.close")]

    def __init__(self, sections: Sequence[HelpSection]) -> None:
        super().__init__(classes="dialog-screen")
        self.sections = sections

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(justify="right", style="bold", no_wrap=True)
        table.add_column()
        for title, rows in self.sections:
            table.add_row("", f"[b u]{title}[/]")
            for keys, description in rows:
                table.add_row(keys, description)
            table.add_row("", "")
        with Vertical(id="dialog", classes="dialog -help"):
            yield Label("Keys", id="dialog-title")
            with VerticalScroll(id="help-body"):
                yield Static(table)
            yield Label("Esc, q or ? closes", id="dialog-hint")

    def action_close(self) -> None:
        self.dismiss(None)
