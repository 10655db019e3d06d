"""Worker processes that drive sessions through random transitions: the demo's activity,
the consistency tests' load and the benchmark's writers are all this one loop.

Each worker owns the ids it starts (``w<n>-<pid>-<k>``), so its moves are legal by
construction; with ``contend`` it also tries moves on ids any worker may hold, and the
registry's preconditions refuse the ones another worker got to first.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from backends.sessions.model import RegistryError, SessionState
from backends.sessions.registry import Registry

#: Sessions a worker keeps active at once before it starts finishing them.
MAX_ACTIVE = 20
#: Finished sessions a worker remembers for later expiry.
MAX_FINISHED = 50
SHARED_IDS = 200
LABELS = ("pcap analysis", "flow export", "dns summary", "tls audit", "top talkers", "replay")
OWNERS = ("alice", "bob", "carol", "dave", "erin")


@dataclass(frozen=True, slots=True)
class WorkerPlan:
    url: str
    number: int
    rate: float  # operations per second for this worker; 0 means as fast as it can
    duration_s: float
    progress: bool = True  # also send progress and touch (not state changes)
    contend: bool = False
    seed: int | None = None


@dataclass(slots=True)
class WorkerResult:
    number: int
    ops: Counter[str] = field(default_factory=Counter)
    refused: int = 0
    elapsed_s: float = 0.0
    error: str | None = None

    @property
    def transitions(self) -> int:
        return sum(count for op, count in self.ops.items() if op not in ("progress", "touch"))


def run_worker(plan: WorkerPlan, stop: threading.Event | None = None) -> WorkerResult:
    """One worker's loop until the duration ends or ``stop`` is set; returns what it did."""
    try:
        registry = Registry.open(plan.url, actor=f"simulate worker {plan.number} pid {os.getpid()}")
    except RegistryError as error:
        return WorkerResult(plan.number, error=str(error))
    with registry:
        return drive(registry, plan, stop)


def drive(registry: Any, plan: WorkerPlan, stop: threading.Event | None = None) -> WorkerResult:
    """The loop itself, on anything with the Registry's write methods (the benchmark's peer too)."""
    rng = random.Random(plan.seed if plan.seed is not None else os.getpid() ^ time.time_ns())
    result = WorkerResult(plan.number)
    active: list[str] = []
    finished: list[str] = []
    started = time.monotonic()
    deadline = started + plan.duration_s
    interval = 1.0 / plan.rate if plan.rate > 0 else 0.0
    next_at = started
    serial = 0
    stop = stop or threading.Event()
    prefix = f"w{plan.number}-{os.getpid()}"
    while (now := time.monotonic()) < deadline and not stop.is_set():
        if interval:
            if now < next_at:
                stop.wait(min(next_at - now, deadline - now))
                continue
            next_at += interval
        try:
            op = _step(registry, rng, plan, active, finished, f"{prefix}-{serial}")
        except RegistryError:
            result.refused += 1  # another worker moved a contended session first
            continue
        if op == "start":
            serial += 1
        result.ops[op] += 1
    result.elapsed_s = time.monotonic() - started
    return result


def _step(
    registry: Registry, rng: random.Random, plan: WorkerPlan, active: list[str], finished: list[str], new_id: str
) -> str:
    if plan.contend and rng.random() < 0.5:
        return _contend(registry, rng)
    if finished and (len(finished) >= MAX_FINISHED or rng.random() < 0.05):
        registry.expire(finished.pop(rng.randrange(len(finished))))
        return "expire"
    if len(active) < MAX_ACTIVE and (not active or rng.random() < 0.4):
        registry.start(new_id, label=rng.choice(LABELS), owner=rng.choice(OWNERS))
        active.append(new_id)
        return "start"
    session_id = rng.choice(active)
    roll = rng.random()
    if plan.progress and roll < 0.5:
        registry.progress(session_id, round(rng.random(), 2))
        return "progress"
    if plan.progress and roll < 0.6:
        registry.touch(session_id)
        return "touch"
    active.remove(session_id)
    finished.append(session_id)
    end = rng.choices(("complete", "stop", "fail"), weights=(6, 2, 1))[0]
    if end == "complete":
        registry.complete(session_id, result={"rows": rng.randrange(1000)})
    elif end == "stop":
        registry.stop(session_id)
    else:
        registry.fail(session_id, "simulated failure")
    return end


def _contend(registry: Registry, rng: random.Random) -> str:
    """A move on a shared id that any worker may have moved already: often refused."""
    session_id = f"shared-{rng.randrange(SHARED_IDS)}"
    op = rng.choice(("start", "complete", "stop", "fail", "expire", "touch", "purge"))
    if op == "purge":
        registry.purge(0.05)  # finished ones leave, each with a tombstone
    elif op == "start":
        registry.start(session_id)
    elif op == "fail":
        registry.fail(session_id, "contended")
    else:
        getattr(registry, op)(session_id)
    return op


def run_simulation(url: str, workers: int, rate: float, duration_s: float, **options: object) -> list[WorkerResult]:
    """Run ``workers`` processes for ``duration_s``; ``rate`` is the total operations per second."""
    plans = [
        WorkerPlan(url, n, rate / workers if rate > 0 else 0.0, duration_s, **options)  # type: ignore[arg-type]
        for n in range(workers)
    ]
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers) as pool:
        return pool.map(run_worker, plans)


def ensure_registry(url: str) -> None:
    """Create the registry's tables once before the workers race to."""
    Registry.open(url).close()


__all__ = ["SessionState", "WorkerPlan", "WorkerResult", "ensure_registry", "run_simulation", "run_worker"]
