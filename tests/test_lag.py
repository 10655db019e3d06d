"""The event-loop lag probe: percentiles, the window, and the probe on a real loop."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from console.lag import LagProbe, LagStats, percentile, write_lag_log

ONE_TO_HUNDRED = [float(value) for value in range(1, 101)]


class ScriptRanOut(Exception):
    """The scripted clock has no more readings: ends `LagProbe.run()` deterministically."""


def scripted_clock(readings: Iterable[float]) -> Callable[[], float]:
    remaining = iter(readings)

    def clock() -> float:
        try:
            return next(remaining)
        except StopIteration:
            raise ScriptRanOut from None

    return clock


async def wait_until(condition: Callable[[], bool]) -> None:
    """Yield to the loop until ``condition`` holds (a hang guard, not a timing assertion)."""
    async with asyncio.timeout(30):
        while not condition():
            await asyncio.sleep(0.01)


# -- percentile --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fraction", "expected"),
    [(0.0, 1.0), (0.01, 1.0), (0.5, 50.0), (0.07, 7.0), (0.9, 90.0), (0.95, 95.0), (0.99, 99.0), (1.0, 100.0)],
)
def test_percentile_is_nearest_rank_on_one_to_hundred(fraction: float, expected: float) -> None:
    assert percentile(ONE_TO_HUNDRED, fraction) == expected


@pytest.mark.parametrize(
    ("values", "fraction", "expected"),
    [
        ([7.0], 0.5, 7.0),
        ([7.0], 0.99, 7.0),
        ([1.0, 2.0, 3.0], 0.5, 2.0),
        ([1.0, 2.0, 3.0, 4.0], 0.5, 2.0),
        ([float(v) for v in range(1, 11)], 0.5, 5.0),
        ([float(v) for v in range(1, 11)], 0.99, 10.0),
        ([float(v) for v in range(1, 1001)], 0.99, 990.0),
        ([float(v) for v in range(1, 1001)], 0.5, 500.0),
    ],
)
def test_percentile_small_and_large_lists(values: list[float], fraction: float, expected: float) -> None:
    """Nearest rank: the smallest value with at least ``fraction`` of the values at or below it."""
    assert percentile(values, fraction) == expected


def test_percentile_of_nothing_is_zero() -> None:
    assert percentile([], 0.5) == 0.0
    assert percentile([], 0.99) == 0.0


# -- LagProbe.record / stats ---------------------------------------------------------


def test_stats_of_known_lags() -> None:
    probe = LagProbe(window_s=60)
    for ms in reversed(range(1, 101)):  # recorded out of order: stats sort them
        probe.record(10.0, ms / 1000)
    stats = probe.stats()
    assert stats.samples == 100
    assert stats.p50_ms == pytest.approx(50.0)
    assert stats.p99_ms == pytest.approx(99.0)
    assert stats.max_ms == pytest.approx(100.0)


def test_empty_probe_reports_zeros() -> None:
    assert LagProbe().stats() == LagStats(p50_ms=0.0, p99_ms=0.0, max_ms=0.0, samples=0)


def test_negative_lag_is_clamped_to_zero() -> None:
    """A timer that fires early (or a clock read out of order) is not "negative lag"."""
    probe = LagProbe()
    probe.record(1.0, -0.02)
    probe.record(1.1, -5.0)
    assert probe.stats() == LagStats(p50_ms=0.0, p99_ms=0.0, max_ms=0.0, samples=2)


def test_window_drops_samples_older_than_window() -> None:
    probe = LagProbe(window_s=10.0)
    probe.record(0.0, 0.500)  # the worst, and the oldest
    probe.record(5.0, 0.020)
    probe.record(10.0, 0.030)  # exactly one window after the first: the first is still in
    assert probe.stats().samples == 3
    assert probe.stats().max_ms == pytest.approx(500.0)

    probe.record(10.5, 0.040)  # now the first sample is older than the window
    stats = probe.stats()
    assert stats.samples == 3
    assert stats.max_ms == pytest.approx(40.0)

    probe.record(100.0, 0.001)
    assert probe.stats() == LagStats(p50_ms=pytest.approx(1.0), p99_ms=pytest.approx(1.0),
                                     max_ms=pytest.approx(1.0), samples=1)


# -- LagProbe.run with an injected clock -------------------------------------------


async def test_run_measures_lateness_with_the_injected_clock() -> None:
    # Each iteration reads the clock before and after its sleep of period_s (0.05).
    probe = LagProbe(period_s=0.05, window_s=60.0, clock=scripted_clock([
        0.0, 0.30,     # woke 0.25 s late
        1.0, 1.05,     # on time
        2.0, 2.0,      # "early" (the clock says no time passed): clamped to 0
    ]))
    with pytest.raises(ScriptRanOut):
        await probe.run()
    stats = probe.stats()
    assert stats.samples == 3
    assert stats.max_ms == pytest.approx(250.0)
    assert stats.p50_ms == pytest.approx(0.0, abs=1e-6)


async def test_run_prunes_by_the_injected_clock() -> None:
    probe = LagProbe(period_s=0.05, window_s=60.0, clock=scripted_clock([
        0.0, 0.45,         # 400 ms late, at t=0.45
        100.0, 100.06,     # 10 ms late, at t=100.06: more than a window after the first
    ]))
    with pytest.raises(ScriptRanOut):
        await probe.run()
    stats = probe.stats()
    assert stats.samples == 1
    assert stats.max_ms == pytest.approx(10.0)


# -- LagProbe.run on a real loop ---------------------------------------------------


async def test_run_on_a_real_loop_sees_a_blocked_loop() -> None:
    probe = LagProbe(period_s=0.01, window_s=60.0)
    task = asyncio.create_task(probe.run())
    try:
        await wait_until(lambda: probe.stats().samples >= 3)
        before = probe.stats()
        assert before.p50_ms <= before.p99_ms <= before.max_ms

        async def hog_the_loop() -> None:
            time.sleep(0.2)  # a blocking call on the loop: exactly what the probe is for

        await hog_the_loop()
        await wait_until(lambda: probe.stats().samples >= before.samples + 2)
        after = probe.stats()
        # The probe was asleep on a 10 ms timer when the loop blocked for 200 ms.
        assert after.max_ms >= 150
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


# -- write_lag_log ------------------------------------------------------------------


def complete_lines(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [line for line in path.read_text().splitlines(keepends=True) if line.endswith("\n")]


async def test_write_lag_log_appends_json_lines_and_cancels_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "lag.jsonl"
    earlier = '{"t": 1.0, "p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}\n'
    path.write_text(earlier)  # a previous run's line: the log is appended to, not truncated
    probe = LagProbe(window_s=3600)
    for ms in range(1, 101):
        probe.record(0.0, ms / 1000)

    started = time.time()
    task = asyncio.create_task(write_lag_log(probe, path, every_s=0.05))
    await wait_until(lambda: len(complete_lines(path)) >= 4)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    finished = time.time()

    text = path.read_text()
    assert text.startswith(earlier)
    assert text.endswith("\n")  # no half-written line left behind
    rows = [json.loads(line) for line in text.splitlines()[1:]]
    assert len(rows) >= 3
    for row in rows:
        assert set(row) == {"t", "p50_ms", "p99_ms", "max_ms"}
        assert started - 1 <= row["t"] <= finished + 1
        assert (row["p50_ms"], row["p99_ms"], row["max_ms"]) == (50.0, 99.0, 100.0)
    assert [row["t"] for row in rows] == sorted(row["t"] for row in rows)
