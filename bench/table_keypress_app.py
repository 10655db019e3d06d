"""A VirtualTable of N sessions refreshed every second off the loop: the keypress-to-screen subject.

    python -m bench.table_keypress_app 100000 [--producer events|rebuild] [--events E] [--swap-log PATH]

Every second a worker thread (``asyncio.to_thread``, as the collector's thread would)
produces the next rows and they are swapped in with ``show_rows``. Two producers:

- ``events`` (default; what the sessions collector does): follow an event cursor and
  apply that second's ``E`` events (90% change a session, 5% start one, 5% end one:
  ``bench.table_rows.SessionEvents``) with ``RowSet.updated``, which copies only the
  blocks they touch and hands the GIL back between pieces.
- ``rebuild``: re-read all N sessions and build a new RowSet (a full refresh).

``bench.table`` runs this under a pseudo-terminal, presses Down and times the first output
after each press. With ``--swap-log`` the app writes one line per refresh at exit:
monotonic times of the thread's start, its end (= show_rows start) and show_rows' end,
so the harness can tell which keypresses shared their window with a data refresh.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path

from textual.app import App, ComposeResult

from backends.rows import RowSet
from bench.table_rows import SessionEvents, columns, session_rowset
from panels.table import VirtualTable


class KeypressApp(App[None]):
    def __init__(self, n: int, producer: str, events: int) -> None:
        super().__init__()
        self.n = n
        self.producer = producer
        self.events = SessionEvents(n, events)
        self.swaps: list[tuple[float, float, float]] = []

    def compose(self) -> ComposeResult:
        yield VirtualTable(columns(), id="sessions")

    async def on_mount(self) -> None:
        table = self.query_one(VirtualTable)
        table.focus()
        table.show_rows(await asyncio.to_thread(session_rowset, self.n, 0))
        self.run_worker(self.refresh_every_second(table), exclusive=True)

    def next_rows(self, source: RowSet, tick: int) -> Callable[[], RowSet]:
        if self.producer == "rebuild":
            return lambda: session_rowset(self.n, tick)

        def follow_events() -> RowSet:
            upserts, removed = self.events.tick(tick)
            return source.updated(upserts, removed)

        return follow_events

    async def refresh_every_second(self, table: VirtualTable) -> None:
        tick = 0
        next_at = time.monotonic() + 1.0
        while True:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            next_at += 1.0
            tick += 1
            built_from = time.monotonic()
            rows = await asyncio.to_thread(self.next_rows(table.rows, tick))
            shown_from = time.monotonic()
            table.show_rows(rows)
            self.swaps.append((built_from, shown_from, time.monotonic()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, help="number of sessions")
    parser.add_argument("--producer", choices=("events", "rebuild"), default="events")
    parser.add_argument("--events", type=int, default=1_000, help="events per second (events producer)")
    parser.add_argument("--swap-log", type=Path)
    parser.add_argument("--switch-interval", type=float, help="experiment: sys.setswitchinterval(seconds)")
    args = parser.parse_args()
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    app = KeypressApp(args.n, args.producer, args.events)
    try:
        app.run()
    finally:
        if args.swap_log is not None:
            args.swap_log.write_text("".join(f"{a:.6f} {b:.6f} {c:.6f}\n" for a, b, c in app.swaps))


if __name__ == "__main__":
    main()
