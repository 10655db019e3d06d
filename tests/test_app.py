"""The app shell through Pilot: focus, layout, zoom, refresh, pause, help, palette, actions, quit."""

from __future__ import annotations

import asyncio
import gc
import json
import threading

from textual.widgets import Static, Tabs

from backends.catalog import PANEL_NAMES
from console.config import Config
from console.lag_overlay import LagOverlay
from console.vitals import nodes_of
from console.screens.confirm import ConfirmScreen
from console.screens.help import HelpScreen
from console.screens.progress import ProgressScreen
from panels.base import Panel
from tests.conftest import FIXED_NOW, FileAction


def displayed_panels(app) -> list[str]:
    return [panel.spec.name for panel in app.query(Panel) if panel.display and panel.region.area > 0]


async def test_number_keys_focus_each_panel(build_app):
    app = build_app()
    async with app.run_test(size=(160, 48)) as pilot:
        for number, name in zip("4213", ["locks", "sessions", "pcap", "ports"]):
            await pilot.press(number)
            await pilot.pause()
            assert app.focused is app.panels[name]
            assert app.main.active is app.panels[name]


async def test_what_the_app_built_at_start_is_kept_out_of_gc_passes_until_it_quits(build_app):
    """A full GC pass over Textual's DOM stalled the loop for tens of ms mid-scan; frozen, it is not walked."""
    app = build_app()
    async with app.run_test() as pilot:
        await pilot.pause()
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0


async def test_tab_and_shift_tab_cycle_panels(build_app):
    app = build_app()
    async with app.run_test(size=(80, 24)) as pilot:
        seen = []
        for _ in range(4):
            await pilot.press("tab")
            await pilot.pause()
            seen.append(app.main.active.spec.name)
        assert seen == ["sessions", "ports", "locks", "pcap"]
        await pilot.press("shift+tab")
        await pilot.pause()
        assert app.main.active.spec.name == "locks"
        assert app.focused is app.panels["locks"]


async def test_tab_pressed_faster_than_the_screen_settles_lands_on_the_right_panel(build_app):
    """Each focus move once echoed back through the tab bar, after the next one: two panels
    then took the focus from each other for ever (the console at 100% of a core)."""
    app = build_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        for _ in range(7):  # what Tab does, seven times before any refresh
            app.main.action_cycle(1)
        await pilot.pause(0.3)
        assert app.main.active.spec.name == PANEL_NAMES[7 % 4]
        moves = []
        app.main.set_active = lambda panel: moves.append(panel)  # type: ignore[method-assign]
        await pilot.pause(0.3)
        assert moves == [], "the focus is still moving by itself"
        assert app.focused is app.panels[PANEL_NAMES[7 % 4]]
        await pilot.click("#tab-ports")  # an operator's click on a tab still chooses its panel
        await pilot.pause()
        assert [panel.spec.name for panel in moves] == ["ports"]


async def test_grid_when_wide_tabs_when_narrow(build_app):
    app = build_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        assert sorted(displayed_panels(app)) == sorted(PANEL_NAMES)
        assert not app.main.query_one(Tabs).display
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert displayed_panels(app) == ["pcap"]
        assert app.main.query_one(Tabs).display
        await pilot.press("3")
        await pilot.pause()
        assert displayed_panels(app) == ["ports"]
        assert app.main.query_one(Tabs).active == "tab-ports"


async def test_zoom_shows_only_the_focused_panel_and_back(build_app):
    app = build_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("2", "z")
        await pilot.pause()
        assert displayed_panels(app) == ["sessions"]
        assert app.panels["sessions"].region.width == 160
        await pilot.press("z")
        await pilot.pause()
        assert len(displayed_panels(app)) == 4


