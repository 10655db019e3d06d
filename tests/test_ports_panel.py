"""The Ports panel through Pilot, on the real collector and real servers."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from backends.catalog import PANEL_NAMES, PANELS
from backends.collector import Collector, CollectorGroup
from backends.ports.collect import PortsCollector
from console.app import make_app
from console.audit import AuditLog
from console.config import Config, PortsConfig
from console.screens.confirm import ConfirmScreen
from panels.placeholder import PlaceholderPanel
from panels.ports.detail import PortDetailScreen
from panels.ports.panel import PortsPanel
from tests.conftest import HOST, CountingCollect
from tests.ports_helpers import listener, make_time_wait, server


def ports_app(audit_path: Path, watch: tuple[int, ...]):  # type: ignore[no-untyped-def]
    collects = {name: CountingCollect(f"{name}-value") for name in PANEL_NAMES}
    collects["ports"] = PortsCollector(watch)  # type: ignore[assignment]
    group = CollectorGroup({name: Collector(name, collects[name], interval_s=60, timeout_s=10) for name in PANEL_NAMES})
    panels = [
        PortsPanel(spec, n) if spec.name == "ports" else PlaceholderPanel(spec, n)
        for n, spec in enumerate(PANELS, start=1)
    ]
    config = Config(ports=PortsConfig(watch=watch))
    return make_app(config, group, host=HOST, audit=AuditLog(audit_path), autostart=True, panels=panels)  # type: ignore[arg-type]


async def until(pilot, condition, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.05)


def keys(panel: PortsPanel) -> list[object]:
    return [row.key for row in panel.table.rows.rows]


def values(panel: PortsPanel, port: int) -> tuple[object, ...]:
    position = panel.table.rows.position(("tcp", port))
    assert position is not None, f"port {port} not shown"
    return panel.table.rows.rows[position].values


async def select(pilot, panel: PortsPanel, port: int) -> None:  # type: ignore[no-untyped-def]
    position = panel.table.rows.position(("tcp", port))
    assert position is not None
    panel.table.move_cursor(position)
    await pilot.pause()


async def test_panel_shows_verdicts_tests_binds_and_frees_a_port(tmp_path: Path) -> None:
    drained = listener()
    time_wait_port = drained.getsockname()[1]
    make_time_wait(drained, 2)
    drained.close()
    audit_path = tmp_path / "audit.log"
    with server("slow") as child:
        app = ports_app(audit_path, (child.port, time_wait_port))
        async with app.run_test(size=(160, 48)) as pilot:
            await pilot.press("3")
            panel = app.panels["ports"]
            assert isinstance(panel, PortsPanel)
            await until(pilot, lambda: ("tcp", child.port) in keys(panel), "the first collection")
            # Watched ports pinned first, with their verdicts.
            assert set(keys(panel)[:2]) == {("tcp", child.port), ("tcp", time_wait_port)}
            assert values(panel, child.port)[:3] == ("●", child.port, "listening")
            assert values(panel, time_wait_port)[:4] == ("●", time_wait_port, "time_wait", 2)

            # k is greyed out on a port without a listener, and does nothing there.
            await select(pilot, panel, time_wait_port)
            assert panel.check_action("free_port", ()) is None
            await pilot.press("k")
            await pilot.pause()
            assert not isinstance(app.screen, ConfirmScreen)

            # t: the bind test, both outcomes.
            await pilot.press("t")
            await until(pilot, lambda: bool(panel.last_bind_test), "the bind test")
            assert panel.last_bind_test == f"bind :{time_wait_port} plain fails, SO_REUSEADDR binds"
            summary = str(panel.query_one("#ports-summary").render())
            assert f" · bind :{time_wait_port} plain fails, SO_REUSEADDR binds at " in summary  # with its time

            # Enter: the detail view with the owner's process tree.
            await select(pilot, panel, child.port)
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, PortDetailScreen), "the detail view")
            fetched = app.screen.query_one("#port-fetched")
            await until(pilot, lambda: "process tree" in str(fetched.render()), "the process tree")
            holder_lines = [line for line in str(fetched.render()).splitlines() if line.startswith("*")]
            assert len(holder_lines) == 1 and f" {child.pid} " in holder_lines[0]  # the holder, marked
            await pilot.press("escape")
            await pilot.pause()

            # k on the listener: confirm, TERM, the countdown, the port frees.
            assert panel.check_action("free_port", ()) is True
            await pilot.press("k")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the plan")
            assert f"pid {child.pid}" in app.screen.plan.text()
            await pilot.press("y")
            await app.workers.wait_for_complete()
            assert child.proc.wait(timeout=5) == 0  # its TERM handler exits 0 after a second
            await until(pilot, lambda: values(panel, child.port)[2] != "listening", "the refresh after the action")
            assert values(panel, child.port)[2] == "free"
    (line,) = audit_path.read_text().splitlines()
    audit = json.loads(line)
    assert (audit["action"], audit["target"], audit["outcome"]["ok"]) == ("ports.free_port", str(child.port), True)
    assert audit["outcome"]["processes"][0]["signals"] == [signal.SIGTERM.name]


async def test_w_pins_a_row_and_slash_filters(tmp_path: Path) -> None:
    with server("term") as child:
        app = ports_app(tmp_path / "audit.log", ())
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("3")
            panel = app.panels["ports"]
            assert isinstance(panel, PortsPanel)
            await until(pilot, lambda: ("tcp", child.port) in keys(panel), "the first collection")
            assert values(panel, child.port)[0] == ""
            await select(pilot, panel, child.port)
            await pilot.press("w")
            await until(pilot, lambda: keys(panel)[0] == ("tcp", child.port), "the pinned row on top")
            assert values(panel, child.port)[0] == "●"
            await pilot.press("w")
            await until(pilot, lambda: values(panel, child.port)[0] == "", "the row unpinned")

            await pilot.press("slash", *str(child.port))
            await until(pilot, lambda: keys(panel) == [("tcp", child.port)], "the filter")
