"""The console's own responsiveness probe: how late the event loop wakes a periodic timer."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import aiofiles


@dataclass(frozen=True, slots=True)
class LagStats:
    p50_ms: float
    p99_ms: float
    max_ms: float
    samples: int


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list (0.0 when empty)."""
    if not sorted_values:
        return 0.0
    # Nearest rank is ceil(fraction * n), 1-based. Not round(x + 0.5): round() is half-to-even,
    # so that picked one rank too high whenever fraction * n was an odd integer (p99 of 100
    # values gave the maximum). The inner round() absorbs float noise (0.07 * 100 = 7.000000000000001).
    rank = math.ceil(round(fraction * len(sorted_values), 9))
    return sorted_values[min(len(sorted_values) - 1, max(0, rank - 1))]


class LagProbe:
    """Sleeps ``period_s`` at a time and records how late each wake-up was, over a window."""

    def __init__(
        self, period_s: float = 0.05, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.period_s = period_s
        self.window_s = window_s
        self._clock = clock
        self._samples: deque[tuple[float, float]] = deque()

    def record(self, at: float, lag_s: float) -> None:
        self._samples.append((at, max(0.0, lag_s)))
        while self._samples and self._samples[0][0] < at - self.window_s:
            self._samples.popleft()

    def stats(self) -> LagStats:
        lags = sorted(lag for _, lag in self._samples)
        return LagStats(
            p50_ms=percentile(lags, 0.50) * 1000,
            p99_ms=percentile(lags, 0.99) * 1000,
            max_ms=(lags[-1] if lags else 0.0) * 1000,
            samples=len(lags),
        )

    async def run(self) -> None:
        while True:
            expected = self._clock() + self.period_s
            await asyncio.sleep(self.period_s)
            now = self._clock()
            self.record(now, now - expected)


async def write_lag_log(
    probe: LagProbe, path: Path, every_s: float = 1.0, extra: Callable[[], Mapping[str, int]] | None = None
) -> None:
    """Append one JSON line of the probe's stats to ``path`` every second (file I/O off the loop);
    ``extra`` adds counts of what the app holds (see console.vitals)."""
    async with aiofiles.open(path, "a") as log:
        while True:
            await asyncio.sleep(every_s)
            stats = probe.stats()
            line = {"t": round(time.time(), 3), "p50_ms": round(stats.p50_ms, 3),
                    "p99_ms": round(stats.p99_ms, 3), "max_ms": round(stats.max_ms, 3)}
            if extra is not None:
                line.update(extra())
            await log.write(json.dumps(line) + "\n")
            await log.flush()
