"""Benchmark: the session registry on SQLite and PostgreSQL beside the incident's design.

Run as ``.venv/bin/python -m bench.sessions [--quick]``. For each store it measures, the
same way: transitions per second with 1 and 4 writers (processes for the registry;
threads in one process for the incident's module dicts behind one threading.Lock, the
only concurrency that design has), snapshot latency at 10,000 sessions, invariant
violations seen by a snapshotting reader over 100,000 transitions by 4 contending
writers, and how long a transition takes to show up through the panel's collector.

Targets (issue #4): >= 2,000 transitions/s across 4 writers on each database; snapshot of
10,000 sessions <= 30 ms; zero violations; a transition visible within 1 s.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from backends.collector import CollectContext
from backends.sessions import Registry, RegistryError, SessionState, Tombstone
from backends.sessions.follow import RegistryFollower
from backends.sessions.model import (
    ALLOWED_FROM,
    IllegalTransition,
    SessionExists,
    UnknownSession,
)
from backends.sessions.postgres_store import PostgresRegistry
from backends.sessions.simulate import WorkerPlan, drive, run_worker

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
SNAPSHOT_SESSIONS = 10_000
CONSISTENCY_TRANSITIONS = 100_000
PANEL_INTERVAL_S = 0.5  # the default [sessions] interval
#: The libpq option that lets PostgreSQL acknowledge a commit before its WAL reaches disk.
ASYNC_COMMIT = "&options=-c%20synchronous_commit%3Doff"


class LockedDicts:
    """The incident's proposed fix: module-level dicts, one threading.Lock around every access."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_state: dict[SessionState, dict[str, dict[str, Any]]] = {s: {} for s in SessionState}
        self.timestamps: dict[str, float] = {}
        self.cursor = 0

    def _move(self, session_id: str, target: SessionState) -> None:
        with self.lock:
            for state, table in self.by_state.items():
                if session_id in table:
                    if state not in ALLOWED_FROM[target]:
                        raise IllegalTransition(session_id, state, str(target))
                    self.by_state[target][session_id] = table.pop(session_id)
                    self.timestamps[session_id] = time.time()
                    self.cursor += 1
                    return
            raise UnknownSession(session_id)

    def start(self, session_id: str, **fields: Any) -> None:
        with self.lock:
            if session_id in self.timestamps:
                raise SessionExists(session_id, None)
            self.by_state[SessionState.ACTIVE][session_id] = dict(fields)
            self.timestamps[session_id] = time.time()
            self.cursor += 1

    def complete(self, session_id: str, result: Any = None) -> None:
        self._move(session_id, SessionState.COMPLETED)

    def stop(self, session_id: str) -> None:
        self._move(session_id, SessionState.STOPPED)

    def fail(self, session_id: str, error: str) -> None:
        self._move(session_id, SessionState.FAILED)

    def expire(self, session_id: str) -> None:
        self._move(session_id, SessionState.EXPIRED)

    def snapshot(self) -> tuple[int, dict[SessionState, list[tuple[str, dict[str, Any]]]]]:
        with self.lock:
            return self.cursor, {state: list(table.items()) for state, table in self.by_state.items()}


@dataclass(frozen=True, slots=True)
class Results:
    one_writer: float
    four_writers: float
    snapshot_ms: float
    violations: int | None
    transitions_checked: int
    visible_s: float | None


def transitions_per_s(url: str, writers: int, seconds: float) -> float:
    plans = [WorkerPlan(url, n, 0.0, seconds, progress=False) for n in range(writers)]
    with multiprocessing.get_context("spawn").Pool(writers) as pool:
        results = pool.map(run_worker, plans)
    errors = [r.error for r in results if r.error]
    if errors:
        raise RegistryError(errors[0])
    return sum(r.transitions for r in results) / max(r.elapsed_s for r in results)


