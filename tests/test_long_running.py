"""A console left open for days: thousands of snapshots and focus changes leave nothing behind.

The app runs on the demo world's real collectors, at 160x48 so all four panels draw.
Two real snapshots per panel are then replayed alternately, far faster than any
collector runs, with the focus moving between panels all along. What the app holds
(DOM nodes, reactive watchers, signal subscribers: console.vitals) and the process's RSS
must be the same after the last snapshot as after the first few hundred.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

from textual._styles_cache import StylesCache
from textual.widgets import Footer

from backends.catalog import PANEL_NAMES
from backends.collector import Snapshot
from console.app import OpsConsoleApp, make_app
from console.audit import AuditLog
from console.collectors import build_collectors
from console.config import Config
from console.demo.world import DemoWorld
from console.vitals import nodes_of, subscribers_of, vitals_of, watchers_of
from tests.conftest import HOST

WARM_UP_ROUNDS = 200
ROUNDS = 1500  # each round: one snapshot for every panel (6,000 in all)
FOCUS_EVERY = 5  # rounds between Tab presses (300 focus changes)
#: Time for a refresh, so each focus change really lands (a frame is 1/60 s).
FOCUS_SETTLE_S = 0.02
#: Memory the process may gain between the warm-up and the end (allocator noise, caches that fill).
RSS_SLACK_MB = 12.0


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20


def node_kinds(app: OpsConsoleApp) -> Counter[str]:
    return Counter(type(node).__name__ for node in nodes_of(app))


def long_lived(app: OpsConsoleApp) -> dict[str, tuple[int, int]]:
    """Watchers and subscribers on each node that lives as long as the app."""
    nodes = {"app": app, "screen": app.main, "footer": app.main.query_one(Footer)}
    nodes.update({f"panel {name}": panel for name, panel in app.panels.items()})
    return {name: (watchers_of(node), subscribers_of(node)) for name, node in nodes.items()}


async def until_collected(app: OpsConsoleApp, pilot, names: list[str]) -> dict[str, list[Snapshot[object]]]:  # type: ignore[no-untyped-def]
    """Two real snapshots with a value for each panel, collected now from the demo world."""
    taken: dict[str, list[Snapshot[object]]] = {name: [] for name in names}
    deadline = time.monotonic() + 60
    while any(len(snapshots) < 2 for snapshots in taken.values()):
        assert time.monotonic() < deadline, f"no values yet: { {n: len(s) for n, s in taken.items()} }"
        for name in names:
            if len(taken[name]) < 2:
                snapshot = await app.collectors[name].refresh(force=True)
                if snapshot.value is not None:
                    taken[name].append(snapshot)
        await pilot.pause(0.05)
    return taken


async def test_thousands_of_snapshots_and_focus_changes_leave_nothing_behind(tmp_path: Path) -> None:
    with DemoWorld() as world:
        config = world.apply(Config(audit_log=tmp_path / "audit.log"))
        app = make_app(config, build_collectors(config), host=HOST, audit=AuditLog(tmp_path / "audit.log"),
                       autostart=False)
        async with app.run_test(size=(160, 48)) as pilot:
            names = list(PANEL_NAMES)
            taken = await until_collected(app, pilot, names)
            generation = 0

            async def replay(rounds: int) -> None:
                nonlocal generation
                for round_ in range(rounds):
                    generation += 1
                    for name in names:
                        snapshot = taken[name][generation % 2]
                        app.panels[name].show_snapshot(replace(snapshot, generation=generation, taken_at=time.time()))
                    if round_ % FOCUS_EVERY == 0:
                        app.main.action_cycle(1)  # what Tab does; the focus moves after the next refresh
                        await asyncio.sleep(FOCUS_SETTLE_S)
                    else:
                        await asyncio.sleep(0)  # the loop runs what the snapshots scheduled, between them
                await pilot.press("1")  # the footer shows the keys of the focused panel: the same one each time
                await app.workers.wait_for_complete()
                await pilot.pause(0.2)
                gc.collect()

            await replay(WARM_UP_ROUNDS)
            before, before_nodes, before_rss = long_lived(app), vitals_of(app), rss_mb()
            before_kinds = node_kinds(app)
            await replay(ROUNDS - WARM_UP_ROUNDS)
            after, after_nodes, after_rss = long_lived(app), vitals_of(app), rss_mb()
            after_kinds = node_kinds(app)
            await app.action_quit()

    assert after == before, f"watchers or subscribers piled up on a long-lived node: {before} → {after}"
    assert after_nodes == before_nodes, f"the app holds more than it did: {before_kinds - after_kinds} → {after_kinds - before_kinds}"
    assert after_rss - before_rss <= RSS_SLACK_MB, f"RSS grew {before_rss:.0f} → {after_rss:.0f} MB"


DETAIL_ROUNDS = 20  # each round: Enter and Esc on the Sessions, Ports and Locks tables


def styles_caches_alive() -> int:
    """Every widget's StylesCache the heap still holds (each keeps what its widget drew)."""
    gc.collect()
    return sum(1 for obj in gc.get_objects() if isinstance(obj, StylesCache))


async def test_detail_views_opened_and_closed_let_their_widgets_go(tmp_path: Path) -> None:
    """Textual's lru_cache on StylesCache kept up to 1,024 removed widgets' drawings (console/styles_cache.py)."""
    with DemoWorld() as world:
        config = world.apply(Config(audit_log=tmp_path / "audit.log"))
        app = make_app(config, build_collectors(config), host=HOST, audit=AuditLog(tmp_path / "audit.log"),
                       autostart=False)
        async with app.run_test(size=(160, 48)) as pilot:
            await until_collected(app, pilot, ["sessions", "ports", "locks"])
            gc.unfreeze()  # a frozen heap is invisible to gc.get_objects
            opened = 0
            for _ in range(DETAIL_ROUNDS):
                for key in "234":
                    await pilot.press(key, "enter")
                    await pilot.pause(0.02)
                    opened += app.screen is not app.main
                    await pilot.press("escape")
                    await pilot.pause(0.02)
            await app.workers.wait_for_complete()
            await pilot.pause(0.2)
            alive, live_widgets = styles_caches_alive(), len(nodes_of(app)) - 1
            await app.action_quit()

    assert opened == 3 * DETAIL_ROUNDS, f"only {opened} of {3 * DETAIL_ROUNDS} detail views opened"
    # A few closed screens may wait for their last frame; hundreds mean the cache keeps them.
    assert alive <= live_widgets + 100, f"{alive} StylesCaches alive for {live_widgets} live widgets"
