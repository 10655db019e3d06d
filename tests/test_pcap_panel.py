"""The PCAP panel and its file index through Pilot, on the real collector and real trees;
and the `pcap` section of `snapshot --json`."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from backends.catalog import PANEL_NAMES, PANELS
from backends.collector import Collector, CollectorGroup
from backends.pcap.source import pcap_collector
from console.app import make_app
from console.audit import AuditLog
from console.cli import main
from console.config import Config, PcapConfig, RetentionConfig
from console.screens.confirm import ConfirmScreen
from panels.pcap.index import FileIndexScreen
from panels.pcap.panel import PcapPanel, sparkline
from panels.placeholder import PlaceholderPanel
from tests.conftest import HOST, CountingCollect
from tests.pcap_helpers import make_file

DAY = 86400.0


def capture_tree(root: Path) -> list[Path]:
    now = time.time()
    files = [make_file(root / f"2026-10-{d:02}" / f"c{n}.pcap", 1000 * (n + 1), now - (40 - d) * DAY + n)
             for d in range(1, 6) for n in range(4)]
    files.append(make_file(root / "live.pcap", 10, None))
    return files


def pcap_app(tmp_path: Path, *, read_only: bool = False, max_age_days: float | None = None):  # type: ignore[no-untyped-def]
    config = Config(
        read_only=read_only,
        pcap=PcapConfig(root=tmp_path / "pcap", cache_dir=tmp_path / "cache",
                        retention=RetentionConfig(max_age_days=max_age_days, keep_newest=2)),
    )
    collectors: dict[str, Collector[Any]] = {
        name: Collector(name, CountingCollect(f"{name}-value"), interval_s=60, timeout_s=10) for name in PANEL_NAMES
    }
    collectors["pcap"] = pcap_collector(config.pcap, tmp_path / "unused")
    panels = [PcapPanel(spec, n) if spec.name == "pcap" else PlaceholderPanel(spec, n)
              for n, spec in enumerate(PANELS, start=1)]
    return make_app(config, CollectorGroup(collectors), host=HOST, audit=AuditLog(tmp_path / "state" / "audit.log"),
                    autostart=True, panels=panels)  # type: ignore[arg-type]


async def until(pilot, condition, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.05)


def text(app, selector: str) -> str:  # type: ignore[no-untyped-def]
    return str(app.screen.query_one(selector).render())


def table_rows(panel: PcapPanel) -> list[tuple[object, ...]]:
    return [row.values for row in panel.table.rows.rows]


def test_sparkline_scales_between_min_and_max() -> None:
    assert sparkline([1, 2, 3, 4, 5, 6, 7, 8], 8) == "▁▂▃▄▅▆▇█"
    assert sparkline([5, 5], 10) == "▁▁"
    assert sparkline([0, 10, 0, 10], 2) == "▁█"
    assert sparkline([], 5) == ""


async def test_panel_shows_totals_breakdown_and_cache_state(tmp_path: Path) -> None:
    capture_tree(tmp_path / "pcap")
    app = pcap_app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        panel = app.panels["pcap"]
        assert isinstance(panel, PcapPanel)
        await until(pilot, lambda: len(panel.table.rows) == 6, "the breakdown")
        assert table_rows(panel)[0][:3] == (".", 1, 10)
        assert [row[0] for row in table_rows(panel)[1:]] == [f"2026-10-{d:02}" for d in range(1, 6)]
        assert table_rows(panel)[1][1:3] == (4, 10_000)
        assert text(app, "#pcap-totals").startswith("21 files · 48.8K")
        assert "% free of" in text(app, "#pcap-disk")
        assert text(app, "#pcap-cache").startswith("cache ") and "ttl 5m" in text(app, "#pcap-cache")
        assert "full scan" in text(app, "#pcap-scan") and "0 stale served" in text(app, "#pcap-scan")
        assert "updated" in text(app, "#status")


async def test_file_index_opens_at_once_and_never_says_empty_while_building(tmp_path: Path) -> None:
    capture_tree(tmp_path / "pcap")
    release = threading.Event()

    class HeldIndex(FileIndexScreen):
        def load(self):  # type: ignore[no-untyped-def]
            release.wait(20)  # the walk is slow today
            return super().load()

    app = pcap_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        panel = app.panels["pcap"]
        await until(pilot, lambda: len(panel.table.rows) == 6, "the breakdown")
        settings = panel._settings()
        assert settings is not None
        app.push_screen(HeldIndex(settings))
        await pilot.pause(0.3)
        screen = app.screen
        assert isinstance(screen, HeldIndex)
        state = text(app, "#pcap-index-state")
        assert state.startswith("building the index") and "no capture files" not in state
        assert len(screen.query_one("#pcap-index-table").rows) == 0
        release.set()
        await until(pilot, lambda: text(app, "#pcap-index-state").startswith("21 files"), "the index")
        table = screen.query_one("#pcap-index-table")
        assert table.selected.key == "live.pcap"  # newest first
        await pilot.press("l")
        await until(pilot, lambda: table.view.sort_column == 1 and not table.computing, "largest first")
        await pilot.pause()
        assert table.selected.values[1] == 4000 and table.cursor == 0
        await pilot.press("o")
        await until(pilot, lambda: table.view.descending is False and not table.computing, "oldest first")
        await pilot.pause()
        assert table.selected.key == "2026-10-01/c0.pcap"
        await pilot.press("escape")
        assert not isinstance(app.screen, FileIndexScreen)


async def test_enter_opens_the_file_index(tmp_path: Path) -> None:
    capture_tree(tmp_path / "pcap")
    app = pcap_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        panel = app.panels["pcap"]
        await until(pilot, lambda: len(panel.table.rows) == 6, "the breakdown")
        await pilot.press("1", "enter")
        await until(pilot, lambda: isinstance(app.screen, FileIndexScreen), "the file index")
        await until(pilot, lambda: text(app, "#pcap-index-state").startswith("21 files"), "the index")


async def test_cleanup_key_plans_confirms_deletes_audits_and_refreshes(tmp_path: Path) -> None:
    files = capture_tree(tmp_path / "pcap")
    app = pcap_app(tmp_path, max_age_days=37.5)  # days 1 and 2 (39 and 38 days old) go
    async with app.run_test(size=(160, 48)) as pilot:
        panel = app.panels["pcap"]
        await until(pilot, lambda: len(panel.table.rows) == 6, "the breakdown")
        await pilot.press("1", "c")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the plan")
        title = str(app.screen.query_one("#dialog-title").render())
        plan_text = str(app.screen.query_one("#plan-text").render())
        assert title.startswith("Delete 8 capture files, 19.5K")
        assert "driven by: max_age_days = 37.5" in plan_text and "skipped: 1 active window" in plan_text
        await pilot.press("y")
        await until(pilot, lambda: len(panel.table.rows) == 4, "the refreshed breakdown")
    assert [p.exists() for p in files] == [False] * 8 + [True] * 13
    [line] = (tmp_path / "state" / "audit.log").read_text().splitlines()
    assert json.loads(line)["outcome"]["deleted"] == 8
    assert len((tmp_path / "state" / "pcap-cleanup-deleted.jsonl").read_text().splitlines()) == 8


async def test_cleanup_is_refused_in_read_only_mode(tmp_path: Path) -> None:
    files = capture_tree(tmp_path / "pcap")
    app = pcap_app(tmp_path, read_only=True, max_age_days=1)
    async with app.run_test(size=(160, 48)) as pilot:
        panel = app.panels["pcap"]
        await until(pilot, lambda: len(panel.table.rows) == 6, "the breakdown")
        await pilot.press("1", "c")
        await pilot.pause(0.3)
        assert not isinstance(app.screen, ConfirmScreen)
        assert any("read-only" in n.message for n in app._notifications)
    assert all(p.exists() for p in files)


def test_snapshot_json_pcap_section_is_the_contract(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture_tree(tmp_path / "pcap")
    (tmp_path / "pcap" / "locked").mkdir()
    config = tmp_path / "config.toml"
    config.write_text(f'[pcap]\nroot = "{tmp_path}/pcap"\ncache_dir = "{tmp_path}/cache"\n')
    assert main(["--config", str(config), "snapshot", "--json", "--panel", "pcap"]) == 0
    section = json.loads(capsys.readouterr().out)["pcap"]
    assert list(section) == ["ok", "error", "age_s", "refreshing", "duration_s", "value"]
    value = section["value"]
    contract = ["root", "files", "bytes", "allocated_bytes", "oldest", "newest", "active_files", "scan", "disk",
                "growth_bytes_per_hour", "seconds_to_full", "errors"]
    assert list(value)[: len(contract)] == contract
    assert (value["root"], value["files"], value["bytes"], value["active_files"]) == (str(tmp_path / "pcap"), 21, 50_010, 1)
    assert value["oldest"]["path"] == "2026-10-01/c0.pcap" and isinstance(value["oldest"]["mtime"], float)
    assert value["newest"]["path"] == "live.pcap"
    assert {"mode", "dirs", "by_pid"} <= set(value["scan"]) and value["scan"]["mode"] == "full"
    assert set(value["disk"]) == {"total", "used", "free"}
    assert value["growth_bytes_per_hour"] is None and value["seconds_to_full"] is None
    assert value["errors"] == []
    # a second call reads the shared cache; --refresh --full forces a new full scan
    assert main(["--config", str(config), "snapshot", "--json", "--panel", "pcap"]) == 0
    assert json.loads(capsys.readouterr().out)["pcap"]["value"]["scan"]["serial"] == 1
    assert main(["--config", str(config), "snapshot", "--json", "--panel", "pcap", "--refresh", "--full"]) == 0
    scan = json.loads(capsys.readouterr().out)["pcap"]["value"]["scan"]
    assert (scan["serial"], scan["mode"]) == (2, "full")


def test_snapshot_without_root_says_which_key_to_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.toml"
    config.write_text("")
    assert main(["--config", str(config), "snapshot", "--json", "--panel", "pcap"]) == 1
    section = json.loads(capsys.readouterr().out)["pcap"]
    assert section["ok"] is False and "[pcap] root" in section["error"]


def test_demo_wait_seeded_waits_for_the_seeders_marker(tmp_path: Path) -> None:
    from console.demo import pcap as demo_pcap

    assert not demo_pcap.wait_seeded(tmp_path, timeout_s=0.1)
    timer = threading.Timer(0.2, (tmp_path / demo_pcap.SEEDED).touch)
    timer.start()
    try:
        assert demo_pcap.wait_seeded(tmp_path, timeout_s=20)
    finally:
        timer.join()


def test_cache_lines_name_the_rebuilder_and_fit_a_quarter_screen(tmp_path: Path) -> None:
    """In the 2x2 layout a panel is about 76 columns inside: who rebuilds and the stale count must show."""
    import os

    from backends.pcap.source import PcapSource
    from panels.pcap.panel import cache_line, scan_line
    from tests.pcap_helpers import context, settings_for
    from tests.test_pcap_cache import expire

    capture_tree(tmp_path / "pcap")
    source = PcapSource(settings_for(tmp_path / "pcap", tmp_path / "cache"))
    try:
        source.collect(context())
        expire(source.store)
        with source.store.scan_lock(timeout=0) as mine:  # another "process" is scanning
            assert mine
            source.store.mark_rebuilding(time.time())
            value = source.collect(context())
    finally:
        source.close()
    cache, scan = cache_line(value, time.time()), scan_line(value)
    assert f"rebuilding: pid {os.getpid()} since " in cache and cache.startswith("cache 27.8h old, ttl 5m")
    assert scan.startswith("full scan ") and scan.endswith(" · 1 stale served")
    assert len(cache) <= 76 and len(scan) <= 76
