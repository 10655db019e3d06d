"""The collector runtime: one asyncio task per data source, feeding immutable snapshots.

Every panel, `opsconsole snapshot` and anything else that reads state goes through a
:class:`Collector`, so there is one code path for collection. The contract (DESIGN.md):
blocking work runs off the event loop; `refresh()` is single-flight; a reader always gets
the last good snapshot at once; a timeout or error keeps the last good value and records
the error, with exponential backoff on repeated errors; shutdown leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)

#: How long `stop()` waits for a cooperative worker thread to notice cancellation.
THREAD_JOIN_GRACE_S = 1.0

#: Doublings beyond this cannot matter (2**60 intervals) and would overflow a float.
_MAX_BACKOFF_DOUBLINGS = 60


@dataclass(frozen=True, slots=True)
class Snapshot(Generic[T]):
    """What a collector knows at one moment; never mutated, replaced on every change.

    ``value``, ``taken_at`` and ``duration_s`` describe the last *good* collection, so
    after an error they still hold the previous value (stale-while-revalidate).
    Times are Unix seconds.
    """

    name: str
    value: T | None = None
    taken_at: float | None = None
    duration_s: float | None = None
    error: str | None = None
    error_at: float | None = None
    consecutive_errors: int = 0
    refreshing: bool = False
    generation: int = 0
    paused: bool = False
    next_at: float | None = None

    @property
    def ok(self) -> bool:
        """True when the last collection succeeded and a value exists."""
        return self.error is None and self.taken_at is not None

    def age_s(self, now: float) -> float | None:
        """Seconds since the value was taken, or None when there never was one."""
        return None if self.taken_at is None else max(0.0, now - self.taken_at)


@dataclass(frozen=True, slots=True)
class CollectContext(Generic[T]):
    """What a collect function gets: its previous value and a way to notice cancellation.

    A blocking collect function should check ``cancelled`` between units of work (or
    wait on it instead of sleeping): Python cannot kill a thread, so a timed-out or
    shut-down collection stops only when its function notices.
    """

    previous: T | None
    force: bool
    deadline: float
    cancelled: threading.Event = field(default_factory=threading.Event)

    def remaining_s(self) -> float:
        """Seconds left before the collector gives up on this run."""
        return max(0.0, self.deadline - time.monotonic())


class CollectTimeout(Exception):
    """A collection ran past its timeout; the previous value stays."""


class WorkerStillRunning(Exception):
    """A previous timed-out collection has not finished; no second one is started."""


SyncCollect = Callable[[CollectContext[T]], T]
AsyncCollect = Callable[[CollectContext[T]], Awaitable[T]]
Subscriber = Callable[[Snapshot[T]], None]


def backoff_delay(interval_s: float, consecutive_errors: int, max_s: float) -> float:
    """Delay before the next scheduled run: the interval, doubled per consecutive error.

    Capped at ``max_s`` (but never below the interval itself).
    """
    if consecutive_errors <= 0:
        return interval_s
    doublings = min(consecutive_errors, _MAX_BACKOFF_DOUBLINGS)
    return min(interval_s * 2.0**doublings, max(max_s, interval_s))


def describe_error(exc: BaseException) -> str:
    """One line for the status bar: the message, or the exception's type name if empty."""
    text = str(exc).strip().splitlines()[0].strip() if str(exc).strip() else ""
    return text or type(exc).__name__


