"""The collector runtime (backends/collector.py) against the DESIGN.md contract.

Real threads and a real event loop throughout. Nothing here asserts how long anything
took: intervals and timeouts are tiny, and every wait is a bounded poll for a condition
that fails with a message saying what never happened.
"""

from __future__ import annotations

import asyncio
import enum
import gc
import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from backends.collector import (
    CollectContext,
    Collector,
    CollectorGroup,
    CollectTimeout,
    Snapshot,
    WorkerStillRunning,
    backoff_delay,
    describe_error,
)
from backends.jsonable import envelope, to_jsonable

#: Upper bound for any wait on a condition; only reached when the code under test is broken.
WAIT_LIMIT_S = 5.0


# -- helpers -------------------------------------------------------------------------


async def wait_until(predicate: Callable[[], bool], what: str, limit_s: float = WAIT_LIMIT_S) -> None:
    """Poll ``predicate`` on the loop until it holds; fail naming ``what`` otherwise."""
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for: {what}")
        await asyncio.sleep(0.002)


async def wait_for_event(event: threading.Event, what: str) -> None:
    """Wait (without blocking the loop) for a thread-side event."""
    await wait_until(event.is_set, what)


def collector_threads(name: str | None = None) -> list[threading.Thread]:
    prefix = "collector-" if name is None else f"collector-{name}"
    return [t for t in threading.enumerate() if t.name.startswith(prefix) and t.is_alive()]


def other_tasks() -> set[asyncio.Task[Any]]:
    return asyncio.all_tasks() - {asyncio.current_task()}


class Gate:
    """A collect function, sync or async, that counts its calls and blocks until released.

    ``entered`` is set when a call starts; ``release`` lets every call (current and
    future) finish. The returned value is ``"value-<n>"`` for the n-th call.
    """

    def __init__(self) -> None:
        self.calls = 0
        self.entered = threading.Event()
        self.release = threading.Event()
        self.contexts: list[CollectContext[Any]] = []
        self._lock = threading.Lock()

    def _enter(self, ctx: CollectContext[Any]) -> int:
        with self._lock:
            self.calls += 1
            self.contexts.append(ctx)
            n = self.calls
        self.entered.set()
        return n

    def sync(self, ctx: CollectContext[Any]) -> str:
        n = self._enter(ctx)
        if not self.release.wait(WAIT_LIMIT_S * 2):
            raise RuntimeError("gate never released")
        return f"value-{n}"

    async def async_(self, ctx: CollectContext[Any]) -> str:
        n = self._enter(ctx)
        deadline = time.monotonic() + WAIT_LIMIT_S * 2
        while not self.release.is_set():
            if time.monotonic() > deadline:
                raise RuntimeError("gate never released")
            await asyncio.sleep(0.001)
        return f"value-{n}"

    def fn(self, kind: str) -> Callable[[CollectContext[Any]], Any]:
        return self.sync if kind == "sync" else self.async_


@pytest.fixture
async def make_collector(request: pytest.FixtureRequest) -> Any:
    """Build collectors with test-friendly defaults; stop them all and check for leftovers."""
    made: list[Collector[Any]] = []
    gates: list[threading.Event] = []

    def factory(collect: Any, *, name: str | None = None, **options: Any) -> Collector[Any]:
        options.setdefault("interval_s", 60.0)
        options.setdefault("timeout_s", WAIT_LIMIT_S)
        name = name or f"t{len(made)}-{request.node.name}"
        collector = Collector(name, collect, **options)
        made.append(collector)
        return collector

    factory.release_on_teardown = gates.append  # type: ignore[attr-defined]
    yield factory
    for gate in gates:
        gate.set()
    for collector in made:
        await collector.stop()
    await wait_until(lambda: not collector_threads(), "every collector thread to end at teardown")


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


# -- 1. single flight ----------------------------------------------------------------


