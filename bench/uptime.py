"""The real console under load after minutes of uptime (issue 12, item 5).

Shared by ``bench.pcap --uptime-minutes M`` (a big tree fully rescanned every second) and
``bench.table --uptime-minutes M`` (100,000 sessions churned by ``sessions simulate``):
the console runs in a pty (bench.console_pty) with the load beside it; for the first M
minutes an operator glances at it now and then (a key every 10 s), then for a minute
presses keys about every half second while the figures are taken: keypress → screen
p50/p95 and the median second's loop-lag p99 from the console's own lag log.
"""

from __future__ import annotations

import itertools
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.console_pty import ConsolePty, median, percentile

GLANCE_EVERY_S = 10.0
MEASURE_S = 60.0
KEY_SPACING_S = 0.5
#: The issue's targets after the uptime.
KEY_P95_TARGET_MS = 100.0
LAG_P99_TARGET_MS = 25.0


@dataclass(frozen=True, slots=True)
class UnderLoad:
    """What one measured minute after the uptime showed."""

    uptime_s: float
    key_p50_ms: float
    key_p95_ms: float
    presses: int
    unanswered: int
    lag_p99_median_ms: float
    cpu_share: float
    rss_mb: float


def under_load(console_args: Sequence[str], keys: Sequence[str], uptime_s: float, *, ready: bytes,
               first_keys: Sequence[str] = (), measure_s: float = MEASURE_S,
               size: tuple[int, int] = (160, 48)) -> UnderLoad:
    """Start the console, press ``first_keys`` once (to focus a panel), let it run ``uptime_s``
    with one of ``keys`` every GLANCE_EVERY_S, then measure. Each key must change the screen."""
    with tempfile.TemporaryDirectory(prefix="opsconsole-uptime-") as work:
        console = ConsolePty(list(console_args), Path(work) / "lag.jsonl", size=size)
        try:
            console.wait_for(ready)
            for key in first_keys:
                console.press(key)
            started = time.monotonic()
            cycle = itertools.cycle(keys)
            while time.monotonic() - started < uptime_s:
                console.press(next(cycle))
                time.sleep(min(GLANCE_EVERY_S, max(0.0, uptime_s - (time.monotonic() - started))))
            wall_from = time.time()
            before = console.usage()
            latencies: list[float] = []
            unanswered = 0
            end = time.monotonic() + measure_s
            while time.monotonic() < end:
                answer = console.press(next(cycle))
                if answer is None:
                    unanswered += 1
                else:
                    latencies.append(answer * 1000)
                time.sleep(max(0.0, KEY_SPACING_S - (answer or 0.0)))
            after = console.usage()
            lags = [line["p99_ms"] for line in console.lag_lines(wall_from)]
            console.quit()
        finally:
            console.close()
    return UnderLoad(
        uptime_s=time.monotonic() - started - measure_s,
        key_p50_ms=median(latencies),
        key_p95_ms=percentile(latencies, 0.95),
        presses=len(latencies),
        unanswered=unanswered,
        lag_p99_median_ms=median(lags),
        cpu_share=(after.cpu_s - before.cpu_s) / (after.at - before.at),
        rss_mb=after.rss_mb,
    )


def report(title: str, figures: UnderLoad) -> list[str]:
    """The figures and the issue's two targets, as lines to print."""
    return [
        f"\n{title}, after {figures.uptime_s / 60:.1f} min of uptime (one minute measured):",
        f"  keypress → screen p50 {figures.key_p50_ms:.1f} ms, p95 {figures.key_p95_ms:.1f} ms"
        f" ({figures.presses} presses, {figures.unanswered} without an answer within 2 s)",
        f"  loop lag p99, median second: {figures.lag_p99_median_ms:.1f} ms",
        f"  console process: {figures.cpu_share:.0%} of a core, RSS {figures.rss_mb:.1f} MB",
        f"  {'PASS' if figures.key_p95_ms <= KEY_P95_TARGET_MS and not figures.unanswered else 'FAIL'}"
        f"  keypress p95 ≤ {KEY_P95_TARGET_MS:.0f} ms (every press answered)",
        f"  {'PASS' if figures.lag_p99_median_ms <= LAG_P99_TARGET_MS else 'FAIL'}"
        f"  loop-lag p99 median second ≤ {LAG_P99_TARGET_MS:.0f} ms",
    ]
