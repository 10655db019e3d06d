"""console.pacing: everything periodic is drawn on one tick a second; what was asked for, at once."""

from __future__ import annotations

import asyncio

from backends.collector import Snapshot
from console.pacing import AFTER_SECOND_S, SnapshotPacer, delay_to_tick


def test_the_tick_comes_just_after_each_wall_clock_second() -> None:
    assert abs(delay_to_tick(1000.5) - (0.5 + AFTER_SECOND_S)) < 1e-9
    assert abs(delay_to_tick(1000.0) - AFTER_SECOND_S) < 1e-9
    assert delay_to_tick(1000.0 + AFTER_SECOND_S) == 1.0  # exactly on the tick: the next one


def pacer_log() -> tuple[SnapshotPacer, list[tuple[str, Snapshot[object]]]]:
    shown: list[tuple[str, Snapshot[object]]] = []
    return SnapshotPacer(lambda name, snapshot: shown.append((name, snapshot))), shown


def test_a_first_snapshot_is_shown_at_once_and_later_ones_wait_for_the_tick() -> None:
    pacer, shown = pacer_log()
    first, second, third = (Snapshot("ports", value=n, taken_at=float(n)) for n in range(3))
    pacer.arrived("ports", first, first=True)
    assert shown == [("ports", first)]
    pacer.arrived("ports", second, first=False)
    pacer.arrived("ports", third, first=False)
    assert shown == [("ports", first)]
    pacer.flush()
    assert shown == [("ports", first), ("ports", third)]  # only the newest is drawn
    pacer.flush()
    assert len(shown) == 2  # nothing new: nothing drawn


def test_an_asked_for_collection_is_shown_as_it_comes_until_it_is_done() -> None:
    pacer, shown = pacer_log()
    started = Snapshot("locks", value="old", taken_at=1.0, refreshing=True)
    done = Snapshot("locks", value="new", taken_at=2.0)
    later = Snapshot("locks", value="later", taken_at=3.0)
    pacer.arrived("locks", Snapshot("locks", value="held", taken_at=0.5), first=False)
    pacer.expedite("locks")
    pacer.arrived("locks", started, first=False)
    pacer.arrived("locks", done, first=False)
    pacer.arrived("locks", later, first=False)
    assert shown == [("locks", started), ("locks", done)]  # the held one is superseded, never drawn
    pacer.flush()
    assert shown[-1] == ("locks", later)


async def test_a_collector_publishing_ten_times_a_second_is_drawn_once_a_second(build_app) -> None:
    """The app under run_test: 60 publications in 3 s reach the panel on the ticks, about 3 times."""
    app = build_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        collector, panel = app.collectors["ports"], app.panels["ports"]
        await collector.refresh(force=True)  # the first value: drawn at once
        assert panel.snapshot is collector.snapshot
        counts = {"shown": 0, "ticks": 0}
        show, tick = panel.show_snapshot, app.main.tick

        def counting_show(snapshot: Snapshot[object]) -> None:
            counts["shown"] += 1
            show(snapshot)

        def counting_tick() -> None:
            counts["ticks"] += 1
            tick()

        panel.show_snapshot, app.main.tick = counting_show, counting_tick  # type: ignore[method-assign]
        for _ in range(30):
            await collector.refresh(force=True)  # two publications each: started, done
            await asyncio.sleep(0.1)
        assert 2 <= counts["ticks"] <= 4
        assert counts["shown"] <= counts["ticks"]
        newest = collector.snapshot
        await asyncio.sleep(1.1)
        assert panel.snapshot is newest  # the tick after the last publication draws it


async def test_r_draws_its_collection_at_once(build_app) -> None:
    app = build_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("3", "r")
        await app.workers.wait_for_complete()
        await pilot.press("r")
        await app.workers.wait_for_complete()
        assert app.panels["ports"].snapshot is app.collectors["ports"].snapshot


async def test_a_tick_or_a_snapshot_that_comes_while_the_app_closes_draws_nothing(build_app) -> None:
    """The first tick is timed to the wall clock, so it can fire while Textual removes the panels.

    CI saw it: the panel was still mounted, its status line already gone, and the tick's
    query raised. After the app is gone, both ways in must be quiet.
    """
    app = build_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        collector = app.collectors["ports"]
        await collector.refresh(force=True)
    app.tick()
    app._snapshot_arrived("ports", collector.snapshot)
    app.pacer.arrived("ports", collector.snapshot, first=True)