async def test_fifty_concurrent_refreshes_share_one_collection(make_collector: Any, kind: str) -> None:
    gate = Gate()
    make_collector.release_on_teardown(gate.release)
    collector = make_collector(gate.fn(kind))

    first_wave = asyncio.ensure_future(asyncio.gather(*(collector.refresh() for _ in range(50))))
    await wait_for_event(gate.entered, "the collect function to start")
    # The run is now blocked inside collect; more callers arrive while it is in progress.
    second_wave = asyncio.ensure_future(asyncio.gather(*(collector.refresh() for _ in range(50))))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not first_wave.done() and not second_wave.done(), "callers must wait for the run"
    assert gate.calls == 1
    assert collector.snapshot.refreshing is True

    gate.release.set()
    results = list(await first_wave) + list(await second_wave)

    assert gate.calls == 1, f"{gate.calls} collections for 100 concurrent refreshes"
    assert collector.collections == 1
    assert len(results) == 100
    assert all(result is results[0] for result in results), "all callers get the same snapshot"
    assert results[0] is collector.snapshot
    assert results[0].value == "value-1"
    assert results[0].refreshing is False


async def test_refresh_after_a_finished_run_collects_again(make_collector: Any, kind: str) -> None:
    gate = Gate()
    gate.release.set()
    collector = make_collector(gate.fn(kind))

    first = await collector.refresh()
    second = await collector.refresh()

    assert gate.calls == 2
    assert (first.value, second.value) == ("value-1", "value-2")
    assert second.generation == first.generation + 1


async def test_back_to_back_sync_refreshes_all_succeed(make_collector: Any) -> None:
    """A worker thread that has delivered its result is not "still running"."""
    counter = 0

    def collect(ctx: CollectContext[int]) -> int:
        nonlocal counter
        counter += 1
        return counter

    collector = make_collector(collect, timeout_s=2.0)
    snaps = [await collector.refresh() for _ in range(100)]

    assert [s.error for s in snaps if s.error] == []
    assert [s.value for s in snaps] == list(range(1, 101))
    assert counter == 100


# -- 2. cancelling one caller --------------------------------------------------------


async def test_cancelled_caller_does_not_cancel_the_shared_run(make_collector: Any, kind: str) -> None:
    gate = Gate()
    make_collector.release_on_teardown(gate.release)
    collector = make_collector(gate.fn(kind))

    leaver = asyncio.ensure_future(collector.refresh())
    stayer = asyncio.ensure_future(collector.refresh())
    await wait_for_event(gate.entered, "the collect function to start")

    leaver.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaver
    assert not stayer.done()
    assert not gate.contexts[0].cancelled.is_set(), "the run was told to stop"

    gate.release.set()
    snap = await stayer

    assert snap.value == "value-1"
    assert snap.error is None
    assert gate.calls == 1
    assert collector.snapshot is snap


# -- 3. timeouts ---------------------------------------------------------------------


async def test_hanging_sync_collect_times_out_keeps_value_and_stops_its_thread(make_collector: Any) -> None:
    seen: dict[str, Any] = {}

    def collect(ctx: CollectContext[str]) -> str:
        if ctx.previous is None:
            return "good"
        seen["thread"] = threading.current_thread()
        seen["context"] = ctx
        ctx.cancelled.wait(WAIT_LIMIT_S * 2)  # a cooperative hang
        seen["saw_cancel"] = ctx.cancelled.is_set()
        return "too late"

    collector = make_collector(collect, timeout_s=0.05)
    good = await collector.refresh()
    assert good.ok and good.value == "good"

    snap = await collector.refresh()

    assert snap.value == "good"
    assert snap.taken_at == good.taken_at
    assert snap.duration_s == good.duration_s
    assert snap.error is not None and "timed out" in snap.error
    assert snap.consecutive_errors == 1
    assert snap.refreshing is False
    assert not snap.ok
    assert seen["context"].cancelled.is_set(), "the worker thread was not told to stop"
    thread = seen["thread"]
    await wait_until(lambda: not thread.is_alive(), "the timed-out worker thread to end")
    assert seen["saw_cancel"] is True
    assert collector.snapshot.value == "good", "a late result must not replace the snapshot"


async def test_hanging_async_collect_times_out_and_is_cancelled(make_collector: Any) -> None:
    seen: dict[str, Any] = {}

    async def collect(ctx: CollectContext[str]) -> str:
        if ctx.previous is None:
            return "good"
        try:
            await asyncio.Event().wait()  # forever
        except asyncio.CancelledError:
            seen["cancelled"] = True
            raise
        return "unreachable"

    collector = make_collector(collect, timeout_s=0.05)
    good = await collector.refresh()

    snap = await collector.refresh()

    assert snap.value == "good"
    assert snap.taken_at == good.taken_at
    assert snap.error is not None and "timed out" in snap.error
    assert snap.consecutive_errors == 1
    assert snap.refreshing is False
    assert seen.get("cancelled") is True, "the hanging coroutine was left running"
    assert other_tasks() == set(), "the timed-out coroutine's task is still alive"


