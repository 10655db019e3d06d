"""bench.soak — issue 12: a console left open stays as light and as fast as in its first minute.

    .venv/bin/python -m bench.soak --minutes 60      # the issue's run
    .venv/bin/python -m bench.soak --minutes 3       # a quick look

Runs the real console (``python -m console --demo``) in a pseudo-terminal at 160x48
(bench.console_pty). Every minute has two halves: 30 s in which an operator presses keys
about every 1.5 s (panel switches, Down/Up, Enter/Esc on a detail view, ``/`` filters),
then 30 s with no key pressed. For the first minute (after the first 15 s) and the last
it prints: CPU share of the console process in each half, RSS, DOM nodes, reactive
watchers and signal subscribers (from the console's lag log, console.vitals), and
keypress → screen p50/p95 (time from the key's write to the first output after it; Esc
on its own line, as Textual waits ESCDELAY, 100 ms by default, to tell a lone Esc from
the start of a key's escape sequence),
with the ratio last/first and the issue's targets.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.console_pty import ConsolePty, median, percentile

#: What an operator does, in turn: each entry is one or more keys pressed 0.3 s apart.
#: Every key changes the screen (a press is timed to the first output after it, so a key
#: that changes nothing, like "2" on the Sessions panel already focused, would be timed to
#: the next second's repaint): the cycle ends on the PCAP panel, where it starts with "2",
#: and leaves every cursor where it found it (Down on the last of the Ports table's few
#: rows changes nothing: from minute 7 of a 60-minute run that press read 0.5-1 s).
OPERATOR: tuple[tuple[str, ...], ...] = (
    ("2",), ("down",), ("down",), ("up",), ("enter",), ("escape",), ("up",),
    ("3",), ("down",), ("enter",), ("escape",), ("up",),
    ("4",), ("down",), ("up",), ("enter",), ("escape",),
    ("1",), ("/",), ("2",), ("escape",), ("tab",), ("tab",), ("shift+tab",),
    ("/",), ("a",), ("escape",), ("1",),
)
KEY_SPACING_S = 1.5
SETTLE_S = 15.0


@dataclass(frozen=True, slots=True)
class Minute:
    index: int
    cpu_keys: float  # share of one core while keys were pressed
    cpu_idle: float  # share of one core with no key pressed
    rss_mb: float
    nodes: int
    watchers: int
    subscribers: int
    key_p50_ms: float
    key_p95_ms: float
    presses: int
    escape_p50_ms: float
    lag_p99_median_ms: float


def operator_keys() -> Iterator[str]:
    yield from itertools.chain.from_iterable(itertools.cycle(OPERATOR))


def press_for(console: ConsolePty, seconds: float, keys: Iterator[str], latencies: list[float],
              escapes: list[float]) -> None:
    """Press the operator's keys; Esc apart, since its answer includes the terminal's ESCDELAY."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        key = next(keys)
        answer = console.press("\x1b[Z" if key == "shift+tab" else key)
        if answer is not None:
            (escapes if key == "escape" else latencies).append(answer * 1000)
        time.sleep(max(0.0, KEY_SPACING_S - (answer or 0.0)))


def one_minute(console: ConsolePty, index: int, keys: Iterator[str], *, press_s: float = 30.0,
               idle_s: float = 30.0) -> Minute:
    """A minute of use: ``press_s`` pressing keys, then ``idle_s`` untouched."""
    wall_start = time.time()
    latencies: list[float] = []
    escapes: list[float] = []
    start = console.usage()
    press_for(console, press_s, keys, latencies, escapes)
    console.press("escape")  # leave no dialog or filter open for the idle half
    time.sleep(1.0)
    middle = console.usage()
    time.sleep(idle_s)
    end = console.usage()
    lines = console.lag_lines(wall_start)
    last = lines[-1] if lines else {}
    return Minute(
        index=index,
        cpu_keys=(middle.cpu_s - start.cpu_s) / (middle.at - start.at),
        cpu_idle=(end.cpu_s - middle.cpu_s) / (end.at - middle.at),
        rss_mb=end.rss_mb,
        nodes=int(last.get("nodes", -1)),
        watchers=int(last.get("watchers", -1)),
        subscribers=int(last.get("subscribers", -1)),
        key_p50_ms=median(latencies),
        key_p95_ms=percentile(latencies, 0.95),
        presses=len(latencies),
        escape_p50_ms=median(escapes),
        lag_p99_median_ms=median([line["p99_ms"] for line in lines]),
    )


