"""A panel whose body is a summary area, one VirtualTable and a `/` filter bar.

Subclasses say which columns they have and how a snapshot's value becomes rows;
the rows are built in a worker thread (a value with 100,000 sessions never builds
its rows on the event loop), one build at a time, the newest snapshot that arrived
meanwhile next (older ones are never built). A table
whose last build took under INLINE_BUILD_S builds on the loop instead: the thread's
round trip would cost more, and its rows would land in a screen update of their own
instead of the tick's (console.pacing).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any, ClassVar

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType

from backends.collector import Snapshot
from backends.rows import Row, RowSet
from panels.base import Panel
from panels.filter_bar import FilterBar
from panels.table import Column, VirtualTable


#: A build measured quicker than this runs on the loop next time.
INLINE_BUILD_S = 0.002


class TablePanel(Panel):
    """Subclass contract: ``columns()``, ``rows_of(value)``; optionally ``compose_summary()``,
    ``render_summary(value)`` and ``open_detail(row)``."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "start_filter", "Filter", tooltip="Filter the rows by text (Esc clears)", id="table.filter"),
        Binding("o", "sort_next", "Sort", tooltip="Sort by the next column (then unsorted)", id="table.sort"),
        Binding("O", "sort_reverse", "Reverse", tooltip="Reverse the sort order", show=False, id="table.reverse"),
    ]

    # -- what subclasses provide -----------------------------------------------------

    def columns(self) -> list[Column]:
        raise NotImplementedError

    def rows_of(self, value: Any) -> Iterable[Row]:
        """The table's rows for a snapshot value, in display order. Runs in a worker thread:
        it must only read ``value`` (and immutable state of the panel), never widgets."""
        raise NotImplementedError

    def build_rows(self, value: Any) -> RowSet:
        """The RowSet for a value; runs in a worker thread, one at a time. A panel that can
        update the rows it built last (from a value that says what changed) overrides this."""
        return RowSet.build(self.rows_of(value))

    def compose_summary(self) -> ComposeResult:
        """Widgets above the table (totals, bars, sparklines)."""
        yield from ()

    def render_summary(self, value: Any) -> None:
        """Update the summary widgets from a new value (on the loop: keep it cheap)."""

    def open_detail(self, row: Row) -> None:
        """Enter on a row; panels push their detail screen here."""

    # -- the frame -------------------------------------------------------------------

    def compose_body(self) -> ComposeResult:
        yield from self.compose_summary()
        yield VirtualTable(self.columns(), id="table", classes="panel-body")
        bar = FilterBar()
        bar.display = False
        yield bar

    @property
    def table(self) -> VirtualTable:
        return self.query_one("#table", VirtualTable)

    @property
    def selected_row(self) -> Row | None:
        """The row under the cursor; actions take its key, never a screen position."""
        return self.table.selected if self.is_mounted else None

    def on_focus(self, event: events.Focus) -> None:
        """Focusing the panel (1-4, Tab) puts the keys on its table."""
        self.table.focus()

    #: How long the last build of the rows took (None: not built yet, so not known to be quick).
    _build_s: float | None = None
    #: A build runs in a thread; the newest value that arrived meanwhile waits for it.
    _building = False
    _waiting: Any = None

    def render_snapshot(self, snapshot: Snapshot[Any]) -> None:
        self.render_summary(snapshot.value)
        if snapshot.value is None:
            return
        if self._build_s is not None and self._build_s < INLINE_BUILD_S:
            self.workers.cancel_group(self, "rows")  # an older build must not land after this one
            self._waiting, self._building = None, False
            self.table.show_rows(self._build_rows(snapshot.value))
            return
        if self._building:
            self._waiting = snapshot.value  # built when the running build ends; an older waiting one is dropped
            return
        self._building = True
        self.run_worker(self._show_rows_of(snapshot.value), group="rows")

    def _build_rows(self, value: Any) -> RowSet:
        started = time.perf_counter()
        rows = self.build_rows(value)
        self._build_s = time.perf_counter() - started
        return rows

    async def _show_rows_of(self, value: Any) -> None:
        """One build at a time: a thread cannot be stopped, so superseding a running build
        (as an exclusive worker does) left it running beside the next; under a churning
        100,000-session registry three such builds shared the CPU and none finished soon."""
        try:
            while value is not None:
                rows = await asyncio.to_thread(self._build_rows, value)
                if self.is_mounted:
                    self.table.show_rows(rows)
                value, self._waiting = self._waiting, None
        finally:
            self._building = False

    # -- keys ------------------------------------------------------------------------

    def action_start_filter(self) -> None:
        self.query_one(FilterBar).reveal()

    def on_input_changed(self, event: FilterBar.Changed) -> None:
        event.stop()
        self.table.filter(event.value)

    def on_filter_bar_done(self, event: FilterBar.Done) -> None:
        event.stop()
        self.table.focus()

    def action_sort_next(self) -> None:
        """Cycle the sort through the columns, then back to the panel's own order."""
        current, count = self.table.view.sort_column, len(self.table.columns)
        following = 0 if current is None else current + 1
        self.table.sort_by(following if following < count else None, descending=self.table.view.descending)

    def action_sort_reverse(self) -> None:
        view = self.table.view
        self.table.sort_by(0 if view.sort_column is None else view.sort_column, descending=not view.descending)

    def on_virtual_table_row_chosen(self, event: VirtualTable.RowChosen) -> None:
        event.stop()
        self.open_detail(event.row)