def test_collect_timeout_and_worker_still_running_are_exceptions() -> None:
    assert issubclass(CollectTimeout, Exception)
    assert issubclass(WorkerStillRunning, Exception)


# -- 4. a worker that ignores cancellation -------------------------------------------


async def test_non_cooperative_worker_blocks_a_second_thread_until_it_ends(make_collector: Any) -> None:
    gate = Gate()
    make_collector.release_on_teardown(gate.release)
    name = "stubborn"
    collector = make_collector(gate.sync, name=name, timeout_s=0.05)

    timed_out = await collector.refresh()
    assert timed_out.error is not None and "timed out" in timed_out.error
    assert gate.contexts[0].cancelled.is_set()
    assert len(collector_threads(name)) == 1, "the stubborn worker should still be running"

    blocked = await collector.refresh()

    assert gate.calls == 1, "a second worker thread was started"
    assert len(collector_threads(name)) == 1
    assert blocked.error is not None and "still running" in blocked.error
    assert blocked.consecutive_errors == 2
    assert blocked.refreshing is False

    gate.release.set()
    await wait_until(lambda: not collector_threads(name), "the stubborn worker to finish")
    recovered = await collector.refresh()

    assert gate.calls == 2
    assert recovered.ok
    assert recovered.value == "value-2", "the late result of the timed-out run must not be used"
    assert recovered.consecutive_errors == 0


async def test_late_failure_of_a_timed_out_worker_is_not_reported_as_unhandled(make_collector: Any) -> None:
    """A timed-out thread that later raises must not leave 'exception was never retrieved'."""
    loop = asyncio.get_running_loop()
    reports: list[dict[str, Any]] = []
    previous_handler = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reports.append(context))
    release = threading.Event()
    make_collector.release_on_teardown(release)
    finished = threading.Event()

    def collect(ctx: CollectContext[str]) -> str:
        try:
            release.wait(WAIT_LIMIT_S * 2)
            raise OSError("late failure")
        finally:
            finished.set()

    try:
        collector = make_collector(collect, name="late", timeout_s=0.05)
        snap = await collector.refresh()
        assert snap.error is not None and "timed out" in snap.error
        release.set()
        await wait_for_event(finished, "the stubborn worker to raise")
        await wait_until(lambda: not collector_threads("late"), "the stubborn worker to end")
        for _ in range(10):  # let the thread's call_soon_threadsafe delivery run
            await asyncio.sleep(0)
        gc.collect()
        for _ in range(3):
            await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous_handler)

    assert [c.get("message") for c in reports] == []


# -- 5. errors -----------------------------------------------------------------------


class Boom(Exception):
    pass


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ValueError("disk on fire\nTraceback-ish second line\nthird"), "disk on fire"),
        (ValueError("\n  padded message  \nmore"), "padded message"),
        (Boom(), "Boom"),
        (Boom("   \n  "), "Boom"),
        (KeyError(), "KeyError"),
    ],
)
async def test_error_keeps_previous_value_with_one_line_message(
    make_collector: Any, kind: str, exc: Exception, expected: str
) -> None:
    def sync_collect(ctx: CollectContext[str]) -> str:
        if ctx.previous is None:
            return "good"
        raise exc

    async def async_collect(ctx: CollectContext[str]) -> str:
        return sync_collect(ctx)

    collector = make_collector(sync_collect if kind == "sync" else async_collect)
    good = await collector.refresh()

    snap = await collector.refresh()  # never raises into the caller

    assert snap.error == expected
    assert "\n" not in snap.error
    assert snap.value == "good"
    assert snap.taken_at == good.taken_at
    assert snap.error_at is not None
    assert snap.consecutive_errors == 1
    assert not snap.ok


async def test_success_after_error_clears_error(make_collector: Any) -> None:
    outcomes: list[Any] = ["one", RuntimeError("broken"), "three"]

    def collect(ctx: CollectContext[str]) -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    collector = make_collector(collect)
    await collector.refresh()
    failed = await collector.refresh()
    recovered = await collector.refresh()

    assert failed.error == "broken"
    assert recovered.ok
    assert recovered.value == "three"
    assert recovered.error is None and recovered.error_at is None
    assert recovered.consecutive_errors == 0