class Collector(Generic[T]):
    """Runs one collect function on a schedule and publishes :class:`Snapshot` objects.

    ``collect`` is either a plain function (run in a dedicated daemon thread, so a hung
    system call never blocks the loop nor the interpreter's exit) or a coroutine
    function (run as a task on the loop). It receives a :class:`CollectContext`.
    """

    def __init__(
        self,
        name: str,
        collect: SyncCollect[T] | AsyncCollect[T],
        *,
        interval_s: float,
        timeout_s: float,
        backoff_max_s: float = 300.0,
    ) -> None:
        self.name = name
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.backoff_max_s = backoff_max_s
        self._collect = collect
        self._is_async = inspect.iscoroutinefunction(collect)
        self._snapshot: Snapshot[T] = Snapshot(name=name)
        self._subscribers: list[Subscriber[T]] = []
        self._inflight: asyncio.Task[Snapshot[T]] | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._running = asyncio.Event()
        self._running.set()
        self._wake = asyncio.Event()
        self._threads: list[threading.Thread] = []  # workers that may not have exited yet
        # Set by the worker as soon as its collect function returns or raises; the OS
        # thread may live a moment longer, which must not count as "still running".
        self._thread_collect_done = threading.Event()
        self._thread_collect_done.set()
        self._context: CollectContext[T] | None = None
        self.collections = 0  # runs started: lets tests assert "1 collection, not 50"

    # -- reading -------------------------------------------------------------------

    @property
    def snapshot(self) -> Snapshot[T]:
        """The latest snapshot, at once: never waits for a collection."""
        return self._snapshot

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def subscribe(self, callback: Subscriber[T]) -> Callable[[], None]:
        """Call ``callback`` on the loop with every new snapshot; returns an unsubscriber."""
        self._subscribers.append(callback)
        return lambda: self.unsubscribe(callback)

    def unsubscribe(self, callback: Subscriber[T]) -> None:
        if callback in self._subscribers:
            self._subscribers.remove(callback)

    # -- collecting ----------------------------------------------------------------

    async def refresh(self, *, force: bool = False) -> Snapshot[T]:
        """Collect now, or join the collection already running (single-flight).

        Callers that arrive during a run share that run's result. Cancelling one
        caller does not cancel the run for the others. If the run itself is cancelled
        (by `stop()`), callers that were not cancelled get the current snapshot.
        """
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.get_running_loop().create_task(
                self._run(force), name=f"collector-{self.name}-run"
            )
        inflight = self._inflight
        try:
            return await asyncio.shield(inflight)
        except asyncio.CancelledError:
            caller = asyncio.current_task()
            if inflight.cancelled() and caller is not None and not caller.cancelling():
                return self._snapshot  # the collector stopped; this caller was not cancelled
            raise

    async def _run(self, force: bool) -> Snapshot[T]:
        self.collections += 1
        self._publish(refreshing=True)
        started_wall, started = time.time(), time.monotonic()
        context: CollectContext[T] = CollectContext(
            previous=self._snapshot.value, force=force, deadline=started + self.timeout_s
        )
        self._context = context
        try:
            value = await self._call(context)
        except asyncio.CancelledError:
            context.cancelled.set()
            self._publish(refreshing=False)
            raise
        except Exception as exc:  # noqa: BLE001 - any failure becomes the snapshot's error
            context.cancelled.set()
            snap = self._publish(
                refreshing=False,
                error=describe_error(exc),
                error_at=time.time(),
                consecutive_errors=self._snapshot.consecutive_errors + 1,
                generation=self._snapshot.generation + 1,
            )
        else:
            snap = self._publish(
                refreshing=False,
                value=value,
                taken_at=started_wall,
                duration_s=time.monotonic() - started,
                error=None,
                error_at=None,
                consecutive_errors=0,
                generation=self._snapshot.generation + 1,
            )
        finally:
            self._context = None
        return snap

    async def _call(self, context: CollectContext[T]) -> T:
        if self._is_async:
            try:
                return await asyncio.wait_for(self._collect(context), self.timeout_s)  # type: ignore[arg-type]
            except TimeoutError:
                raise CollectTimeout(f"timed out after {self.timeout_s:g} s") from None
        if not self._thread_collect_done.is_set():
            raise WorkerStillRunning(
                f"previous collection still running after timeout ({self.timeout_s:g} s)"
            )
        future = self._start_thread(context)
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.timeout_s)
        except TimeoutError:
            raise CollectTimeout(f"timed out after {self.timeout_s:g} s") from None

    def _start_thread(self, context: CollectContext[T]) -> asyncio.Future[T]:
        """Run the blocking collect in a daemon thread of its own, resolving a future."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        # After a timeout nobody awaits the future; a late exception must not be
        # logged as "Future exception was never retrieved".
        future.add_done_callback(lambda done: done.cancelled() or done.exception())

        def deliver(value: T | None, error: BaseException | None) -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(value)  # type: ignore[arg-type]

        collect_done = threading.Event()

        def work() -> None:
            value: T | None = None
            error: BaseException | None = None
            try:
                value = self._collect(context)
            except Exception as exc:  # handed to the loop, not swallowed
                error = exc  # `exc` itself is unbound when the except block ends
            except BaseException as exc:  # noqa: BLE001 - SystemExit in a collector must not end the app
                error = RuntimeError(f"collect raised {type(exc).__name__}: {exc}")
            finally:
                collect_done.set()
            try:
                loop.call_soon_threadsafe(deliver, value, error)
            except RuntimeError:
                pass  # the loop closed while we worked: nobody is waiting any more

        self._thread_collect_done = collect_done
        thread = threading.Thread(target=work, name=f"collector-{self.name}", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        return future

    def _publish(self, **changes: object) -> Snapshot[T]:
        snapshot = replace(self._snapshot, paused=self.paused, **changes)  # type: ignore[arg-type]
        self._snapshot = snapshot
        for callback in list(self._subscribers):
            try:
                callback(snapshot)
            except Exception:  # a broken subscriber must not break collection or the others
                log.exception("collector %s: subscriber %r failed", self.name, callback)
        return snapshot

    # -- scheduling ----------------------------------------------------------------

    def next_delay_s(self) -> float:
        """Seconds until the next scheduled run, given the errors so far."""
        return backoff_delay(self.interval_s, self._snapshot.consecutive_errors, self.backoff_max_s)

    def start(self) -> None:
        """Start the schedule: collect now, then every interval (polls never overlap)."""
        if self._loop_task is None or self._loop_task.done():
            self._loop_task = asyncio.get_running_loop().create_task(
                self._schedule(), name=f"collector-{self.name}"
            )

    async def _schedule(self) -> None:
        while True:
            await self._running.wait()
            self._wake.clear()  # before the run, so a resume() during it is not lost
            await self.refresh()
            delay = self.next_delay_s()
            self._publish(next_at=None if self.paused else time.time() + delay)
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except TimeoutError:
                pass

    def pause(self) -> None:
        """Stop scheduled collection; an explicit `refresh()` still works."""
        self._running.clear()
        self._publish(next_at=None)

    def resume(self) -> None:
        """Resume scheduled collection with a run right away."""
        self._running.set()
        self._wake.set()
        self._publish()

    async def stop(self) -> None:
        """Cancel the schedule and any run, signal the worker thread, and wait for it briefly."""
        # Repeat until nothing is left: a refresh() may start a new run while we wait.
        while tasks := [t for t in (self._loop_task, self._inflight) if t is not None and not t.done()]:
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)
            for task in tasks:  # a run's failure is already in the snapshot
                if not task.cancelled():
                    task.exception()
        self._loop_task = self._inflight = None
        if self._context is not None:
            self._context.cancelled.set()
        deadline = time.monotonic() + THREAD_JOIN_GRACE_S
        while any(t.is_alive() for t in self._threads) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        self._threads = [t for t in self._threads if t.is_alive()]


class CollectorGroup:
    """The app's collectors by panel name, started, paused and stopped together."""

    def __init__(self, collectors: dict[str, Collector[object]]) -> None:
        self._collectors = dict(collectors)

    def __getitem__(self, name: str) -> Collector[object]:
        return self._collectors[name]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._collectors.values())

    def names(self) -> list[str]:
        return list(self._collectors)

    @property
    def paused(self) -> bool:
        return any(collector.paused for collector in self)

    def start(self) -> None:
        for collector in self:
            collector.start()

    def pause(self) -> None:
        for collector in self:
            collector.pause()

    def resume(self) -> None:
        for collector in self:
            collector.resume()

    async def stop(self) -> None:
        await asyncio.gather(*(collector.stop() for collector in self))
