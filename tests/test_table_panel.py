"""TablePanel and DetailScreen through Pilot: rows built off the loop, filter, sort, focus, detail."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

from textual.app import App, ComposeResult
from textual.widgets import Static

from backends.catalog import PANELS_BY_NAME
from backends.collector import Snapshot
from backends.rows import Row
from console.app import panel_bindings
from panels.detail import DetailScreen
from panels.filter_bar import FilterBar
from panels.table import Column, VirtualTable
from panels.table_panel import TablePanel


class FruitDetail(DetailScreen):
    def __init__(self, row: Row, fail: bool) -> None:
        super().__init__(f"fruit {row.key}")
        self.row = row
        self.fail = fail
        self.loader_thread: int | None = None

    def compose_content(self) -> ComposeResult:
        yield Static("", id="loaded")

    def load(self) -> str:
        self.loader_thread = threading.get_ident()
        if self.fail:
            raise PermissionError("Permission denied: /proc/1/fd")
        return f"history of {self.row.key}"

    def show_loaded(self, data: Any) -> None:
        self.query_one("#loaded", Static).update(str(data))


class FruitPanel(TablePanel):
    fail_detail = False

    def __init__(self) -> None:
        super().__init__(PANELS_BY_NAME["ports"], 3, clock=time.time)
        self.row_threads: set[int] = set()
        self.detail: FruitDetail | None = None

    def columns(self) -> list[Column]:
        return [Column("Name", flex=True), Column("Count", numeric=True)]

    def rows_of(self, value: Any) -> Iterable[Row]:
        self.row_threads.add(threading.get_ident())
        return [Row(name, (name, count)) for name, count in value]

    def compose_summary(self) -> ComposeResult:
        yield Static("", id="summary")

    def render_summary(self, value: Any) -> None:
        self.query_one("#summary", Static).update(f"{len(value or ())} fruits")

    def open_detail(self, row: Row) -> None:
        self.detail = FruitDetail(row, self.fail_detail)
        self.app.push_screen(self.detail)


FRUITS = [("pear", 3), ("apple", 10), ("fig", 1), ("plum", 7)]


class PanelApp(App[None]):
    CSS_PATH = ["../panels/panel.tcss"]

    def __init__(self) -> None:
        super().__init__()
        self.panel = FruitPanel()

    def compose(self) -> ComposeResult:
        yield self.panel

    def on_mount(self) -> None:
        self.panel.focus()
        self.panel.show_snapshot(Snapshot(name="ports", value=FRUITS, taken_at=time.time(), duration_s=0.01))


def keys_on_screen(panel: FruitPanel) -> list[Any]:
    return [row.key for row in panel.table.rows.rows]


async def settle(app: App[None], pilot: Any) -> None:
    await app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.pause()


async def test_rows_are_built_in_a_worker_thread_and_shown():
    app = PanelApp()
    async with app.run_test(size=(80, 20)) as pilot:
        await settle(app, pilot)
        assert keys_on_screen(app.panel) == ["pear", "apple", "fig", "plum"]
        assert threading.main_thread().ident not in app.panel.row_threads
        assert "4 fruits" in str(app.panel.query_one("#summary", Static).render())


async def test_a_quick_build_runs_on_the_loop_and_a_slow_one_stays_in_a_thread(monkeypatch):
    """The first build is timed in a thread; measured quick, the next is built at once, on the
    loop (no thread round trip, no screen update of its own); measured slow, it stays off."""
    monkeypatch.setattr("panels.table_panel.INLINE_BUILD_S", 10.0)  # any build is quick: no timing in a test
    app = PanelApp()
    async with app.run_test(size=(80, 20)) as pilot:
        await settle(app, pilot)
        panel = app.panel
        assert threading.main_thread().ident not in panel.row_threads  # the first build: not yet timed
        panel.row_threads.clear()
        panel.show_snapshot(Snapshot(name="ports", value=[("kiwi", 2)], taken_at=time.time()))
        assert keys_on_screen(panel) == ["kiwi"]  # shown before anything was awaited
        assert panel.row_threads == {threading.main_thread().ident}
        monkeypatch.setattr("panels.table_panel.INLINE_BUILD_S", 0.0)  # no build is quick enough now
        panel.row_threads.clear()
        panel.show_snapshot(Snapshot(name="ports", value=FRUITS, taken_at=time.time()))
        assert keys_on_screen(panel) == ["kiwi"]
        await settle(app, pilot)
        assert keys_on_screen(panel) == ["pear", "apple", "fig", "plum"]
        assert threading.main_thread().ident not in panel.row_threads


async def test_one_build_at_a_time_and_only_the_newest_waiting_value_is_built(monkeypatch):
    """A thread cannot be stopped: while one build runs, newer values wait, and of those only
    the newest is built next (three builds sharing the CPU made none of them finish soon)."""
    monkeypatch.setattr("panels.table_panel.INLINE_BUILD_S", 0.0)  # every build in a thread
    app = PanelApp()
    async with app.run_test(size=(80, 20)) as pilot:
        await settle(app, pilot)
        panel = app.panel
        release = threading.Event()
        built: list[Any] = []
        rows_of = panel.rows_of

        def slow_rows_of(value: Any) -> Iterable[Row]:
            built.append(value)
            release.wait(10)
            return rows_of(value)

        panel.rows_of = slow_rows_of  # type: ignore[method-assign]
        values = [[("a", 1)], [("b", 2)], [("c", 3)], [("d", 4)]]
        for value in values:
            panel.show_snapshot(Snapshot(name="ports", value=value, taken_at=time.time()))
            await pilot.pause()
        assert built == [values[0]]  # the others wait; the first is still being built
        release.set()
        await settle(app, pilot)
        await settle(app, pilot)
        assert built == [values[0], values[3]]
        assert keys_on_screen(panel) == ["d"]


async def test_focusing_the_panel_puts_keys_on_its_table():
    app = PanelApp()
    async with app.run_test(size=(80, 20)) as pilot:
        await settle(app, pilot)
        assert isinstance(app.focused, VirtualTable)
        await pilot.press("down", "down")
        assert app.panel.selected_row is not None and app.panel.selected_row.key == "fig"


async def test_slash_filters_live_and_escape_clears():
    app = PanelApp()
    async with app.run_test(size=(80, 20)) as pilot:
        await settle(app, pilot)
        await pilot.press("slash")
        bar = app.panel.query_one(FilterBar)
        assert bar.display and app.focused is bar
        await pilot.press("u", "m")
        await settle(app, pilot)
        assert keys_on_screen(app.panel) == ["plum"]
        await pilot.press("enter")  # keeps the filter, keys back on the table
        await pilot.pause()
        assert isinstance(app.focused, VirtualTable) and bar.display
        assert keys_on_screen(app.panel) == ["plum"]
        await pilot.press("slash", "escape")
        await settle(app, pilot)
        assert not bar.display
        assert keys_on_screen(app.panel) == ["pear", "apple", "fig", "plum"]


async def test_o_cycles_sort_columns_and_capital_o_reverses():
    app = PanelApp()
    async with app.run_test(size=(80, 20)) as pilot:
        await settle(app, pilot)
        await pilot.press("o")
        await settle(app, pilot)
        assert keys_on_screen(app.panel) == sorted(name for name, _ in FRUITS)
        await pilot.press("O")
        await settle(app, pilot)
        assert keys_on_screen(app.panel) == sorted((name for name, _ in FRUITS), reverse=True)
        await pilot.press("o")  # next column, still descending
        await settle(app, pilot)
        assert keys_on_screen(app.panel) == [name for name, _ in sorted(FRUITS, key=lambda f: -f[1])]
        await pilot.press("o")  # past the last column: the panel's own order again
        await settle(app, pilot)
        assert keys_on_screen(app.panel) == ["pear", "apple", "fig", "plum"]


async def test_enter_opens_detail_that_loads_off_the_loop_and_escape_closes():
    app = PanelApp()
    async with app.run_test(size=(80, 20)) as pilot:
        await settle(app, pilot)
        await pilot.press("down", "enter")
        await settle(app, pilot)
        detail = app.panel.detail
        assert detail is not None and app.screen is detail
        assert "history of apple" in str(detail.query_one("#loaded", Static).render())
        assert detail.loader_thread not in (None, threading.main_thread().ident)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is not detail


async def test_detail_load_failure_is_one_line_on_screen_not_a_crash():
    app = PanelApp()
    app.panel.fail_detail = True
    async with app.run_test(size=(80, 20)) as pilot:
        await settle(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        message = str(app.screen.query_one("#detail-message", Static).render())
        assert message == "could not load details: Permission denied: /proc/1/fd"


def test_panel_bindings_include_the_table_panels_keys():
    keys = [binding.key for binding in panel_bindings(FruitPanel())]
    assert keys[:3] == ["slash", "o", "O"]