def dict_transitions_per_s(writers: int, seconds: float) -> float:
    store = LockedDicts()
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda n=n: results.append(drive(store, WorkerPlan("dicts", n, 0.0, seconds, progress=False))))
        for n in range(writers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(r.transitions for r in results) / max(r.elapsed_s for r in results)


def median_ms(call: Callable[[], object], runs: int = 15) -> float:
    call()  # warm: connection opened, pages cached
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def fill(start: Callable[[str], object], finish: Callable[[str, int], object]) -> None:
    for n in range(SNAPSHOT_SESSIONS):
        start(f"snap-{n}")
        finish(f"snap-{n}", n)


def registry_snapshot_ms(url: str) -> float:
    with Registry.open(url) as registry:
        def finish(session_id: str, n: int) -> None:
            if n % 4 == 1:
                registry.complete(session_id)
            elif n % 4 == 2:
                registry.stop(session_id)
            elif n % 4 == 3:
                registry.fail(session_id, "x")
        fill(registry.start, finish)
        count = sum(registry.snapshot().counts.values())
        assert count >= SNAPSHOT_SESSIONS, count
        return median_ms(registry.snapshot)


def dict_snapshot_ms() -> float:
    store = LockedDicts()
    fill(store.start, lambda session_id, n: n % 2 and store.complete(session_id))
    return median_ms(store.snapshot)


def violations_over(url: str, transitions: int) -> tuple[int, int]:
    """4 contending writers until ``transitions`` more events exist; a reader checks every snapshot."""
    with Registry.open(url) as reader:
        target = reader.cursor() + transitions
        stop = multiprocessing.get_context("spawn").Event()
        context = multiprocessing.get_context("spawn")
        writers = [context.Process(target=_contend_until, args=(url, n, stop)) for n in range(4)]
        for writer in writers:
            writer.start()
        violations, previous_ids, previous_cursor, start_cursor = 0, set(), -1, reader.cursor()
        try:
            while (snap := reader.snapshot()).cursor < target:
                ids = [s.id for sessions in snap.by_state.values() for s in sessions]
                violations += (len(ids) != len(set(ids))) + (sum(snap.counts.values()) != len(ids))
                violations += snap.cursor < previous_cursor
                violations += sum(not isinstance(reader.get(gone), Tombstone) for gone in previous_ids - set(ids))
                previous_ids, previous_cursor = set(ids), snap.cursor
        finally:
            stop.set()
            for writer in writers:
                writer.join()
        return violations, reader.cursor() - start_cursor


def _contend_until(url: str, number: int, stop: Any) -> None:
    run_worker(WorkerPlan(url, number, 0.0, 3600.0, progress=False, contend=True), stop)


def visible_within_s(url: str, trials: int = 10) -> float:
    """The worst time from a commit to the collector's value holding it.

    A poller thread runs the panel's collect function every PANEL_INTERVAL_S, as the
    collector does; commits land at different points of its cycle.
    """
    follower = RegistryFollower(url)
    seen: dict[str, float] = {}
    stop = threading.Event()

    def poll() -> None:
        view = None
        while not stop.is_set():
            view = follower(CollectContext(previous=view, force=False, deadline=time.monotonic() + 10))
            now = time.monotonic()
            for session in view.sessions:
                seen.setdefault(session.id, now)
            stop.wait(PANEL_INTERVAL_S)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    worst = 0.0
    with Registry.open(url) as writer:
        for trial in range(trials):
            session_id = f"visible-{uuid.uuid4().hex[:8]}"
            time.sleep(PANEL_INTERVAL_S * (1 + trial % 7 / 7))
            committed = time.monotonic()
            writer.start(session_id)
            while session_id not in seen:
                time.sleep(0.01)
            worst = max(worst, seen[session_id] - committed)
    stop.set()
    poller.join()
    follower.close()
    return worst


def measure_registry(new_url: Callable[[], str], seconds: float, transitions: int) -> Results:
    """Each measurement on a fresh registry, so the snapshot holds exactly 10,000 sessions."""
    urls: list[str] = []

    def fresh() -> str:
        urls.append(new_url())
        Registry.open(urls[-1]).close()
        return urls[-1]

    try:
        url = fresh()
        one = transitions_per_s(url, 1, seconds)
        four = transitions_per_s(fresh(), 4, seconds)
        snapshot = registry_snapshot_ms(fresh())
        violations, checked = violations_over(fresh(), transitions)
        return Results(one, four, snapshot, violations, checked, visible_within_s(fresh()))
    finally:
        for url in urls:
            registry = Registry.open(url)
            if isinstance(registry, PostgresRegistry):
                registry.drop()
            registry.close()


def measure_dicts(seconds: float) -> Results:
    return Results(dict_transitions_per_s(1, seconds), dict_transitions_per_s(4, seconds), dict_snapshot_ms(),
                   None, 0, None)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sessions")
    parser.add_argument("--quick", action="store_true", help="short runs and 10,000 transitions (a smoke test)")
    args = parser.parse_args()
    seconds = 2.0 if args.quick else 5.0
    transitions = 10_000 if args.quick else CONSISTENCY_TRANSITIONS
    columns: dict[str, Results | str] = {"incident dicts+Lock": measure_dicts(seconds)}
    with tempfile.TemporaryDirectory() as directory:
        files = iter(range(100))
        columns["SQLite (WAL)"] = measure_registry(
            lambda: f"sqlite:///{directory}/bench-{next(files)}.db", seconds, transitions)
    for name, options in (("PostgreSQL", ""), ("PostgreSQL async commit", ASYNC_COMMIT)):
        try:
            columns[name] = measure_registry(
                lambda options=options: f"{POSTGRES_URL}?schema=bench_{uuid.uuid4().hex[:8]}{options}",
                seconds, transitions)
        except RegistryError as error:
            columns[name] = f"not measured: {error}"
    report(columns)


def report(columns: dict[str, Results | str]) -> None:
    peer = columns["incident dicts+Lock"]
    assert isinstance(peer, Results)
    rows = [
        ("transitions/s, 1 writer", lambda r: f"{r.one_writer:,.0f}", lambda r: r.one_writer / peer.one_writer),
        ("transitions/s, 4 writers", lambda r: f"{r.four_writers:,.0f}", lambda r: r.four_writers / peer.four_writers),
        (f"snapshot of {SNAPSHOT_SESSIONS:,} (median ms)", lambda r: f"{r.snapshot_ms:.1f}",
         lambda r: r.snapshot_ms / peer.snapshot_ms),
        ("invariant violations", lambda r: "n/a" if r.violations is None else f"{r.violations} in {r.transitions_checked:,}",
         None),
        ("commit -> collector value (worst, s)", lambda r: "n/a" if r.visible_s is None else f"{r.visible_s:.2f}", None),
    ]
    names = list(columns)
    print(f"{'':38}" + "".join(f"{name:>26}" for name in names))
    for label, cell, ratio in rows:
        line = f"{label:38}"
        for name in names:
            result = columns[name]
            if isinstance(result, str):
                line += f"{'-':>26}"
                continue
            text = cell(result)
            if ratio is not None and name != "incident dicts+Lock":
                text += f" ({ratio(result):.2f}x)"
            line += f"{text:>26}"
        print(line)
    for name, result in columns.items():
        if isinstance(result, str):
            print(f"{name}: {result}")
    print("ratios are against the incident's dicts+Lock (one process, threads), measured in the same run;")
    print("targets: >= 2,000 transitions/s with 4 writers, snapshot <= 30 ms, 0 violations, visible <= 1 s")


if __name__ == "__main__":
    main()
