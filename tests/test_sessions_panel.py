"""The Sessions panel through Pilot, on a real SQLite registry in tmp."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import replace
from pathlib import Path

from rich.text import Text
from textual.widgets import OptionList, Static

from backends.catalog import PANEL_NAMES, PANELS
from backends.collector import CollectContext, Collector, CollectorGroup
from backends.sessions import Registry, SessionState, Tombstone
from backends.sessions.follow import RegistryFollower
from console.app import make_app
from console.audit import AuditLog
from console.config import Config, SessionsConfig
from console.screens.confirm import ConfirmScreen
from panels.placeholder import PlaceholderPanel
from panels.sessions.detail import SessionDetailScreen
from panels.sessions.panel import SessionsPanel, built_rows, updated_rows
from panels.sessions.purge import PurgeAgeScreen
from tests.conftest import HOST, CountingCollect


def sessions_app(tmp_path: Path, url: str, interval_s: float = 60.0, collect=None, clock=time.time):  # type: ignore[no-untyped-def]
    collects = {name: CountingCollect(f"{name}-value") for name in PANEL_NAMES}
    collects["sessions"] = collect or RegistryFollower(url)  # type: ignore[assignment]
    group = CollectorGroup({
        name: Collector(name, collects[name], interval_s=interval_s if name == "sessions" else 60, timeout_s=10)
        for name in PANEL_NAMES
    })
    panels = [SessionsPanel(spec, n, clock) if spec.name == "sessions" else PlaceholderPanel(spec, n)
              for n, spec in enumerate(PANELS, start=1)]
    return make_app(Config(sessions=SessionsConfig(url=url)), group, host=HOST,  # type: ignore[arg-type]
                    audit=AuditLog(tmp_path / "audit.log"), autostart=True, panels=panels)


async def until(pilot, condition, what: str) -> None:  # type: ignore[no-untyped-def]
    """Wait for ``condition`` (generously: a loaded CI machine is slow, a hang still fails)."""
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.05)


def shown(panel: SessionsPanel) -> dict[str, str]:
    """Session id -> state, as the table shows them now."""
    return {str(row.key): str(row.values[3]) for row in panel.table.rows.rows}


async def select(pilot, panel: SessionsPanel, session_id: str) -> None:  # type: ignore[no-untyped-def]
    position = panel.table.rows.position(session_id)
    assert position is not None, f"{session_id} not shown"
    panel.table.move_cursor(position)
    await pilot.pause()


def offered(app, action: str) -> bool:  # type: ignore[no-untyped-def]
    return any(binding.action == action and enabled for _, binding, enabled, _ in app.active_bindings.values())


def populate(url: str) -> None:
    with Registry.open(url, actor="app worker") as registry:
        for name, end in (("run-1", None), ("run-2", None), ("done-1", "complete"), ("halt-1", "stop"),
                          ("bad-1", "fail"), ("old-1", "expire")):
            registry.start(name, label=f"{name} label", owner="alice")
            if end == "fail":
                registry.fail(name, "boom")
            elif end:
                getattr(registry, end)(name)


async def test_rows_colours_title_counts_state_filter_and_live_transitions(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    populate(url)
    app = sessions_app(tmp_path, url, interval_s=0.1)
    async with app.run_test(size=(160, 48)) as pilot:
        panel = app.query_one(SessionsPanel)
        await until(pilot, lambda: len(shown(panel)) == 6, "six sessions")
        assert shown(panel)["done-1"] == "completed" and shown(panel)["bad-1"] == "failed"
        title = Text.from_markup(panel.border_title).plain  # type: ignore[arg-type]
        assert "2 active · 1 completed · 1 stopped · 1 failed · 1 expired" in title and "only" not in title
        assert panel.table.columns[3].style(SessionState.FAILED) == "bold red"
        await pilot.press("2", "f")
        await until(pilot, lambda: set(shown(panel)) == {"run-1", "run-2"}, "only active")
        assert Text.from_markup(panel.border_title).plain.startswith("2 Sessions  only active  2 active")  # type: ignore[arg-type]
        await pilot.press("f")
        await until(pilot, lambda: set(shown(panel)) == {"done-1"}, "only completed")
        for _ in range(4):
            await pilot.press("f")
        await until(pilot, lambda: len(shown(panel)) == 6, "the filter cycled back to all")
        # another process moves a session: the panel follows without a full re-read
        follower = app.collectors["sessions"]._collect
        with Registry.open(url) as registry:
            registry.complete("run-1")
        await until(pilot, lambda: shown(panel).get("run-1") == "completed", "the transition")
        assert follower.full_reads == 1


def test_rows_are_updated_in_place_and_equal_a_fresh_build(tmp_path):
    """A collection's few changes touch a few blocks of the rows, not 100,000 rows; the result
    is what a full build of the same view gives, newest first, with and without a state filter."""
    url = f"sqlite:///{tmp_path}/s.db"
    follower = RegistryFollower(url)
    with Registry.open(url) as registry:
        for n in range(700):  # three blocks of rows
            registry.start(f"s-{n:03}")
        view = follower(CollectContext(previous=None, force=False, deadline=time.monotonic() + 10))
        built = {wanted: built_rows(view, wanted) for wanted in (None, SessionState.ACTIVE, SessionState.COMPLETED)}
        registry.complete("s-005")
        registry.stop("s-650")
        registry.purge(0, states=["stopped"])
        registry.start("s-new-1")
        registry.start("s-new-2")
        later = follower(CollectContext(previous=view, force=False, deadline=time.monotonic() + 10))
    follower.close()
    for wanted, before in built.items():
        after = updated_rows(before, later)
        assert after is not None and after.view is later
        assert list(after.rows.rows) == list(built_rows(later, wanted).rows.rows), wanted
        if wanted is None:
            assert [row.key for row in after.rows.rows[:3]] == ["s-new-2", "s-new-1", "s-699"]
            kept = {id(block) for block in before.rows.rows._blocks}  # type: ignore[attr-defined]
            assert sum(id(block) in kept for block in after.rows.rows._blocks) >= 1  # type: ignore[attr-defined]
    # a session older than the newest row coming into the filter cannot go on top: built anew
    completed = built[SessionState.COMPLETED]
    assert updated_rows(replace(completed, newest=time.time() + 60), later) is None


async def test_ages_move_on_screen_without_a_new_snapshot_or_a_row_build(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    populate(url)
    now = [time.time()]
    app = sessions_app(tmp_path, url, clock=lambda: now[0])
    async with app.run_test(size=(160, 48)) as pilot:
        panel = app.query_one(SessionsPanel)
        await until(pilot, lambda: len(shown(panel)) == 6, "six sessions")
        await pilot.press("2")
        await pilot.pause()
        rows = panel.table.rows
        assert "2h" not in app.export_screenshot()
        now[0] += 7300
        app.tick()
        await pilot.pause()
        assert app.export_screenshot().count("2h") >= 6  # every row's age and last access
        assert panel.table.rows is rows


async def test_enter_shows_history_and_a_session_purged_meanwhile_shows_its_tombstone(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    populate(url)
    app = sessions_app(tmp_path, url)  # no refresh after the first: the table keeps what it drew
    async with app.run_test(size=(120, 40)) as pilot:
        panel = app.query_one(SessionsPanel)
        await until(pilot, lambda: len(shown(panel)) == 6, "six sessions")
        await pilot.press("2")
        await select(pilot, panel, "bad-1")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, SessionDetailScreen), "the detail view")
        now = app.screen.query_one("#session-detail-now", Static)
        await until(pilot, lambda: "History" in str(now.render()), "the history")
        text = str(now.render())
        assert "active → failed" in text and "by app worker" in text and "error: boom" in text
        await pilot.press("escape")
        with Registry.open(url, actor="cleanup job") as registry:
            registry.purge(0, states=[SessionState.EXPIRED])
        assert "old-1" in shown(panel)  # still drawn: the collector has not run since
        await select(pilot, panel, "old-1")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, SessionDetailScreen), "the detail view")
        now = app.screen.query_one("#session-detail-now", Static)
        await until(pilot, lambda: "Purged" in str(now.render()), "the tombstone")
        text = str(now.render())
        assert "purged at" in text and "by cleanup job" in text and "it was expired when it was removed" in text
        assert "not found" not in text.lower()


async def test_stop_expire_and_purge_go_through_confirm_and_audit(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    populate(url)
    app = sessions_app(tmp_path, url)
    async with app.run_test(size=(160, 48)) as pilot:
        panel = app.query_one(SessionsPanel)
        await until(pilot, lambda: len(shown(panel)) == 6, "six sessions")
        await pilot.press("2")
        await select(pilot, panel, "done-1")
        assert not offered(app, "stop_session") and offered(app, "expire_session")
        await select(pilot, panel, "old-1")
        assert not offered(app, "expire_session")
        await select(pilot, panel, "run-1")
        assert offered(app, "stop_session")
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "confirm")
        assert "run-1 (run-1 label by alice) is active" in "\n".join(app.screen.plan.lines)
        await pilot.press("y")
        await app.workers.wait_for_complete()
        await until(pilot, lambda: shown(panel).get("run-1") == "stopped", "the stop")
        await select(pilot, panel, "run-2")
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "confirm")
        await pilot.press("y")
        await app.workers.wait_for_complete()
        await until(pilot, lambda: shown(panel).get("run-2") == "expired", "the expiry")
        await pilot.press("P")
        await until(pilot, lambda: isinstance(app.screen, PurgeAgeScreen), "the age choice")
        options = app.screen.query_one(OptionList)
        assert options.highlighted == 0
        options.highlighted = options.option_count - 1  # the shortest age the dialog offers: 1 minute
        await pilot.press("enter")
        await app.workers.wait_for_complete()
    audit = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
    assert [(line["action"], line["outcome"]["result"]) for line in audit] == [
        ("sessions.stop", "stopped"), ("sessions.expire", "expired")]  # nothing is a minute old: no purge
    with Registry.open(url) as registry:
        assert registry.history("run-1")[-1].actor.startswith("opsconsole ")
        events = registry.purge(0)
    assert len(events) == 6  # stopped run-1, expired run-2 and the four finished ones remain to purge


async def test_purge_lists_the_old_finished_sessions_then_purges_them_with_tombstones(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    populate(url)
    with sqlite3.connect(tmp_path / "s.db") as db:  # the app's sessions finished two hours ago
        db.execute("UPDATE sessions SET updated_at = updated_at - 7200 WHERE id <> 'done-1'")
    app = sessions_app(tmp_path, url)
    async with app.run_test(size=(120, 40)) as pilot:
        panel = app.query_one(SessionsPanel)
        await until(pilot, lambda: len(shown(panel)) == 6, "six sessions")
        await pilot.press("2", "P")
        await until(pilot, lambda: isinstance(app.screen, PurgeAgeScreen), "the age choice")
        await pilot.press("enter")  # the first choice: 1 hour
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the purge plan")
        plan = app.screen.plan
        assert plan.title == "Purge 3 session(s) unchanged for 1 h?"
        assert plan.lines[:4] == ("1 expired, 1 failed, 1 stopped", "bad-1 (failed)", "halt-1 (stopped)", "old-1 (expired)")
        await pilot.press("y")
        await app.workers.wait_for_complete()
        # the runner refreshes the collector: the purged rows leave, the young and the active stay
        await until(pilot, lambda: set(shown(panel)) == {"run-1", "run-2", "done-1"}, "the purge")
        title = Text.from_markup(panel.border_title).plain  # type: ignore[arg-type]
        assert "2 active · 1 completed · 0 stopped · 0 failed · 0 expired" in title
    (line,) = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
    assert (line["action"], line["outcome"]["result"], line["outcome"]["count"]) == ("sessions.purge", "purged", 3)
    with Registry.open(url) as registry:
        stone = registry.get("halt-1")
        assert isinstance(stone, Tombstone) and stone.last_state is SessionState.STOPPED
        assert stone.actor.startswith("opsconsole ")


async def test_an_http_source_is_shown_read_only(tmp_path):
    import threading
    from http.server import ThreadingHTTPServer

    from backends.sessions.http_source import HttpFollower, HttpSettings
    from tests.test_sessions_http import Handler

    Handler.hits, Handler.mode = {}, {"flaky": "json"}  # another test may have left it answering HTML
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/flaky"
    try:
        app = sessions_app(tmp_path, url, collect=HttpFollower(HttpSettings(url=url)))
        async with app.run_test(size=(120, 40)) as pilot:
            panel = app.query_one(SessionsPanel)
            await until(pilot, lambda: shown(panel) == {"s-1": "active"}, "the HTTP session")
            await pilot.press("2")
            await select(pilot, panel, "s-1")
            assert not any(offered(app, action) for action in ("stop_session", "expire_session", "purge"))
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, SessionDetailScreen), "the detail view")
            now = app.screen.query_one("#session-detail-now", Static)
            await until(pilot, lambda: "keeps no history" in str(now.render()), "the note")
    finally:
        httpd.shutdown()
        httpd.server_close()