def ratio(last: float, first: float) -> str:
    return f"{last / first:.2f}×" if first else "-"


def report(first: Minute, last: Minute, minutes: int) -> list[str]:
    rows = [
        ("CPU, keys pressed (% of a core)", first.cpu_keys * 100, last.cpu_keys * 100, "{:.1f}"),
        ("CPU, idle (% of a core)", first.cpu_idle * 100, last.cpu_idle * 100, "{:.1f}"),
        ("RSS (MB)", first.rss_mb, last.rss_mb, "{:.1f}"),
        ("DOM nodes", first.nodes, last.nodes, "{:.0f}"),
        ("reactive watchers", first.watchers, last.watchers, "{:.0f}"),
        ("signal subscribers", first.subscribers, last.subscribers, "{:.0f}"),
        ("keypress → screen p50 (ms)", first.key_p50_ms, last.key_p50_ms, "{:.1f}"),
        ("keypress → screen p95 (ms)", first.key_p95_ms, last.key_p95_ms, "{:.1f}"),
        ("Esc → screen p50 (ms; includes ESCDELAY)", first.escape_p50_ms, last.escape_p50_ms, "{:.1f}"),
        ("loop lag p99, median second (ms)", first.lag_p99_median_ms, last.lag_p99_median_ms, "{:.1f}"),
    ]
    lines = [f"| measure | first minute | minute {minutes} | last/first |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {name} | {fmt.format(a)} | {fmt.format(b)} | {ratio(b, a)} |" for name, a, b, fmt in rows]
    lines.append(f"\nkey presses measured: {first.presses} in the first minute, {last.presses} in the last")
    targets = [
        ("idle CPU last minute ≤ 1.2× first", last.cpu_idle <= 1.2 * first.cpu_idle + 0.005),
        ("idle CPU ≤ 5% of a core", last.cpu_idle <= 0.05),
        ("RSS growth ≤ 20 MB", last.rss_mb - first.rss_mb <= 20),
        ("DOM nodes, watchers, subscribers equal", (first.nodes, first.watchers, first.subscribers)
         == (last.nodes, last.watchers, last.subscribers)),
        ("keypress p95 at the end ≤ 50 ms", last.key_p95_ms <= 50),
        ("keypress p95 at the end ≤ 1.5× the start", last.key_p95_ms <= 1.5 * first.key_p95_ms),
    ]
    lines += [f"  {'PASS' if ok else 'FAIL'}  {name}" for name, ok in targets]
    return lines


def soak(minutes: int, console_args: Sequence[str], size: tuple[int, int]) -> tuple[Minute, Minute]:
    with tempfile.TemporaryDirectory(prefix="opsconsole-soak-") as work:
        console = ConsolePty(list(console_args), Path(work) / "lag.jsonl", size=size)
        try:
            console.wait_for(b"Sessions")
            time.sleep(SETTLE_S)
            keys = operator_keys()
            done: list[Minute] = []
            for index in range(1, minutes + 1):
                done.append(one_minute(console, index, keys))
                m = done[-1]
                print(f"minute {index:3}: cpu keys {m.cpu_keys:5.1%} idle {m.cpu_idle:5.1%} · rss {m.rss_mb:6.1f} MB"
                      f" · nodes {m.nodes} watchers {m.watchers} subscribers {m.subscribers}"
                      f" · key p50 {m.key_p50_ms:5.1f} p95 {m.key_p95_ms:6.1f} ms ({m.presses})"
                      f" · lag p99 {m.lag_p99_median_ms:5.1f} ms", flush=True)
            quit_s = console.quit()
            print(f"q → process exit: {quit_s:.3f} s")
        finally:
            console.close()
    return done[0], done[-1]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--size", default="160x48", help="terminal COLUMNSxROWS (default 160x48)")
    parser.add_argument("console_args", nargs="*", default=["--demo"], help="the console's arguments (default --demo)")
    args = parser.parse_args(argv)
    columns, rows = (int(part) for part in args.size.split("x"))
    first, last = soak(max(1, args.minutes), args.console_args, (columns, rows))
    print("\n".join(report(first, last, args.minutes)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
