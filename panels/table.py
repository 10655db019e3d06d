"""The one table every panel and detail view uses: it costs what is on screen.

Built on the Line API: `render_line` draws only the visible rows, so a million rows
cost the event loop no more than fifty. New data arrives as an already indexed
:class:`~backends.rows.RowSet`; swapping it in is O(visible rows). Sorting and
filtering run in a worker thread (``backends.rows``) and a newer request cancels an
older one. The cursor follows its row key across swaps, and its place on screen stays.
A swap repaints only the lines whose row changed (none, when a collector's update
touched no visible row), and a change of row count alone does not lay the screen out.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from backends.rows import EMPTY, Cancelled, Row, RowSet, View, apply_view, discard

#: How far from a vanished row the cursor looks for a surviving neighbour.
NEIGHBOUR_SEARCH = 64
SEPARATOR = " "


def format_cell(value: Any) -> str:
    """Default cell text: empty for None, thousands separators for integers."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return str(value)


@dataclass(frozen=True, slots=True)
class Column:
    """How one column looks; ``style`` maps a cell's value to a style (state colours)."""

    label: str
    numeric: bool = False
    min_width: int = 2
    max_width: int = 48
    flex: bool = False
    format: Callable[[Any], str] = format_cell
    style: Callable[[Any], str | None] | None = None


@dataclass(frozen=True, slots=True)
class _FrameStyles:
    base: Style
    header: Style
    cursor: Style


def _total(widths: Sequence[int]) -> int:
    return sum(widths) + len(SEPARATOR) * max(0, len(widths) - 1)


def relocate(old: RowSet, old_cursor: int, new: RowSet) -> int:
    """Where the cursor goes in ``new``: its own row, else its nearest surviving neighbour."""
    if not new.rows:
        return 0
    if old.rows and 0 <= old_cursor < len(old.rows):
        here = new.position(old.rows[old_cursor].key)
        if here is not None:
            return here
        for distance in range(1, NEIGHBOUR_SEARCH + 1):
            for index in (old_cursor + distance, old_cursor - distance):
                if 0 <= index < len(old.rows):
                    there = new.position(old.rows[index].key)
                    if there is not None:
                        return there
        # Farther away: the vanished rows are most often one block (a purge, a group that
        # left the filter); find its edges in O(log n) probes instead of scanning.
        edges = [edge for edge in (_edge(old, new, old_cursor, 1), _edge(old, new, old_cursor, -1)) if edge is not None]
        if edges:
            nearest = min(edges, key=lambda index: (abs(index - old_cursor), index < old_cursor))
            there = new.position(old.rows[nearest].key)
            if there is not None:
                return there
    return min(old_cursor, len(new.rows) - 1)


def _edge(old: RowSet, new: RowSet, start: int, step: int) -> int | None:
    """The index in ``old`` of the first row past ``NEIGHBOUR_SEARCH`` from ``start`` (going
    ``step``) that is still in ``new``: gallop, then bisect. Exact when the vanished rows
    around ``start`` are contiguous, a surviving row in any case."""

    def survives(distance: int) -> bool:
        return new.position(old.rows[start + step * distance].key) is not None

    room = len(old.rows) - 1 - start if step > 0 else start
    gone = NEIGHBOUR_SEARCH  # distances 1..NEIGHBOUR_SEARCH are known to have vanished
    if room <= gone:
        return None
    distance = min(room, 2 * gone)
    while not survives(distance):
        if distance == room:
            return None
        gone, distance = distance, min(room, 2 * distance)
    while distance - gone > 1:
        middle = (gone + distance) // 2
        if survives(middle):
            distance = middle
        else:
            gone = middle
    return start + step * distance


