"""panels.table.VirtualTable through a real Textual app (Pilot): what is on screen, the cursor,
sorting and filtering off the loop, messages, keys, mouse, NO_COLOR and column layout."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from typing import Any

import pytest
from rich.color import Color
from textual import events
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.pilot import Pilot
from textual.strip import Strip

import panels.table as table_module
from backends.rows import EMPTY, Cancelled, Row, RowSet, View, sort_key
from panels.table import Column, VirtualTable, relocate

MILLION = 1_000_000
SIZE = (80, 24)
#: The table fills the 24-line screen: one header line, 23 row lines (no horizontal
#: scrollbar: the test columns fit in 80 cells).
PAGE = SIZE[1] - 1
STATES = ("active", "failed", "completed")


def state_style(value: Any) -> str | None:
    return "bold red" if value == "failed" else None


def columns() -> list[Column]:
    return [Column("id", numeric=True), Column("name"), Column("state", style=state_style)]


def row(index: int, name: str | None = None) -> Row:
    return Row(f"k{index}", (index, name if name is not None else f"name-{index}", STATES[index % 3]))


def rowset(indexes: Iterator[int] | range | list[int]) -> RowSet:
    return RowSet.build(row(index) for index in indexes)


@pytest.fixture(scope="module")
def million() -> RowSet:
    return rowset(range(MILLION))


class TableApp(App[None]):
    """One focused VirtualTable, recording the messages it posts."""

    def __init__(self, rows: RowSet | None = None, cols: Sequence[Column] | None = None) -> None:
        super().__init__()
        self._initial = rows
        self._columns = list(cols) if cols is not None else columns()
        self.moved: list[Row | None] = []
        self.chosen: list[Row] = []
        self.ready: list[View] = []

    def compose(self) -> ComposeResult:
        yield VirtualTable(self._columns, id="table")

    def on_mount(self) -> None:
        self.table.focus()
        if self._initial is not None:
            self.table.show_rows(self._initial)

    @property
    def table(self) -> VirtualTable:
        return self.query_one(VirtualTable)

    def on_virtual_table_cursor_moved(self, message: VirtualTable.CursorMoved) -> None:
        self.moved.append(message.row)

    def on_virtual_table_row_chosen(self, message: VirtualTable.RowChosen) -> None:
        self.chosen.append(message.row)

    def on_virtual_table_view_ready(self, message: VirtualTable.ViewReady) -> None:
        self.ready.append(message.view)


# -- helpers -------------------------------------------------------------------------------


def strips(table: VirtualTable) -> list[Strip]:
    """The table's lines as the screen gets them (through the app's line filters)."""
    return table.render_lines(Region(0, 0, table.size.width, table.size.height))


def lines(table: VirtualTable) -> list[str]:
    return [strip.text for strip in strips(table)]


def shown_ids(table: VirtualTable) -> list[int]:
    """The id column of every row line on screen, top to bottom."""
    return [int(line.split()[0].replace(",", "")) for line in lines(table)[1:] if line.strip()]


def screen_line_of(table: VirtualTable, name: str) -> int | None:
    for y, line in enumerate(lines(table)):
        if y and name in line.split():
            return y
    return None


def reference_sorted(rows: Sequence[Row], column: int, descending: bool = False) -> list[Row]:
    return sorted(rows, key=lambda item: sort_key(item.values[column]), reverse=descending)


def reference_filtered(rows: Sequence[Row], text: str) -> list[Row]:
    needle = text.casefold()
    return [item for item in rows if any(needle in ("" if v is None else str(v)).casefold() for v in item.values)]


async def wait_for(pilot: Pilot[Any], condition: Callable[[], bool], what: str, polls: int = 600) -> None:
    """Bounded poll: yield to the app until ``condition`` holds (not a timing assertion)."""
    for _ in range(polls):
        await pilot.pause(0.05)
        if condition():
            return
    raise AssertionError(f"timed out waiting for {what}")


async def wait_view(pilot: Pilot[Any], app: TableApp) -> None:
    """Wait until the table's current view has been computed and is on screen."""
    await wait_for(
        pilot, lambda: not app.table.computing and app.ready and app.ready[-1] == app.table.view, "ViewReady"
    )
    await pilot.pause()


# -- 1. a million rows: first screen at once, End, cost follows the screen ------------------


