"""The PCAP file index: every capture file, newest, oldest or largest first, paged.

It opens at once. The index is built by a backend walk in a worker thread while the
screen shows how far it got; until it is complete the view says "building", never
"no files".
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static

from backends.human import human_bytes, local_time
from backends.pcap import IndexProgress, PcapSettings, build_index
from backends.rows import Row, RowSet
from panels.detail import DetailScreen
from panels.table import Column, VirtualTable

PATH, SIZE, MTIME = 0, 1, 2


class FileIndexScreen(DetailScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "order(2, True)", "Newest", id="pcap.index.newest"),
        Binding("o", "order(2, False)", "Oldest", id="pcap.index.oldest"),
        Binding("l", "order(1, True)", "Largest", id="pcap.index.largest"),
    ]

    def __init__(self, settings: PcapSettings) -> None:
        super().__init__(f"Capture files under {settings.root}")
        self.settings = settings
        self.progress = IndexProgress()
        self.order = "newest first"

    def compose_content(self) -> ComposeResult:
        yield Static("building the index…", id="pcap-index-state", markup=False)
        yield VirtualTable(
            [Column("Path", flex=True, max_width=120), Column("Size", numeric=True, format=human_bytes),
             Column("Modified", format=local_time, min_width=16)],
            id="pcap-index-table",
        )

    def on_mount(self) -> None:
        super().on_mount()
        self._poll = self.set_interval(0.2, self.show_progress)
        self.query_one(VirtualTable).focus()

    def load(self) -> RowSet:
        files = build_index(self.settings, self.progress)
        files.sort(key=lambda f: f[MTIME], reverse=True)
        return RowSet.build(Row(path, (path, size, mtime)) for path, size, mtime in files)

    def show_progress(self) -> None:
        state = self.progress.read()
        if state.done:
            return
        self.say("")
        self.query_one("#pcap-index-state", Static).update(
            f"building the index… {state.files:,} files in {state.dirs:,} directories so far"
        )

    def show_loaded(self, data: Any) -> None:
        self._poll.stop()
        rows: RowSet = data
        state = self.progress.read()
        table = self.query_one(VirtualTable)
        table.show_rows(rows)  # already newest first
        if state.error is not None:
            self.query_one("#pcap-index-state", Static).update(f"index failed: {state.error}")
        elif not len(rows):
            self.query_one("#pcap-index-state", Static).update("no capture files under the root")
        else:
            self.show_count()

    def show_count(self) -> None:
        rows = len(self.query_one(VirtualTable).rows)
        self.query_one("#pcap-index-state", Static).update(
            f"{rows:,} files · {self.order} · n newest, o oldest, l largest, PgUp/PgDn pages"
        )

    def action_order(self, column: int, descending: bool) -> None:
        self.order = {(MTIME, True): "newest first", (MTIME, False): "oldest first", (SIZE, True): "largest first"}[
            (column, descending)
        ]
        self.query_one(VirtualTable).sort_by(column, descending=descending)

    def on_virtual_table_view_ready(self, event: VirtualTable.ViewReady) -> None:
        """A new order starts at its first file (not wherever the old cursor row landed)."""
        event.table.move_cursor(0)
        if self.progress.read().done and len(event.table.rows):
            self.show_count()
