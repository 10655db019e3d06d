"""A VirtualTable of N sessions rebuilt every second off the loop: the keypress-to-screen subject.

    python -m bench.table_keypress_app 100000 [--swap-log PATH]

Every second the rows are rebuilt with new values in a worker thread (``asyncio.to_thread``,
as the collector would) and swapped in with ``show_rows``. ``bench.table`` runs this under
a pseudo-terminal, presses Down and times the first output after each press. With
``--swap-log`` the app writes one line per refresh at exit: monotonic times of the build's
start, its end (= show_rows start) and show_rows' end, so the harness can tell which
keypresses shared their window with a data refresh.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from textual.app import App, ComposeResult

from bench.table_rows import columns, session_rowset
from panels.table import VirtualTable


class KeypressApp(App[None]):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self.swaps: list[tuple[float, float, float]] = []

    def compose(self) -> ComposeResult:
        yield VirtualTable(columns(), id="sessions")

    async def on_mount(self) -> None:
        table = self.query_one(VirtualTable)
        table.focus()
        table.show_rows(await asyncio.to_thread(session_rowset, self.n, 0))
        self.run_worker(self.refresh_every_second(table), exclusive=True)

    async def refresh_every_second(self, table: VirtualTable) -> None:
        tick = 0
        next_at = time.monotonic() + 1.0
        while True:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            next_at += 1.0
            tick += 1
            built_from = time.monotonic()
            rows = await asyncio.to_thread(session_rowset, self.n, tick)
            shown_from = time.monotonic()
            table.show_rows(rows)
            self.swaps.append((built_from, shown_from, time.monotonic()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, help="number of sessions")
    parser.add_argument("--swap-log", type=Path)
    parser.add_argument("--switch-interval", type=float, help="experiment: sys.setswitchinterval(seconds)")
    args = parser.parse_args()
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    app = KeypressApp(args.n)
    try:
        app.run()
    finally:
        if args.swap_log is not None:
            args.swap_log.write_text("".join(f"{a:.6f} {b:.6f} {c:.6f}\n" for a, b, c in app.swaps))


if __name__ == "__main__":
    main()