def test_describe_error() -> None:
    assert describe_error(RuntimeError("a\nb")) == "a"
    assert describe_error(RuntimeError("")) == "RuntimeError"
    assert describe_error(TimeoutError()) == "TimeoutError"
    assert describe_error(OSError(13, "Permission denied")) == "[Errno 13] Permission denied"


# -- 6. backoff ----------------------------------------------------------------------


async def test_backoff_doubles_per_error_up_to_max_then_resets_via_scheduler(make_collector: Any) -> None:
    calls = 0

    def collect(ctx: CollectContext[int]) -> int:
        nonlocal calls
        calls += 1
        if calls <= 4:
            raise RuntimeError(f"failure {calls}")
        return calls

    collector = make_collector(collect, interval_s=0.01, backoff_max_s=0.08, timeout_s=1.0)
    assert collector.next_delay_s() == pytest.approx(0.01)
    finished: list[tuple[int, int, float]] = []  # (generation, consecutive_errors, next delay)

    def on_snapshot(snap: Snapshot[int]) -> None:
        if not finished or snap.generation != finished[-1][0]:
            if snap.generation > 0 and not snap.refreshing:
                finished.append((snap.generation, snap.consecutive_errors, collector.next_delay_s()))

    collector.subscribe(on_snapshot)
    collector.start()
    await wait_until(lambda: len(finished) >= 6, "six scheduled runs")
    await collector.stop()

    assert [g for g, _, _ in finished[:6]] == [1, 2, 3, 4, 5, 6]
    assert [e for _, e, _ in finished[:6]] == [1, 2, 3, 4, 0, 0]
    assert [d for _, _, d in finished[:6]] == pytest.approx([0.02, 0.04, 0.08, 0.08, 0.01, 0.01])


async def test_scheduler_waits_for_the_backoff_delay(make_collector: Any) -> None:
    """With errors piling up the scheduler really waits longer than the interval."""
    calls = 0

    def collect(ctx: CollectContext[int]) -> int:
        nonlocal calls
        calls += 1
        raise RuntimeError("always")

    collector = make_collector(collect, interval_s=0.01, backoff_max_s=100.0, timeout_s=1.0)
    collector.start()
    await wait_until(lambda: collector.snapshot.consecutive_errors >= 5, "five failed runs")
    assert collector.next_delay_s() == pytest.approx(0.32)
    seen = calls
    # Ten intervals pass; a scheduler ignoring the 0.32 s backoff would run ~10 more times.
    await asyncio.sleep(0.1)
    assert calls == seen


@pytest.mark.parametrize(
    ("interval", "errors", "max_s", "expected"),
    [
        (10.0, 0, 300.0, 10.0),
        (10.0, -1, 300.0, 10.0),
        (10.0, 1, 300.0, 20.0),
        (10.0, 2, 300.0, 40.0),
        (10.0, 5, 300.0, 300.0),
        (10.0, 50, 300.0, 300.0),
        (10.0, 3, 5.0, 10.0),  # a max below the interval never shortens it
        (0.01, 3, 0.08, 0.08),
    ],
)
def test_backoff_delay(interval: float, errors: int, max_s: float, expected: float) -> None:
    assert backoff_delay(interval, errors, max_s) == pytest.approx(expected)


def test_backoff_delay_huge_error_count_does_not_overflow() -> None:
    assert backoff_delay(1.0, 5000, 60.0) == pytest.approx(60.0)


# -- 7. generation and refreshing ----------------------------------------------------


async def test_generation_counts_finished_runs_and_refreshing_flags_the_run(make_collector: Any) -> None:
    published: list[Snapshot[str]] = []
    during: list[Snapshot[str]] = []
    outcomes: list[Any] = ["a", RuntimeError("b failed"), "c"]
    holder: dict[str, Collector[str]] = {}

    def collect(ctx: CollectContext[str]) -> str:
        during.append(holder["collector"].snapshot)
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    collector = make_collector(collect)
    holder["collector"] = collector
    collector.subscribe(published.append)
    assert collector.snapshot.generation == 0

    for _ in range(3):
        await collector.refresh()

    assert [(s.generation, s.refreshing) for s in published] == [
        (0, True), (1, False), (1, True), (2, False), (2, True), (3, False),
    ]
    assert [s.refreshing for s in during] == [True, True, True]
    assert [s.generation for s in during] == [0, 1, 2]
    assert [s.value for s in published if not s.refreshing] == ["a", "a", "c"]
    assert collector.snapshot.generation == 3
    assert collector.collections == 3