@pytest.mark.parametrize("when", ["after_mount", "in_on_mount"])
async def test_million_rows_first_screen_header_and_end(million: RowSet, when: str) -> None:
    app = TableApp(million if when == "in_on_mount" else None)
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        if when == "after_mount":
            table.show_rows(million)
        await pilot.pause()
        screen = lines(table)
        assert screen[0].split() == ["id", "name", "state"], screen[0]
        assert shown_ids(table) == list(range(PAGE)), screen
        assert screen[1].split() == ["0", "name-0", "active"]
        assert table.selected_key == "k0"
        assert table.selected == million.rows[0]

        await pilot.press("end")
        await pilot.pause()
        screen = lines(table)
        assert screen[0].split() == ["id", "name", "state"], "the header stays put"
        assert shown_ids(table) == list(range(MILLION - PAGE, MILLION)), screen
        assert screen[-1].split() == ["999,999", "name-999999", "active"]
        assert table.cursor == MILLION - 1
        assert table.selected_key == "k999999"
        assert table.selected == million.rows[-1]


class CountingRows(Sequence[Row]):
    """A million rows made on demand, counting how many the table reads."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.reads = 0

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: Any) -> Any:  # type: ignore[override]
        if isinstance(index, slice):
            found = [row(i) for i in range(*index.indices(self.count))]
            self.reads += len(found)
            return found
        if index < 0:
            index += self.count
        if not 0 <= index < self.count:
            raise IndexError(index)
        self.reads += 1
        return row(index)

    def __iter__(self) -> Iterator[Row]:
        raise AssertionError("the table iterated over every row")


class KeyPositions(Mapping[Hashable, int]):
    def __init__(self, count: int) -> None:
        self.count = count

    def __getitem__(self, key: Hashable) -> int:
        if isinstance(key, str) and key.startswith("k") and 0 <= int(key[1:]) < self.count:
            return int(key[1:])
        raise KeyError(key)

    def __iter__(self) -> Iterator[Hashable]:
        raise AssertionError("the table iterated over every key")

    def __len__(self) -> int:
        return self.count


async def test_swap_and_scroll_read_only_the_visible_rows() -> None:
    data = CountingRows(MILLION)
    app = TableApp()
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        table.show_rows(RowSet(data, KeyPositions(MILLION)))
        await pilot.pause()
        assert shown_ids(table) == list(range(PAGE))
        await pilot.press("end", "pageup", "up")
        await pilot.pause()
        assert table.selected_key == f"k{MILLION - 1 - PAGE - 1}"
        table.show_rows(RowSet(data, KeyPositions(MILLION)))
        await pilot.pause()
        assert table.selected_key == f"k{MILLION - 1 - PAGE - 1}"
        assert len(shown_ids(table)) == PAGE
    # Rows read: a few screens' worth, whatever the total.
    assert data.reads < 50 * PAGE, f"the table read {data.reads} rows of {MILLION}"


# -- 2. the cursor keeps its row and its screen line across a swap -------------------------


@pytest.mark.parametrize(("start", "inserted"), [(500, 37), (3, 37), (0, 1), (999, 250)])
async def test_cursor_keeps_row_and_screen_line_when_rows_are_inserted_above(start: int, inserted: int) -> None:
    source = rowset(range(1000))
    app = TableApp(source)
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await pilot.pause()
        await pilot.press("home")
        table.move_cursor(start)
        await pilot.pause()
        assert table.selected_key == f"k{start}"
        line = table.cursor - int(table.scroll_y)
        before = lines(table)
        y = screen_line_of(table, f"name-{start}")
        assert y == line + 1
        moved = len(app.moved)

        new = RowSet.build([row(-1 - i) for i in range(inserted)] + list(source.rows))
        table.show_rows(new)
        await pilot.pause()
        assert table.selected_key == f"k{start}"
        assert table.cursor == start + inserted
        assert table.cursor - int(table.scroll_y) == line, "the cursor row moved on screen"
        assert screen_line_of(table, f"name-{start}") == y
        assert lines(table) == before, "rows inserted above the screen must not change what is shown"
        assert len(app.moved) == moved, "same row under the cursor: no CursorMoved"


async def test_cursor_keeps_screen_line_when_rows_are_inserted_on_screen_above_it() -> None:
    source = rowset(range(1000))
    app = TableApp(source)
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await pilot.pause()
        table.move_cursor(300)
        table.move_cursor(290)
        await pilot.pause()
        line = table.cursor - int(table.scroll_y)
        top = int(table.scroll_y)
        assert 0 < line < PAGE - 5
        ids = list(range(1000))
        ids[288:288] = [-1, -2, -3]  # three new rows just above the cursor, on screen
        table.show_rows(RowSet.build(row(i) for i in ids))
        await pilot.pause()
        assert table.selected_key == "k290"
        assert table.cursor - int(table.scroll_y) == line
        assert screen_line_of(table, "name-290") == line + 1
        assert int(table.scroll_y) == top + 3


# -- 2b. incremental updates (RowSet.updated): cursor, screen, scrollbar --------------------


def cursor_lines(table: VirtualTable) -> list[int]:
    """Screen lines drawn in reverse video (the cursor row's mark)."""
    return [
        y for y, strip in enumerate(strips(table)) if y and any(s.style is not None and s.style.reverse for s in strip)
    ]


def assert_screen_shows(table: VirtualTable, expected: Sequence[Row]) -> None:
    """Every row line on screen is the expected row at that position, and only the cursor
    row is marked: a line repainted too little (or not at all) shows here."""
    top = int(table.scroll_y)
    screen = lines(table)[1:]
    for offset, line in enumerate(screen):
        index = top + offset
        if index < len(expected):
            values = expected[index].values
            assert line.split()[:2] == [f"{values[0]:,}", values[1]], f"screen line {offset + 1}"
        else:
            assert not line.strip()
    assert cursor_lines(table) == [table.cursor - top + 1]


async def test_incremental_updates_keep_the_cursor_row_and_its_screen_line() -> None:
    source = rowset(range(2000))
    app = TableApp(source)
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await pilot.pause()
        table.move_cursor(1000)
        table.move_cursor(990)
        await pilot.pause()
        line, moved = table.cursor - int(table.scroll_y), len(app.moved)
        # Rows above (off screen and on screen) removed, the cursor row and a neighbour
        # changed, rows added at the end: the cursor stays on its row and its screen line.
        updated = source.updated(
            [row(990, "renamed"), row(993, "also-renamed"), row(5000), row(5001)],
            removed=[f"k{index}" for index in (*range(10, 20), 985, 986)],
        )
        table.show_rows(updated)
        await pilot.pause()
        assert table.selected_key == "k990"
        assert table.cursor == 990 - 12
        assert table.cursor - int(table.scroll_y) == line
        assert len(app.moved) == moved, "same row under the cursor: no CursorMoved"
        assert_screen_shows(table, list(updated.rows))
        assert screen_line_of(table, "renamed") == line + 1
        # The cursor's own row removed: its neighbour takes the place.
        gone = updated.updated(removed=["k990"])
        table.show_rows(gone)
        await pilot.pause()
        assert table.selected_key == "k991"
        assert table.cursor - int(table.scroll_y) == line
        assert app.moved[-1] is not None and app.moved[-1].key == "k991"
        assert_screen_shows(table, list(gone.rows))


async def test_screen_matches_the_rows_after_many_small_updates() -> None:
    """Updates that change rows on screen, off screen, or nothing visible; add and remove rows
    above the screen: after each, every line shows its row (only changed lines are repainted)."""
    source = rowset(range(3000))
    app = TableApp(source)
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await pilot.pause()
        table.move_cursor(1500)
        await pilot.pause()
        current, added = source, 10_000
        for step in range(12):
            top = int(table.scroll_y)
            visible = [current.rows[top + offset].values[0] for offset in (0, 5, PAGE - 1)]
            upserts = [row(index, f"v{step}-{index}") for index in visible[: step % 4]]
            upserts += [row(added + step), row(7 * step, f"far-{step}")]
            removed = [current.rows[step].key] if step % 3 == 0 else []
            current = current.updated(upserts, removed)
            table.show_rows(current)
            await pilot.pause()
            if step % 5 == 4:
                await pilot.press("down")
            assert_screen_shows(table, list(current.rows))


async def test_updates_that_change_the_row_count_move_the_scrollbar_and_end() -> None:
    source = rowset(range(500))
    app = TableApp(source)
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await pilot.pause()
        grown = source.updated([row(index) for index in range(1000, 1300)])
        table.show_rows(grown)
        await pilot.pause()
        assert table.virtual_size.height == 801
        assert table.vertical_scrollbar.window_virtual_size == 801
        await pilot.press("end")
        await pilot.pause()
        assert table.selected_key == "k1299"
        assert_screen_shows(table, list(grown.rows))
        shrunk = grown.updated(removed=[f"k{index}" for index in range(1000, 1300)])
        table.show_rows(shrunk)
        await pilot.pause()
        assert table.selected_key == "k499", "the cursor's row vanished: the nearest survivor"
        assert table.vertical_scrollbar.window_virtual_size == 501
        assert_screen_shows(table, list(shrunk.rows))


# -- 3. the cursor's row vanishes ----------------------------------------------------------


async def test_vanished_row_moves_cursor_to_next_row() -> None:
    app = TableApp(rowset(range(100)))
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await pilot.pause()
        table.move_cursor(50)
        await pilot.pause()
        line = table.cursor - int(table.scroll_y)
        table.show_rows(rowset([i for i in range(100) if i != 50]))
        await pilot.pause()
        assert table.selected_key == "k51", "the next row takes the vanished row's place"
        assert table.cursor - int(table.scroll_y) == line
        assert app.moved[-1] is not None and app.moved[-1].key == "k51", "CursorMoved carries the new row"
        assert screen_line_of(table, "name-51") == line + 1


async def test_vanished_last_row_moves_cursor_to_previous_row() -> None:
    app = TableApp(rowset(range(100)))
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await pilot.pause()
        await pilot.press("end")
        assert table.selected_key == "k99"
        table.show_rows(rowset(range(99)))
        await pilot.pause()
        assert table.selected_key == "k98"
        assert table.cursor == 98
        assert lines(table)[-1].split()[1] == "name-98", "the new last row is on screen"
        assert app.moved[-1] is not None and app.moved[-1].key == "k98"


async def test_vanished_small_block_moves_cursor_to_a_neighbour_of_the_block() -> None:
    app = TableApp(rowset(range(100)))
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await pilot.pause()
        table.move_cursor(50)
        table.show_rows(rowset([i for i in range(100) if not 48 <= i <= 53]))
        await pilot.pause()
        assert table.selected_key in {"k47", "k54"}


async def test_vanished_large_block_moves_cursor_to_a_neighbour_of_the_block() -> None:
    # e.g. purging thousands of expired sessions while sorted by state: the block is contiguous.
    app = TableApp(rowset(range(1000)))
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await pilot.pause()
        table.move_cursor(500)
        table.show_rows(rowset([i for i in range(1000) if not 300 <= i <= 799]))
        await pilot.pause()
        assert table.selected_key in {"k299", "k800"}, f"cursor jumped to {table.selected_key}"
        assert screen_line_of(table, f"name-{str(table.selected_key)[1:]}") is not None


def test_relocate_finds_neighbours_of_any_block() -> None:
    old = rowset(range(10_000))
    for start, stop, cursor in [(300, 800, 500), (0, 6000, 10), (4000, 10_000, 9999), (100, 9000, 8999)]:
        new = rowset([i for i in range(10_000) if not start <= i < stop])
        position = relocate(old, cursor, new)
        expected = {f"k{start - 1}", f"k{stop}"} - {"k-1", "k10000"}
        assert new.rows[position].key in expected, (start, stop, cursor, new.rows[position].key)
    assert relocate(old, 5, EMPTY) == 0
    assert relocate(EMPTY, 0, old) == 0


async def test_empty_rowset_then_rows_again() -> None:
    app = TableApp(rowset(range(100)))
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await pilot.pause()
        table.move_cursor(40)
        await pilot.pause()
        table.show_rows(EMPTY)
        await pilot.pause()
        assert table.selected is None
        assert table.selected_key is None
        assert app.moved[-1] is None, "CursorMoved(None) when the table empties"
        screen = lines(table)
        assert screen[0].split() == ["id", "name", "state"]
        assert all(not line.strip() for line in screen[1:]), screen
        await pilot.press("down", "end", "enter")
        assert app.chosen == []
        assert table.selected is None

        table.show_rows(rowset(range(10, 60)))
        await pilot.pause()
        assert table.selected_key == "k10"
        assert table.cursor == 0
        assert int(table.scroll_y) == 0
        assert shown_ids(table) == list(range(10, 10 + PAGE))
        assert app.moved[-1] is not None and app.moved[-1].key == "k10"


# -- 4. sort and filter through the widget ------------------------------------------------


def mixed_rows(count: int) -> RowSet:
    return RowSet.build(
        Row(f"k{i}", ((i * 7919) % 500, f"Name-{(i * 31) % 1000}", STATES[i % 3])) for i in range(count)
    )


async def test_sort_by_and_filter_match_sorted_and_list_comprehension() -> None:
    source = mixed_rows(25_007)
    app = TableApp(source)
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await pilot.pause()

        table.sort_by(0)
        await wait_view(pilot, app)
        assert table.view == View(sort_column=0)
        assert list(table.rows.rows) == reference_sorted(source.rows, 0)
        assert lines(table)[0].split()[:3] == ["id", "▲", "name"]
        assert [int(line.split()[0]) for line in lines(table)[1:]] == [r.values[0] for r in table.rows.rows[:PAGE]]

        table.sort_by(1, descending=True)
        await wait_view(pilot, app)
        assert list(table.rows.rows) == reference_sorted(source.rows, 1, descending=True)
        assert lines(table)[0].split() == ["id", "name", "▼", "state"]

        table.sort_by(None)
        table.filter("NAME-12")
        await wait_view(pilot, app)
        assert table.view == View(filter_text="NAME-12")
        expected = reference_filtered(source.rows, "name-12")
        assert expected and len(expected) < len(source)
        assert list(table.rows.rows) == expected
        assert lines(table)[0].split() == ["id", "name", "state"], "no arrow without a sort"
        assert all("name-12" in line.casefold() for line in lines(table)[1:] if line.strip())

        table.sort_by(2)
        await wait_view(pilot, app)
        assert list(table.rows.rows) == reference_sorted(expected, 2)

        ready = len(app.ready)
        table.sort_by(None)
        table.filter("")
        await pilot.pause()
        assert table.view.identity
        assert list(table.rows.rows) == list(source.rows), "clearing restores source order"
        assert not table.computing
        assert len(app.ready) == ready


async def test_second_request_supersedes_a_pending_sort(million: RowSet) -> None:
    app = TableApp(million)
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await pilot.pause()
        table.sort_by(1, descending=True)
        table.filter("name-99999")
        await wait_view(pilot, app)
        final = View(sort_column=1, descending=True, filter_text="name-99999")
        assert table.view == final
        assert app.ready == [final], "only the final view is announced"
        assert list(table.rows.rows) == reference_sorted(reference_filtered(million.rows, "name-99999"), 1, True)
        assert shown_ids(table)[:2] == [999_999, 999_998]


@pytest.mark.parametrize("first_sort", ["stops", "finishes_anyway"])
async def test_second_request_cancels_a_running_sort_on_a_million_rows(
    million: RowSet, monkeypatch: pytest.MonkeyPatch, first_sort: str
) -> None:
    """The first sort is held mid-run in its worker thread until the second request arrives.
    It then either stops with Cancelled (the real sort) or, as if it had just finished when
    the cancel came, returns rows anyway: in both cases those rows never reach the screen."""
    real_apply_view = table_module.apply_view
    started = threading.Event()
    outcomes: list[str] = []

    def apply_view(source: Sequence[Row], view: View, cancelled: threading.Event | None = None) -> RowSet:
        if not started.is_set():
            started.set()
            assert cancelled is not None and cancelled.wait(30), "the first sort was never superseded"
            if first_sort == "finishes_anyway":
                outcomes.append("returned")
                return RowSet.build(reversed(source))
            try:
                real_apply_view(source, view, cancelled)
            except Cancelled:
                outcomes.append("cancelled")
                raise
            outcomes.append("finished")
            raise AssertionError("a superseded sort ran to the end")
        outcomes.append("second")
        return real_apply_view(source, view, cancelled)

    monkeypatch.setattr(table_module, "apply_view", apply_view)
    app = TableApp(million)
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await pilot.pause()
        table.sort_by(0)
        await wait_for(pilot, started.is_set, "the first sort to start in its thread")
        assert table.computing
        table.set_view(View(filter_text="name-12345"))
        await wait_view(pilot, app)
        await wait_for(pilot, lambda: len(outcomes) == 2, "the first sort to stop")
        await pilot.pause(0.2)
        expected_first = "returned" if first_sort == "finishes_anyway" else "cancelled"
        assert sorted(outcomes) == sorted(["second", expected_first]), outcomes
        assert table.view == View(filter_text="name-12345")
        assert app.ready == [View(filter_text="name-12345")], "only the final view is announced"
        assert list(table.rows.rows) == reference_filtered(million.rows, "name-12345")


# -- 5. new data while a sort is set ------------------------------------------------------


async def test_show_rows_while_sorted_resorts_new_data_off_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    real_apply_view = table_module.apply_view
    threads: list[threading.Thread] = []

    def apply_view(source: Sequence[Row], view: View, cancelled: threading.Event | None = None) -> RowSet:
        threads.append(threading.current_thread())
        return real_apply_view(source, view, cancelled)

    monkeypatch.setattr(table_module, "apply_view", apply_view)
    first = mixed_rows(5000)
    app = TableApp(first)
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await pilot.pause()
        table.sort_by(0, descending=True)
        await wait_view(pilot, app)
        table.move_cursor(7)
        await pilot.pause()
        key = table.selected_key

        second = RowSet.build(
            [Row(f"n{i}", (i % 13, f"new-{i}", "failed")) for i in range(12_000)] + list(first.rows[::2])
        )
        ready = len(app.ready)
        table.show_rows(second)
        await wait_for(pilot, lambda: len(app.ready) > ready and not table.computing, "the re-sort")
        await pilot.pause()
        assert app.ready[-1] == View(sort_column=0, descending=True)
        assert list(table.rows.rows) == reference_sorted(second.rows, 0, descending=True)
        assert threads and all(thread is not threading.main_thread() for thread in threads), (
            "sorting ran on the event loop's thread"
        )
        if table.rows.position(key) is not None:
            assert table.selected_key == key


# -- 6. keys, messages and the mouse -------------------------------------------------------


async def test_keys_move_the_cursor_and_post_cursor_moved() -> None:
    source = rowset(range(200))
    app = TableApp(source)
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await pilot.pause()
        assert table.has_focus

        async def press(key: str, expected: int) -> None:
            await pilot.press(key)
            await pilot.pause()
            assert table.cursor == expected, f"{key}: cursor {table.cursor}, expected {expected}"
            assert table.selected_key == f"k{expected}"
            assert screen_line_of(table, f"name-{expected}") == expected - int(table.scroll_y) + 1, (
                f"{key}: the cursor row is not on screen"
            )

        await press("down", 1)
        assert app.moved[-1] == table.selected
        await press("down", 2)
        await press("up", 1)
        await press("up", 0)
        count = len(app.moved)
        await press("up", 0)
        assert len(app.moved) == count, "no CursorMoved when the cursor did not move"
        await press("pagedown", PAGE)
        assert int(table.scroll_y) == 1, "page down puts the cursor on the last visible line"
        assert app.moved[-1] is not None and app.moved[-1].key == f"k{PAGE}"
        await press("pagedown", 2 * PAGE)
        await press("pageup", PAGE)
        await press("end", 199)
        assert shown_ids(table)[-1] == 199
        await press("down", 199)
        await press("pageup", 199 - PAGE)
        await press("home", 0)
        assert int(table.scroll_y) == 0
        assert app.moved[-1] is not None and app.moved[-1].key == "k0"
        assert [r.key for r in app.moved if r is not None][-2:] == [f"k{199 - PAGE}", "k0"]
        for message_row in app.moved:
            assert message_row is not None and message_row == source.rows[int(str(message_row.key)[1:])]


async def test_enter_posts_row_chosen_with_the_selected_row() -> None:
    source = rowset(range(50))
    app = TableApp(source)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("down", "down", "down", "enter")
        await pilot.pause()
        assert app.chosen == [source.rows[3]]
        await pilot.press("end", "enter")
        await pilot.pause()
        assert app.chosen == [source.rows[3], source.rows[49]]


async def test_click_moves_the_cursor_to_the_clicked_row() -> None:
    app = TableApp(rowset(range(500)))
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await pilot.pause()
        assert await pilot.click(VirtualTable, offset=(5, 4))
        await pilot.pause()
        assert table.selected_key == "k3", "line 4 is the 4th row below the header"
        assert app.moved[-1] is not None and app.moved[-1].key == "k3"
        assert await pilot.click(VirtualTable, offset=(5, 0))
        await pilot.pause()
        assert table.selected_key == "k3", "clicking the header does not move the cursor"

        await pilot.press("end")
        await pilot.pause()
        top = int(table.scroll_y)
        assert await pilot.click(VirtualTable, offset=(20, 1))
        await pilot.pause()
        assert table.selected_key == f"k{top}"
        assert int(table.scroll_y) == top, "clicking a visible row does not scroll"


async def test_mouse_wheel_scrolls_without_moving_the_cursor() -> None:
    app = TableApp(rowset(range(500)))
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await pilot.pause()
        for _ in range(3):  # the wheel, as the terminal reports it, over the table
            app.post_message(events.MouseScrollDown(None, 10, 5, 0, 1, 0, False, False, False, screen_x=10, screen_y=5))
        await wait_for(pilot, lambda: int(table.scroll_y) > 0 and not table.is_scrolling, "the wheel to scroll")
        await pilot.pause(0.3)
        top = int(table.scroll_y)
        assert top > 0
        assert shown_ids(table) == list(range(top, top + PAGE))
        assert table.selected_key == "k0"
        await pilot.press("down")
        await pilot.pause()
        assert table.selected_key == "k1"
        assert int(table.scroll_y) == 1, "moving the cursor brings it back on screen"


# -- 7. NO_COLOR: the cursor row is reverse video ------------------------------------------


@pytest.mark.parametrize("focused", [True, False])
async def test_no_color_cursor_row_is_reverse_video(monkeypatch: pytest.MonkeyPatch, focused: bool) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = TableApp(rowset(range(100)))
    async with app.run_test(size=SIZE) as pilot:
        assert app.no_color
        table = app.table
        await pilot.pause()
        if not focused:
            app.set_focus(None)
        table.move_cursor(5)
        await pilot.pause()
        rendered = strips(table)
        cursor_y = table.cursor - int(table.scroll_y) + 1
        assert rendered[cursor_y].text.split()[1] == "name-5"
        cursor_cells = [segment for segment in rendered[cursor_y] if segment.text.strip()]
        assert cursor_cells and all(segment.style is not None and segment.style.reverse for segment in cursor_cells), (
            "every cell of the cursor row is reverse video"
        )
        for y, strip in enumerate(rendered[1:], start=1):
            if y == cursor_y:
                continue
            assert not any(segment.style is not None and segment.style.reverse for segment in strip), (
                f"line {y} is not the cursor row but is reverse video"
            )
        # The app's NO_COLOR filter ran on these lines: whatever colour is left is grey (or the
        # terminal default), so only reverse video marks the cursor row.
        for strip in rendered:
            for segment in strip:
                for color in (segment.style.color, segment.style.bgcolor) if segment.style else ():
                    if color is not None and not color.is_default:
                        red, green, blue = color.get_truecolor()
                        assert red == green == blue, f"colour left on screen under NO_COLOR: {color}"


# -- 8. cell styles, alignment, widths -----------------------------------------------------


def style_at(strip: Strip, x: int) -> Any:
    """The style of the cell at column ``x`` of a rendered line, however segments are split."""
    start = 0
    for segment in strip:
        if start <= x < start + len(segment.text):
            return segment.style
        start += len(segment.text)
    raise IndexError(x)


async def test_cell_style_function_is_applied() -> None:
    app = TableApp(rowset(range(30)))
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await pilot.pause()
        table.move_cursor(29)
        await pilot.pause()
        for y in (1, 2, 3):  # rows 0 (active), 1 (failed), 2 (completed)
            strip = table.render_line(y)
            text = strip.text
            state_word = next(word for word in text.split() if word in STATES)
            style = style_at(strip, text.index(state_word))
            name = style_at(strip, text.index("name-"))
            assert style is not None and name is not None
            if state_word == "failed":
                assert style.color == Color.parse("red") and style.bold
                assert name.color != Color.parse("red"), "the style is per cell"
            else:
                assert style.color != Color.parse("red")


async def test_numeric_columns_are_right_aligned() -> None:
    source = RowSet.build(row(value) for value in [0, 7, 42, 999, 1000, 123_456, 5])
    app = TableApp(source)
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await pilot.pause()
        screen = lines(table)
        header_end = screen[0].index("id") + len("id")
        name_start = screen[0].index("name")
        for line, item in zip(screen[1:], source.rows):
            text = f"{item.values[0]:,}"
            assert line.lstrip().startswith(text + " ")
            end = line.index(text) + len(text)
            assert end == header_end, f"{line!r}: number does not end at the column edge"
            assert line.index(f"name-{item.values[0]}") == name_start, "text columns are left-aligned"


async def test_widths_grow_with_visible_content_only(million: RowSet) -> None:
    long = "a-very-long-name-at-the-end-of-a-million-rows"
    assert len(long) < Column("name").max_width
    data = list(million.rows)
    data[-1] = Row(data[-1].key, (data[-1].values[0], long, data[-1].values[2]))
    app = TableApp(RowSet(tuple(data), million.positions))
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await pilot.pause()
        state_x = lines(table)[0].index("state")
        assert state_x < len(long), "the name column is as wide as what is on screen"
        await pilot.press("pagedown", "pagedown")
        await pilot.pause()
        assert lines(table)[0].index("state") == state_x
        await pilot.press("end")
        await pilot.pause()
        screen = lines(table)
        assert long in screen[-1].split(), "the long value is shown in full once visible"
        assert screen[0].index("state") >= screen[0].index("name") + len(long) + 1
        assert screen[-1].index("active") == screen[0].index("state"), "cells stay under their header"


async def test_swap_does_not_widen_columns_for_rows_not_shown() -> None:
    long = "x" * 40
    source = rowset(range(100))
    app = TableApp(source)
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await pilot.pause()
        state_x = lines(table)[0].index("state")
        # A long row appears above the cursor's row; the cursor (row k0, top line) keeps its
        # screen line, so the new row is scrolled off above and never shown.
        table.show_rows(RowSet.build([row(-1, long), *source.rows]))
        await pilot.pause()
        assert table.selected_key == "k0"
        assert int(table.scroll_y) == 1
        assert all(long not in line for line in lines(table))
        assert lines(table)[0].index("state") == state_x, "a row that is not on screen widened a column"


async def test_flex_column_gives_way_to_the_vertical_scrollbar() -> None:
    """Rows arriving after mount bring a vertical scrollbar, which takes columns without a
    resize: the flex column must shrink so that no horizontal scrollbar appears."""
    cols = [Column("id", numeric=True), Column("name", flex=True), Column("state")]
    app = TableApp(cols=cols)
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await pilot.pause()
        assert not table.show_vertical_scrollbar
        table.show_rows(rowset(range(500)))
        await pilot.pause()
        await pilot.pause()
        assert table.show_vertical_scrollbar
        assert table.virtual_size.width == table.scrollable_content_region.width == SIZE[0] - 2
        assert not table.show_horizontal_scrollbar
        assert len(lines(table)) == PAGE + 1, "every row line is visible: no scrollbar row below"


# -- 9. selection API ------------------------------------------------------------------------


async def test_selection_on_an_empty_table_is_none() -> None:
    app = TableApp()
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await pilot.pause()
        assert table.selected is None
        assert table.selected_key is None
        assert len(table.rows) == 0
        await pilot.press("down", "pagedown", "end", "home", "enter")
        await pilot.click(VirtualTable, offset=(3, 3))
        await pilot.pause()
        assert table.selected is None and table.selected_key is None
        assert app.chosen == [] and app.moved == []
        assert lines(table)[0].split() == ["id", "name", "state"]


async def test_selection_returns_the_key_and_values_of_the_cursor_row() -> None:
    source = rowset(range(100))
    app = TableApp(source)
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await pilot.pause()
        await pilot.press("pagedown", "down")
        selected = table.selected
        assert selected is not None
        assert selected == source.rows[PAGE + 1]
        assert table.selected_key == f"k{PAGE + 1}"
        assert selected.values == (PAGE + 1, f"name-{PAGE + 1}", STATES[(PAGE + 1) % 3])


async def test_new_values_that_read_the_same_repaint_no_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """An age of 3,600.2 s and of 3,601.2 s both read "1h": only lines whose text changed repaint."""
    cols = [Column("id"), Column("age", numeric=True, format=lambda seconds: f"{seconds // 3600:.0f}h")]

    def aged(now: float) -> RowSet:
        return RowSet.build(Row(f"k{n}", (f"k{n}", now - n)) for n in range(20))

    app = TableApp(aged(3600.0 * 5 + 100), cols)
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await pilot.pause()
        refreshed: list[Region] = []
        real_refresh = table.refresh

        def counting_refresh(*regions: Region, **kwargs: Any) -> Any:
            refreshed.extend(regions)
            return real_refresh(*regions, **kwargs)

        monkeypatch.setattr(table, "refresh", counting_refresh)
        table.show_rows(aged(3600.0 * 5 + 101))  # every value new, every text the same
        assert refreshed == []
        table.show_rows(aged(3600.0 * 6 + 5))  # rows k0-k5 now read "6h"
        assert sorted(region.y for region in refreshed) == [1, 2, 3, 4, 5, 6]
        await pilot.pause()
        assert [line.split() for line in lines(table)[1:8]] == [*([f"k{n}", "6h"] for n in range(6)), ["k6", "5h"]]
