"""The base of every panel's detail view: a full-size modal with a title, a body, Esc closes.

A detail view shows what the snapshot already holds at once and fetches anything more
(event history, process trees) through ``load()`` in a worker thread, showing
"loading…" meanwhile: opening a detail view never waits on I/O.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from backends.collector import describe_error


class DetailScreen(ModalScreen[None]):
    """Subclasses override ``compose_content()``; and ``load()`` / ``show_loaded()`` to fetch more."""

    # Absolute: Textual resolves a relative CSS_PATH beside the *subclass's* module.
    CSS_PATH = str(Path(__file__).with_name("detail.tcss"))
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Close", id="detail.close"),
    ]

    def __init__(self, title: str) -> None:
        super().__init__(classes="detail-screen")
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical(id="detail"):
            yield Label(self.title_text, id="detail-title", markup=False)
            yield from self.compose_content()
            yield Static("", id="detail-message", markup=False)
            yield Label("Esc or q closes", id="detail-hint")

    def compose_content(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        self.fetch()

    def load(self) -> Any:
        """Blocking fetch of what the snapshot does not hold; runs in a thread. None: nothing to fetch."""
        return None

    def show_loaded(self, data: Any) -> None:
        """Put what ``load()`` returned on screen (on the loop)."""

    def say(self, text: str) -> None:
        """A line under the content: loading, an error, a note."""
        self.query_one("#detail-message", Static).update(text)

    @work(thread=True, exit_on_error=False, group="detail")
    def fetch(self) -> None:
        if type(self).load is DetailScreen.load:
            return
        self.app.call_from_thread(self.say, "loading…")
        try:
            data = self.load()
        except Exception as exc:  # noqa: BLE001 - shown on screen, the snapshot's data stays
            self.app.call_from_thread(self.say, f"could not load details: {describe_error(exc)}")
            return
        self.app.call_from_thread(self.say, "")
        self.app.call_from_thread(self.show_loaded, data)

    def action_close(self) -> None:
        self.dismiss(None)