# -- 8. subscribers ------------------------------------------------------------------


async def test_subscribers_get_snapshots_in_order_until_unsubscribed(make_collector: Any) -> None:
    counter = 0

    def collect(ctx: CollectContext[int]) -> int:
        nonlocal counter
        counter += 1
        return counter

    collector = make_collector(collect)
    by_callable: list[Snapshot[int]] = []
    by_method: list[Snapshot[int]] = []
    stays: list[Snapshot[int]] = []

    def method_subscriber(snap: Snapshot[int]) -> None:
        by_method.append(snap)

    unsubscribe = collector.subscribe(by_callable.append)
    collector.subscribe(method_subscriber)
    collector.subscribe(stays.append)

    await collector.refresh()
    await collector.refresh()
    assert [s.value for s in by_callable if not s.refreshing] == [1, 2]
    assert [s.generation for s in by_callable] == [0, 1, 1, 2]
    assert by_method == by_callable == stays

    unsubscribe()
    collector.unsubscribe(method_subscriber)
    unsubscribe()  # twice is harmless
    collector.unsubscribe(method_subscriber)
    await collector.refresh()

    assert len(by_callable) == 4
    assert len(by_method) == 4
    assert [s.value for s in stays if not s.refreshing] == [1, 2, 3]
    assert stays[-1] is collector.snapshot