async def test_r_refreshes_only_the_focused_panel_and_status_line_says_so(build_app, collects):
    app = build_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("3", "r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert [collects[name].calls for name in PANEL_NAMES] == [0, 0, 1, 0]
        status = app.panels["ports"].query_one("#status", Static)
        assert str(status.render()).startswith("updated 0s ago · ")
        assert "waiting for first collection" in str(app.panels["pcap"].query_one("#status", Static).render())


async def test_failed_collection_shows_stale_with_error(build_app, collects):
    app = build_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("1", "r")
        await app.workers.wait_for_complete()
        collects["pcap"].value = OSError("Permission denied: /var/log/pcap")
        await pilot.press("r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        status = app.panels["pcap"].query_one("#status", Static)
        assert str(status.render()).startswith("stale 0s · Permission denied: /var/log/pcap")
        assert status.has_class("-stale")


async def test_pause_stops_and_resumes_all_collectors(build_app, collects):
    app = build_app(autostart=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        await pilot.press("p")
        await pilot.pause()
        assert all(app.collectors[name].paused for name in PANEL_NAMES)
        assert app.main.query_one("#header").paused
        assert "PAUSED" in str(app.main.query_one("#header").render())
        await pilot.press("p")
        await pilot.pause()
        assert not any(app.collectors[name].paused for name in PANEL_NAMES)
        assert "PAUSED" not in str(app.main.query_one("#header").render())


async def test_help_lists_every_binding_of_every_panel(build_app):
    app = build_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        sections = dict(app.screen.sections)
        assert {"Global", "1 PCAP cache", "2 Sessions", "3 Ports", "4 Locks"} <= set(sections)
        described = {description for _, description in sections["Global"]}
        for expected in ("Focus PCAP cache", "Focus Locks", "Next panel", "Previous panel",
                         "Refresh the focused panel now", "Pause or resume all collectors",
                         "Stop the collectors and exit", "Command palette"):
            assert expected in described
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)


async def test_command_palette_offers_and_runs_actions(build_app):
    app = build_app()
    async with app.run_test(size=(80, 24)) as pilot:
        names = [name for name, _, _ in app.palette_commands()]
        assert {"Focus Locks", "Zoom", "Refresh", "Pause", "Help", "Quit"} <= set(names)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"focus locks")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert app.main.active.spec.name == "locks"


async def test_lag_overlay_toggles(build_app):
    app = build_app()
    async with app.run_test(size=(80, 24)) as pilot:
        overlay = app.main.query_one(LagOverlay)
        assert not overlay.has_class("-shown")
        await pilot.press("ctrl+d")
        await pilot.pause()
        assert overlay.has_class("-shown")
        assert str(overlay.render()).startswith("loop lag (60 s) p50 ")
        await pilot.press("ctrl+d")
        assert not overlay.has_class("-shown")


async def test_lag_log_gets_json_lines(build_app, tmp_path):
    lag_log = tmp_path / "lag.jsonl"
    app = build_app(lag_log=lag_log)
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(40):
            await pilot.pause(0.1)
            if lag_log.exists() and lag_log.read_text().count("\n") >= 1:
                break
        line = json.loads(lag_log.read_text().splitlines()[0])
        assert set(line) == {"t", "p50_ms", "p99_ms", "max_ms", "nodes", "watchers", "subscribers"}
        assert line["nodes"] == len(nodes_of(app))  # what the app holds, for bench.soak to watch from outside


async def test_quit_exits_zero_with_collectors_stopped(build_app):
    app = build_app(autostart=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0
    assert all(not thread.name.startswith("collector-") for thread in threading.enumerate())
    assert all(app.collectors[name]._loop_task is None for name in PANEL_NAMES)


async def test_read_only_refuses_and_does_nothing(build_app, tmp_path, audit_path):
    victim = tmp_path / "victim.lock"
    victim.write_text("4711\n")
    app = build_app(read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        assert "READ-ONLY" in str(app.main.query_one("#header").render())
        worker = app.perform(FileAction(victim))
        await asyncio.wait_for(worker.wait(), 10)
        await pilot.pause()
        assert worker.result.message == "read-only mode: test.delete refused"
        assert not isinstance(app.screen, ConfirmScreen)
        assert any("read-only mode: test.delete refused" in n.message for n in app._notifications)
    assert victim.read_text() == "4711\n"
    assert not audit_path.exists()


async def wait_for_confirm(app, pilot) -> ConfirmScreen:
    """Until the confirm dialog is up with its focus settled."""
    for _ in range(40):
        await pilot.pause(0.05)
        if isinstance(app.screen, ConfirmScreen) and app.screen.focused is not None:
            return app.screen
    raise AssertionError(f"no confirm dialog; screen is {app.screen!r}")


async def test_confirm_cancel_paths_do_nothing(build_app, tmp_path, audit_path):
    victim = tmp_path / "victim.lock"
    victim.write_text("4711\n")
    app = build_app()
    async with app.run_test(size=(80, 24)) as pilot:
        for keys in (["escape"], ["enter"], ["n"], ["tab", "enter", "tab", "enter", "escape"]):
            worker = app.perform(FileAction(victim))
            dialog = await wait_for_confirm(app, pilot)
            assert dialog.focused.id == "cancel", keys
            for key in keys[:-1]:  # Enter anywhere in the dialog never confirms
                await pilot.press(key)
                await pilot.pause()
                assert victim.exists()
            await pilot.press(keys[-1])
            await asyncio.wait_for(worker.wait(), 10)
            assert worker.result.status == "cancelled", keys
            await pilot.pause()
            assert not isinstance(app.screen, ConfirmScreen)
    assert victim.exists()
    assert not audit_path.exists() or audit_path.read_text() == ""


async def test_y_confirms_executes_and_audits(build_app, tmp_path, audit_path, collects, monkeypatch):
    monkeypatch.setenv("SSH_CONNECTION", "203.0.113.9 52100 10.0.0.5 22")
    victim = tmp_path / "victim.lock"
    victim.write_text("4711\n")
    app = build_app()
    async with app.run_test(size=(80, 24)) as pilot:
        worker = app.perform(FileAction(victim))
        dialog = await wait_for_confirm(app, pilot)
        assert "Delete victim.lock" in str(dialog.query_one("#dialog-title").render())
        await pilot.press("y")
        await asyncio.wait_for(worker.wait(), 10)
        assert worker.result.status == "done"
    assert not victim.exists()
    (line,) = audit_path.read_text().splitlines()
    entry = json.loads(line)
    assert entry["action"] == "test.delete" and entry["target"] == str(victim)
    assert entry["ssh_client"] == "203.0.113.9 52100"
    assert entry["outcome"]["ok"] is True and entry["outcome"]["deleted"] == 1
    assert {"time", "user", "uid", "plan"} <= set(entry)
    assert collects["locks"].calls == 1  # the affected collector was refreshed


async def test_progress_dialog_escape_cancels_between_steps(build_app, tmp_path, audit_path):
    victim = tmp_path / "victim.lock"
    victim.write_text("4711\n")
    started = threading.Event()
    app = build_app()
    async with app.run_test(size=(80, 24)) as pilot:
        worker = app.perform(FileAction(victim, block=started))
        await wait_for_confirm(app, pilot)
        await pilot.press("y")
        for _ in range(40):
            await pilot.pause(0.05)
            if started.is_set() and isinstance(app.screen, ProgressScreen):
                break
        assert isinstance(app.screen, ProgressScreen)
        await pilot.pause(0.2)
        assert "0/1 files" in str(app.screen.query_one("#counts").render())
        await pilot.press("escape")
        await asyncio.wait_for(worker.wait(), 10)
        await pilot.pause()
        assert not isinstance(app.screen, ProgressScreen)
        assert worker.result.status == "cancelled"
    assert victim.exists()
    entry = json.loads(audit_path.read_text())
    assert entry["outcome"]["cancelled"] is True and entry["outcome"]["deleted"] == 0


async def test_no_color_still_marks_the_focused_panel(build_app, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = build_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("2")
        await pilot.pause()
        assert app.no_color
        borders = {name: panel.styles.border_top[0] for name, panel in app.panels.items()}
        assert borders["sessions"] == "heavy"
        assert {borders[name] for name in ("pcap", "ports", "locks")} == {"round"}


def test_main_screen_80x24(build_app, snap_compare):
    assert snap_compare(build_app(clock=lambda: FIXED_NOW), terminal_size=(80, 24))


def test_main_screen_160x48(build_app, snap_compare):
    assert snap_compare(build_app(clock=lambda: FIXED_NOW), terminal_size=(160, 48))


async def test_keys_from_config_remap_bindings_and_help_shows_them(build_app):
    app = build_app(config=Config(keys=(("main.zoom", "x"),)))
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("2", "x")
        await pilot.pause()
        assert displayed_panels(app) == ["sessions"]
        rows = dict(dict(app.help_sections())["Global"])
        assert rows["x"] == "Zoom the focused panel to full screen and back"


async def test_ctrl_c_during_an_action_stops_it_between_steps_and_audits(build_app, tmp_path, audit_path):
    victim = tmp_path / "victim.lock"
    victim.write_text("4711\n")
    started = threading.Event()
    app = build_app()
    async with app.run_test(size=(80, 24)) as pilot:
        app.perform(FileAction(victim, block=started))
        await wait_for_confirm(app, pilot)
        await pilot.press("y")
        for _ in range(40):
            await pilot.pause(0.05)
            if started.is_set() and isinstance(app.screen, ProgressScreen):
                break
        await pilot.press("ctrl+c")  # q is a dialog-level no-op; ctrl+c is a priority binding
        await pilot.pause()
    assert app.return_code == 0
    assert victim.exists(), "quitting must stop the action before it deletes"
    entry = json.loads(audit_path.read_text())
    assert entry["outcome"]["cancelled"] is True and entry["outcome"]["deleted"] == 0