class VirtualTable(ScrollView, can_focus=True):
    """A keyed, virtualized table with a fixed header row and a cursor row."""

    DEFAULT_CSS = """
    VirtualTable { height: 1fr; }
    VirtualTable > .virtual-table--header { text-style: bold; background: $panel; }
    VirtualTable > .virtual-table--cursor { text-style: reverse; }
    VirtualTable:focus > .virtual-table--cursor { text-style: bold reverse; }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {"virtual-table--header", "virtual-table--cursor"}

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor(-1)", "Up", show=False, id="table.up"),
        Binding("down", "cursor(1)", "Down", show=False, id="table.down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="table.page_up"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="table.page_down"),
        Binding("home", "edge(0)", "First row", show=False, id="table.first"),
        Binding("end", "edge(1)", "Last row", show=False, id="table.last"),
        Binding("enter", "choose", "Open", show=False, id="table.choose"),
    ]

    class CursorMoved(Message):
        """The cursor is on a different row (by key) than before."""

        def __init__(self, table: VirtualTable, row: Row | None) -> None:
            super().__init__()
            self.table = table
            self.row = row

    class RowChosen(Message):
        """Enter on a row: the panel opens its detail view."""

        def __init__(self, table: VirtualTable, row: Row) -> None:
            super().__init__()
            self.table = table
            self.row = row

    class ViewReady(Message):
        """A sort or filter finished and its rows are on screen."""

        def __init__(self, table: VirtualTable, view: View) -> None:
            super().__init__()
            self.table = table
            self.view = view

    def __init__(self, columns: Sequence[Column], *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.columns = tuple(columns)
        self.view = View()
        self._header_view = self.view  # the view whose sort mark the header shows
        self.cursor = 0
        self._source: RowSet = EMPTY
        self._rows: RowSet = EMPTY
        self._content_widths = [len(column.label) + 2 for column in self.columns]
        self._widths = list(self._content_widths)
        self._styles: _FrameStyles | None = None
        self._job: asyncio.Task[None] | None = None
        self._job_cancel: threading.Event | None = None
        #: What each screen line showed when last painted (``_looks``), by line.
        self._painted: dict[int, tuple[object, ...]] = {}

    # -- what is shown ---------------------------------------------------------------

    @property
    def rows(self) -> RowSet:
        """The rows on screen, in display order (after the view's sort and filter)."""
        return self._rows

    @property
    def computing(self) -> bool:
        """A sort or filter is running in the background."""
        return self._job is not None and not self._job.done()

    @property
    def selected(self) -> Row | None:
        """The row under the cursor: actions act on its key, never on a screen position."""
        return self._rows.rows[self.cursor] if 0 <= self.cursor < len(self._rows.rows) else None

    @property
    def selected_key(self) -> Hashable | None:
        row = self.selected
        return None if row is None else row.key

    def show_rows(self, rows: RowSet) -> None:
        """Take new source rows; O(visible rows) on the loop unless a sort/filter is set."""
        if self._source is not self._rows:
            discard(self._source)
        self._source = rows
        if self.view.identity:
            self._cancel_job()
            self._swap(rows)
        else:
            self._start_job()

    def set_view(self, view: View) -> None:
        """Sort and filter the source rows in a worker thread; supersedes a running one."""
        self.view = view
        self._reset_widths()
        if view.identity:
            self._cancel_job()
            self._swap(self._source)
        else:
            self._start_job()

    def sort_by(self, column: int | None, *, descending: bool = False) -> None:
        self.set_view(replace(self.view, sort_column=column, descending=descending))

    def filter(self, text: str) -> None:
        self.set_view(replace(self.view, filter_text=text))

    # -- background sort and filter --------------------------------------------------

    def _cancel_job(self) -> None:
        if self._job_cancel is not None:
            self._job_cancel.set()
        if self._job is not None:
            self._job.cancel()
        self._job = self._job_cancel = None

    def _start_job(self) -> None:
        self._cancel_job()
        cancelled = threading.Event()
        self._job_cancel = cancelled
        self._job = asyncio.get_running_loop().create_task(self._compute(self._source, self.view, cancelled))

    async def _compute(self, source: RowSet, view: View, cancelled: threading.Event) -> None:
        try:
            rows = await asyncio.to_thread(apply_view, source.rows, view, cancelled)
        except Cancelled:
            return
        if not cancelled.is_set():
            self._swap(rows)
            self.post_message(self.ViewReady(self, view))

    def on_unmount(self) -> None:
        self._cancel_job()

    # -- swapping rows in, keeping the cursor ----------------------------------------

    def _swap(self, rows: RowSet) -> None:
        old_rows, old_cursor = self._rows, self.cursor
        old_key = self.selected_key
        old_top, old_widths = int(self.scroll_y), self._widths
        shown = self._visible_rows()
        cursor_line = old_cursor - old_top
        self._rows = rows
        self.cursor = relocate(old_rows, old_cursor, rows)
        self._set_row_count(len(rows.rows))
        self.scroll_to(y=max(0, self.cursor - cursor_line), animate=False, immediate=True)
        self._keep_cursor_visible()
        self._fit_widths()  # after scrolling: only the rows that will be on screen count
        if int(self.scroll_y) == old_top and self._widths == old_widths:
            self._refresh_changed_lines(shown, cursor_line)
        else:
            self.refresh()
        if self.selected_key != old_key:
            self.post_message(self.CursorMoved(self, self.selected))
        if old_rows is not self._source:
            discard(old_rows)  # freeing a million rows here would stall the loop

    def _set_row_count(self, count: int) -> None:
        """Size the scrollable area for ``count`` rows (plus the header).

        When only the row count changes and the vertical scrollbar stays as it is (the usual
        refresh of a long table), only the scrollbar is updated: assigning ``virtual_size``
        would lay the screen out again and repaint every line, as Textual does for any
        widget whose size changes (its own ``_size_updated`` takes the same shortcut).
        """
        size = Size(_total(self._widths), count + 1)
        old = self.virtual_size
        if size == old:
            return
        viewport = self.scrollable_content_region.height
        if size.width == old.width and old.height > viewport and size.height > viewport:
            self.set_reactive(VirtualTable.virtual_size, size)
            self.vertical_scrollbar.window_virtual_size = size.height
        else:
            self.virtual_size = size

    def _refresh_changed_lines(self, shown: Sequence[Row], old_cursor_line: int) -> None:
        """Repaint only the lines whose row (or cursor mark) changed; none if nothing did."""
        now = self._visible_rows()
        cursor_line = self.cursor - int(self.scroll_y)
        width = self.size.width
        if self.view != self._header_view:
            self.refresh(Region(0, 0, width, 1))
        for line in range(max(len(shown), len(now))):
            same_row = line < len(shown) and line < len(now) and self._looks(shown[line]) == self._looks(now[line])
            if not same_row or (cursor_line != old_cursor_line and line in (cursor_line, old_cursor_line)):
                self.refresh(Region(0, line + 1, width, 1))

    def _looks(self, row: Row) -> tuple[object, ...]:
        """What a row's line shows. Its values may change while this does not (an age of
        3,600.2 s and one of 3,601.2 s both read "1.0h"), and then the line needs no repaint."""
        return (row.style, *(
            (column.format(value), column.style(value) if column.style is not None else None)
            for column, value in zip(self.columns, row.values, strict=True)
        ))

    def repaint_moved_lines(self) -> None:
        """Repaint the lines whose text moved with the clock alone: a column whose format
        shows a time as an age changes on screen while its row stays the same."""
        width = self.size.width
        for line, row in enumerate(self._visible_rows(), start=1):
            painted = self._painted.get(line)
            if painted is not None and painted != self._looks(row):
                self.refresh(Region(0, line, width, 1))

    # -- layout ----------------------------------------------------------------------

    @property
    def _page(self) -> int:
        """Rows that fit below the header."""
        return max(1, self.scrollable_content_region.height - 1)

    def _visible_rows(self) -> Sequence[Row]:
        top = int(self.scroll_y)
        return self._rows.rows[top : top + self._page]

    def _fit_widths(self) -> None:
        """Grow column widths to the visible rows' content (never the whole data set)."""
        for row in self._visible_rows():
            for index, column in enumerate(self.columns):
                text_width = len(column.format(row.values[index]))
                if text_width > self._content_widths[index]:
                    self._content_widths[index] = min(column.max_width, text_width)
        widths = [
            max(width, column.min_width) for width, column in zip(self._content_widths, self.columns, strict=True)
        ]
        flex = [index for index, column in enumerate(self.columns) if column.flex]
        if flex:
            spare = self.scrollable_content_region.width - _total(widths)
            widths[flex[0]] += max(0, spare)
        self._widths = widths
        if _total(widths) != self.virtual_size.width:
            self.virtual_size = Size(_total(widths), len(self._rows.rows) + 1)  # layout: width changed

    def on_resize(self, event: events.Resize) -> None:
        self._reset_widths()

    def watch_show_vertical_scrollbar(self) -> None:
        """The scrollbar takes columns without a resize: fit the flex column again."""
        self._reset_widths()

    def _reset_widths(self) -> None:
        self._content_widths = [len(column.label) + 2 for column in self.columns]  # room for ▲/▼
        self._fit_widths()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        self._fit_widths()
        super().watch_scroll_y(old_value, new_value)

    # -- rendering -------------------------------------------------------------------

    def _resolve_styles(self) -> _FrameStyles:
        self._styles = _FrameStyles(
            self.rich_style,
            self.get_component_rich_style("virtual-table--header"),
            self.get_component_rich_style("virtual-table--cursor"),
        )
        return self._styles

    def render_lines(self, crop: Region) -> list[Strip]:
        """Resolve the styles once per frame, not once per line (they cost more than the text)."""
        self._resolve_styles()
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        scroll_x = int(self.scroll_x)
        width = self.scrollable_content_region.width
        base = (self._styles or self._resolve_styles()).base
        if y == 0:
            strip = self._header_strip()
        else:
            index = int(self.scroll_y) + y - 1
            if index >= len(self._rows.rows):
                return Strip.blank(width, base)
            strip, self._painted[y] = self._row_strip(self._rows.rows[index], index == self.cursor)
        if scroll_x == 0 and strip.cell_length == width:
            return strip  # the usual case: the columns fill the width exactly
        return strip.crop_extend(scroll_x, scroll_x + width, base)

    def _header_strip(self) -> Strip:
        style = (self._styles or self._resolve_styles()).header
        self._header_view = self.view
        cells = []
        for index, column in enumerate(self.columns):
            label = column.label
            if self.view.sort_column == index:
                label += " ▼" if self.view.descending else " ▲"
            cells.append(self._fit(label, index, column.numeric))
        return Strip([Segment(SEPARATOR.join(cells), style)])

    def _row_strip(self, row: Row, is_cursor: bool) -> tuple[Strip, tuple[object, ...]]:
        """One segment per run of cells in the line's style (a plain row is a single segment),
        and what the line shows (``_looks``), from the same formatting."""
        styles = self._styles or self._resolve_styles()
        row_base = styles.base + Style.parse(row.style) if row.style else styles.base
        cursor = styles.cursor if is_cursor else None
        line_style = row_base + cursor if cursor is not None else row_base
        segments: list[Segment] = []
        run: list[str] = []
        looks: list[object] = [row.style]
        for index, column in enumerate(self.columns):
            value = row.values[index]
            if index:
                run.append(SEPARATOR)
            formatted = column.format(value)
            cell_style = column.style(value) if column.style is not None else None
            looks.append((formatted, cell_style))
            text = self._fit(formatted, index, column.numeric)
            if not cell_style:
                run.append(text)
                continue
            if run:
                segments.append(Segment("".join(run), line_style))
                run = []
            style = row_base + Style.parse(cell_style)
            segments.append(Segment(text, style + cursor if cursor is not None else style))
        if run:
            segments.append(Segment("".join(run), line_style))
        return Strip(segments), tuple(looks)

    def _fit(self, text: str, index: int, numeric: bool) -> str:
        width = self._widths[index]
        if len(text) > width:
            text = text[: max(0, width - 1)] + "…"
        return text.rjust(width) if numeric else text.ljust(width)

    # -- moving the cursor -----------------------------------------------------------

    def move_cursor(self, index: int) -> None:
        if not self._rows.rows:
            return
        index = max(0, min(index, len(self._rows.rows) - 1))
        if index == self.cursor:
            return
        self.cursor = index
        self._keep_cursor_visible()
        self.refresh()
        self.post_message(self.CursorMoved(self, self.selected))

    def _keep_cursor_visible(self) -> None:
        top = int(self.scroll_y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + self._page:
            self.scroll_to(y=self.cursor - self._page + 1, animate=False, immediate=True)

    def action_cursor(self, step: int) -> None:
        self.move_cursor(self.cursor + step)

    def action_page(self, direction: int) -> None:
        self.move_cursor(self.cursor + direction * self._page)

    def action_edge(self, end: int) -> None:
        self.move_cursor(len(self._rows.rows) - 1 if end else 0)

    def action_choose(self) -> None:
        row = self.selected
        if row is not None:
            self.post_message(self.RowChosen(self, row))

    def on_click(self, event: events.Click) -> None:
        if event.y >= 1:
            self.move_cursor(int(self.scroll_y) + event.y - 1)