async def test_failing_subscriber_does_not_break_collection_or_other_subscribers(
    make_collector: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The contract: the collector never raises into the UI, whatever a subscriber does."""
    counter = 0

    def collect(ctx: CollectContext[int]) -> int:
        nonlocal counter
        counter += 1
        return counter

    def broken(snap: Snapshot[int]) -> None:
        raise RuntimeError("panel bug")

    later: list[Snapshot[int]] = []
    collector = make_collector(collect, name="fragile", interval_s=0.01)
    collector.subscribe(broken)
    collector.subscribe(later.append)

    snap = await collector.refresh()  # must not raise
    assert snap.value == 1 and snap.ok
    assert [s.value for s in later if not s.refreshing] == [1]
    assert any("fragile" in r.getMessage() and r.exc_info for r in caplog.records), "failure not logged"

    collector.start()
    await wait_until(lambda: collector.snapshot.generation >= 4, "the schedule to keep running")


# -- 9. pause and resume -------------------------------------------------------------


async def test_pause_stops_the_schedule_refresh_still_works_resume_continues(make_collector: Any) -> None:
    calls = 0

    def collect(ctx: CollectContext[int]) -> int:
        nonlocal calls
        calls += 1
        return calls

    collector = make_collector(collect, interval_s=0.01)
    collector.start()
    await wait_until(lambda: calls >= 3, "three scheduled runs")

    collector.pause()
    assert collector.paused
    assert collector.snapshot.paused is True
    for _ in range(3):  # a run task created just before pause() gets to publish "refreshing"
        await asyncio.sleep(0)
    await wait_until(lambda: not collector.snapshot.refreshing, "the run in progress to finish")
    paused_at = calls
    await asyncio.sleep(0.1)  # ten intervals
    assert calls == paused_at, "scheduled runs happened while paused"
    assert collector.snapshot.paused is True

    snap = await collector.refresh()  # an explicit refresh still works
    assert calls == paused_at + 1
    assert snap.value == calls and snap.paused is True
    await asyncio.sleep(0.1)
    assert calls == paused_at + 1, "the explicit refresh restarted the schedule"

    collector.resume()
    assert collector.snapshot.paused is False
    assert not collector.paused
    await wait_until(lambda: calls >= paused_at + 4, "the schedule to continue after resume")
    assert collector.snapshot.paused is False


async def test_pause_during_a_run_leaves_no_next_run_time(make_collector: Any) -> None:
    gate = Gate()
    make_collector.release_on_teardown(gate.release)
    collector = make_collector(gate.sync, interval_s=0.01)
    published: list[Snapshot[str]] = []
    collector.subscribe(published.append)
    collector.start()
    await wait_for_event(gate.entered, "the first scheduled run")

    collector.pause()
    gate.release.set()
    # Two publishes after the run: its result, then the schedule's next-run time.
    await wait_until(
        lambda: len([s for s in published if s.generation == 1]) >= 2,
        "the run to finish and the schedule to publish its next run",
    )

    after_run = [s for s in published if s.generation == 1]
    assert all(s.paused for s in after_run)
    assert [s.next_at for s in after_run] == [None] * len(after_run), "a paused collector advertises a next run"
    assert gate.calls == 1


async def test_resume_runs_right_away_and_group_pause_resume(make_collector: Any) -> None:
    counts = {"a": 0, "b": 0}

    def counting(key: str) -> Callable[[CollectContext[int]], int]:
        def collect(ctx: CollectContext[int]) -> int:
            counts[key] += 1
            return counts[key]

        return collect

    # A long interval: any run after the first comes from resume(), not the timer.
    a = make_collector(counting("a"), interval_s=60.0)
    b = make_collector(counting("b"), interval_s=60.0)
    group = CollectorGroup({"a": a, "b": b})
    assert group.names() == ["a", "b"]
    assert group["a"] is a
    group.start()
    # next_at is published once a run has finished and the schedule is waiting for the next.
    await wait_until(
        lambda: a.snapshot.next_at is not None and b.snapshot.next_at is not None,
        "the first run of each collector to finish",
    )
    assert counts == {"a": 1, "b": 1}

    group.pause()
    assert group.paused and a.paused and b.paused
    group.resume()
    assert not group.paused
    await wait_until(lambda: counts == {"a": 2, "b": 2}, "resume to trigger a run of each")
    await group.stop()


# -- 10. shutdown --------------------------------------------------------------------


async def test_stop_leaves_no_threads_or_tasks(make_collector: Any, kind: str) -> None:
    gate = Gate()
    gate.release.set()
    collector = make_collector(gate.fn(kind), interval_s=0.01)
    collector.start()
    await wait_until(lambda: gate.calls >= 3, "three scheduled runs")

    await collector.stop()

    assert collector_threads() == []
    assert other_tasks() == set()
    calls = gate.calls
    await asyncio.sleep(0.05)
    assert gate.calls == calls, "collection continued after stop()"


async def test_stop_during_a_cooperative_sync_run(make_collector: Any) -> None:
    entered = threading.Event()
    contexts: list[CollectContext[str]] = []
    noticed = threading.Event()

    def collect(ctx: CollectContext[str]) -> str:
        contexts.append(ctx)
        entered.set()
        if ctx.cancelled.wait(WAIT_LIMIT_S * 2):
            noticed.set()
        return "finished anyway"

    collector = make_collector(collect, name="coop", interval_s=0.01)
    collector.start()
    await wait_for_event(entered, "the scheduled run to start")
    assert collector_threads("coop")

    await collector.stop()

    assert contexts[0].cancelled.is_set()
    assert noticed.is_set()
    assert collector_threads() == []
    assert other_tasks() == set()
    assert collector.snapshot.refreshing is False
    assert collector.snapshot.value is None, "a cancelled run must not publish its value"


async def test_stop_while_a_refresh_caller_waits_returns_a_snapshot(make_collector: Any) -> None:
    """A caller that was not cancelled must not get CancelledError because the collector stopped."""

    def collect(ctx: CollectContext[str]) -> str:
        if ctx.previous is None:
            return "good"
        ctx.cancelled.wait(WAIT_LIMIT_S * 2)
        return "too late"

    collector = make_collector(collect)
    await collector.refresh()
    caller = asyncio.ensure_future(collector.refresh())
    await wait_until(lambda: collector.snapshot.refreshing, "the second run to start")

    await collector.stop()
    snap = await caller

    assert snap.value == "good"
    assert snap.refreshing is False
    assert other_tasks() == set()


async def test_refresh_racing_stop_leaves_nothing_behind(make_collector: Any) -> None:
    """A refresh that starts while stop() is waiting for the schedule is stopped too."""
    entered = threading.Event()

    def collect(ctx: CollectContext[str]) -> str:
        if ctx.previous is None:
            return "good"
        entered.set()
        ctx.cancelled.wait(WAIT_LIMIT_S * 2)
        return "should have been cancelled"

    collector = make_collector(collect, name="racer", interval_s=60.0)
    collector.start()
    await wait_until(lambda: collector.snapshot.generation == 1, "the first scheduled run")
    # Runs as soon as stop() first yields, i.e. while it awaits the cancelled schedule.
    racer = asyncio.ensure_future(collector.refresh())

    await collector.stop()

    assert collector_threads("racer") == [], "a run started during stop() is still working"
    assert other_tasks() <= {racer}
    await wait_until(racer.done, "the racing refresh to end")
    assert racer.result().value == "good"
    assert other_tasks() == set()


async def test_caller_cancelled_during_stop_still_sees_its_cancellation(make_collector: Any) -> None:
    gate = Gate()
    make_collector.release_on_teardown(gate.release)
    collector = make_collector(gate.async_)
    caller = asyncio.ensure_future(collector.refresh())
    await wait_for_event(gate.entered, "the run to start")

    caller.cancel()
    await collector.stop()

    with pytest.raises(asyncio.CancelledError):
        await caller


async def test_stop_is_idempotent_and_works_before_start(make_collector: Any) -> None:
    never_started = make_collector(lambda ctx: "x")
    await never_started.stop()
    await never_started.stop()
    assert never_started.snapshot.generation == 0

    collector = make_collector(lambda ctx: "x", interval_s=0.01)
    collector.start()
    await wait_until(lambda: collector.snapshot.generation >= 2, "two scheduled runs")
    await collector.stop()
    await collector.stop()
    assert collector_threads() == []
    assert other_tasks() == set()


async def test_group_stop_leaves_no_threads_or_tasks(make_collector: Any) -> None:
    sync_gate, async_gate = Gate(), Gate()
    sync_gate.release.set()
    async_gate.release.set()
    entered = threading.Event()

    def in_flight(ctx: CollectContext[str]) -> str:
        entered.set()
        ctx.cancelled.wait(WAIT_LIMIT_S * 2)
        return "cancelled"

    group = CollectorGroup(
        {
            "sync": make_collector(sync_gate.sync, interval_s=0.01),
            "async": make_collector(async_gate.async_, interval_s=0.01),
            "busy": make_collector(in_flight, interval_s=0.01),
        }
    )
    group.start()
    await wait_until(lambda: sync_gate.calls >= 2 and async_gate.calls >= 2, "runs of every collector")
    await wait_for_event(entered, "the busy collector's run")

    await group.stop()

    assert collector_threads() == []
    assert other_tasks() == set()
    await group.stop()  # idempotent too


def test_thread_finishing_after_its_loop_closed_is_quiet() -> None:
    """A worker that outlives its event loop must end without an exception in the thread."""
    release = threading.Event()
    failures: list[threading.ExceptHookArgs] = []
    previous_hook = threading.excepthook
    threading.excepthook = failures.append
    try:

        def collect(ctx: CollectContext[str]) -> str:
            release.wait(WAIT_LIMIT_S * 2)  # ignores ctx.cancelled
            return "orphan"

        collector = Collector("orphan", collect, interval_s=60.0, timeout_s=0.05)
        loop = asyncio.new_event_loop()
        try:
            snap = loop.run_until_complete(collector.refresh())
        finally:
            loop.close()
        assert snap.error is not None and "timed out" in snap.error

        release.set()
        deadline = time.monotonic() + WAIT_LIMIT_S
        while collector_threads("orphan"):
            if time.monotonic() > deadline:
                pytest.fail("the orphaned worker thread never ended")
            time.sleep(0.005)
    finally:
        release.set()
        threading.excepthook = previous_hook

    assert failures == []


# -- 11. force and previous ----------------------------------------------------------


async def test_force_and_previous_reach_the_collect_function(make_collector: Any, kind: str) -> None:
    contexts: list[CollectContext[str]] = []
    outcomes: list[Any] = ["v1", RuntimeError("fails"), "v3"]

    def sync_collect(ctx: CollectContext[str]) -> str:
        contexts.append(ctx)
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def async_collect(ctx: CollectContext[str]) -> str:
        return sync_collect(ctx)

    collector = make_collector(sync_collect if kind == "sync" else async_collect, timeout_s=2.0)
    await collector.refresh(force=True)
    await collector.refresh()
    await collector.refresh(force=True)

    assert [c.force for c in contexts] == [True, False, True]
    assert [c.previous for c in contexts] == [None, "v1", "v1"], "previous is the last good value"
    assert all(0.0 <= c.remaining_s() <= 2.0 for c in contexts)


async def test_scheduled_runs_are_not_forced(make_collector: Any) -> None:
    gate = Gate()
    gate.release.set()
    collector = make_collector(gate.sync, interval_s=0.01)
    collector.start()
    await wait_until(lambda: gate.calls >= 2, "two scheduled runs")
    await collector.stop()
    assert gate.contexts and not any(c.force for c in gate.contexts)


# -- 12. the JSON envelope -----------------------------------------------------------


class State(enum.StrEnum):
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class Reading:
    state: State
    path: Path
    tags: tuple[str, ...]
    load: float
    counts: dict[State, int]


ENVELOPE_KEYS = {"ok", "error", "age_s", "refreshing", "duration_s", "value"}


def dumps_strict(obj: Any) -> str:
    return json.dumps(obj, allow_nan=False)


async def test_envelope_before_any_collection(make_collector: Any) -> None:
    collector = make_collector(lambda ctx: "x")
    env = envelope(collector.snapshot, now=time.time())
    assert set(env) == ENVELOPE_KEYS
    assert env == {
        "ok": False, "error": None, "age_s": None, "refreshing": False,
        "duration_s": None, "value": None,
    }
    dumps_strict(env)


async def test_envelope_of_a_dataclass_value_is_plain_json(make_collector: Any) -> None:
    reading = Reading(
        state=State.DOWN,
        path=Path("/var/log/netmonitor/pcap"),
        tags=("web-1", "eu"),
        load=math.nan,
        counts={State.UP: 3, State.DOWN: 1},
    )
    outcomes: list[Any] = [reading, OSError("Permission denied")]

    def collect(ctx: CollectContext[Reading]) -> Reading:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    collector = make_collector(collect)
    snap = await collector.refresh()
    assert snap.taken_at is not None
    env = envelope(snap, now=snap.taken_at + 2.5)

    assert set(env) == ENVELOPE_KEYS
    assert env["ok"] is True
    assert env["error"] is None
    assert env["refreshing"] is False
    assert env["age_s"] == pytest.approx(2.5)
    assert isinstance(env["duration_s"], float) and env["duration_s"] >= 0.0
    expected_value = {
        "state": "down",
        "path": "/var/log/netmonitor/pcap",
        "tags": ["web-1", "eu"],
        "load": None,
        "counts": {"up": 3, "down": 1},
    }
    assert env["value"] == expected_value
    assert json.loads(dumps_strict(env))["value"] == expected_value

    failed = await collector.refresh()
    env = envelope(failed, now=snap.taken_at + 1.0)
    assert set(env) == ENVELOPE_KEYS
    assert env["ok"] is False
    assert env["error"] == "Permission denied"
    assert env["value"] == expected_value, "after an error the previous value stays"
    assert env["age_s"] == pytest.approx(1.0)
    dumps_strict(env)


def test_envelope_age_never_negative_and_refreshing_shown() -> None:
    snap = Snapshot(name="x", value=1, taken_at=100.0, duration_s=0.123456, refreshing=True)
    env = envelope(snap, now=99.0)
    assert env["age_s"] == 0.0
    assert env["refreshing"] is True
    assert env["duration_s"] == 0.1235


def test_to_jsonable_edge_cases() -> None:
    assert to_jsonable([math.inf, -math.inf, 1.5, True, None]) == [None, None, 1.5, True, None]
    assert to_jsonable({1: frozenset()}) == {"1": []}
    with pytest.raises(TypeError, match="object"):
        to_jsonable(object())


async def test_resume_during_a_run_triggers_the_next_run_at_once() -> None:
    """A resume() that lands while a run is in progress is not lost to the interval."""
    release = threading.Event()
    calls: list[int] = []

    def collect(ctx: CollectContext[int]) -> int:
        calls.append(1)
        if len(calls) == 1:
            release.wait(10)
        return len(calls)

    collector: Collector[int] = Collector("resume", collect, interval_s=3600, timeout_s=30)
    collector.start()
    try:
        await wait_until(lambda: len(calls) == 1, "first run to start")
        collector.pause()
        collector.resume()
        release.set()
        await wait_until(lambda: len(calls) == 2, "a second run right after the resumed one")
    finally:
        release.set()
        await collector.stop()


async def test_system_exit_in_a_sync_collect_becomes_an_error() -> None:
    def collect(ctx: CollectContext[int]) -> int:
        raise SystemExit(3)

    collector: Collector[int] = Collector("exit", collect, interval_s=1, timeout_s=5)
    snapshot = await collector.refresh()
    assert snapshot.error == "collect raised SystemExit: 3"
    await collector.stop()
