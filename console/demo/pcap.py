"""The PCAP panel's demo activity: a month of captures in dated directories.

Run as ``python -m console.demo.pcap --dir DIR --parent PID`` (one HelperSpec in
console.demo.world). It seeds ``DIR/pcap`` with about 20,000 capture files in
``YYYY-MM-DD/HH/`` directories, one a few minutes apart over the last 30 days, with
varied sizes (sparse, so the demo takes no real disk space) and mtimes that match their
names; then it waits for its console to end. The live capture that grows and rotates
every few seconds is written by the baseline ``activity`` helper into the same tree.
``DemoWorld.apply`` sets a retention policy (:data:`RETENTION_DAYS`) that the seeded
tree breaks, so `c` in the panel and `opsconsole --demo cleanup` have work to do.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from console.demo.helper import die_with_parent, remove_world

DAYS = 30
FILES_PER_HOUR = 28  # 30 days * 24 hours * 28 = 20,160 files
#: The demo's [pcap.retention] max_age_days: about the oldest 5 days are over it.
RETENTION_DAYS = 25.0
#: The demo's [pcap] ttl: short, so the panel's cache visibly ages and refreshes.
DEMO_TTL_S = 30.0
SEEDED = "pcap-seeded"
PARENT_POLL_S = 0.5


def seed(root: Path, now: float, stop: Callable[[], bool]) -> int:
    """Write the capture tree (sparse files, dated mtimes); returns the number of files.

    Checks ``stop`` every directory, and never creates ``root`` itself: when the console
    goes mid-seed the world is being removed, and nothing may be written back into it.
    """
    count = 0
    start = (now - DAYS * 86400) // 3600 * 3600  # whole hours, so a directory holds its hour
    for hour in range(DAYS * 24):
        hour_start = start + hour * 3600
        if stop():
            return count
        directory = root / time.strftime("%Y-%m-%d/%H", time.localtime(hour_start))
        try:
            directory.parent.mkdir(exist_ok=True)
            directory.mkdir(exist_ok=True)
        except FileNotFoundError:
            return count  # the world is gone
        for n in range(FILES_PER_HOUR):
            mtime = hour_start + n * 3600 / FILES_PER_HOUR
            path = directory / f"capture-{time.strftime('%H%M%S', time.localtime(mtime))}-{n:02}.pcap"
            with open(path, "wb") as file:
                file.truncate(200_000 + (count * 7919) % 4_800_000)
            os.utime(path, (mtime, mtime))
            count += 1
        os.utime(directory, (hour_start + 3599, hour_start + 3599))
    for day in {p for p in root.iterdir() if p.is_dir()}:
        newest = max((p.stat().st_mtime for p in day.iterdir()), default=now)
        os.utime(day, (newest, newest))
    return count


def wait_seeded(world: Path, timeout_s: float, poll_s: float = 0.05) -> bool:
    """Wait until the capture tree of ``world`` is fully seeded; False after ``timeout_s``.

    For one-shot commands under ``--demo`` (`snapshot`, `cleanup`): run on a tree still
    being seeded, their counts and plans would depend on how far the helper got.
    """
    deadline = time.monotonic() + timeout_s
    while not (world / SEEDED).exists():
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)
    return True


def run(world: Path, parent: int) -> int:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda signum, frame: stop.set())
    signal.signal(signal.SIGHUP, lambda signum, frame: None)  # wakes the wait below
    die_with_parent()
    marker = world / SEEDED
    if not marker.exists():  # a restarted helper does not seed twice
        seed(world / "pcap", time.time(), lambda: stop.is_set() or os.getppid() != parent)
        if not stop.is_set() and os.getppid() == parent:
            marker.touch()
    while not stop.is_set() and os.getppid() == parent:
        stop.wait(PARENT_POLL_S)
    if os.getppid() != parent:
        remove_world(world, parent)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m console.demo.pcap")
    parser.add_argument("--dir", type=Path, required=True, help="the demo world directory")
    parser.add_argument("--parent", type=int, required=True, help="the console's pid")
    args = parser.parse_args(argv)
    return run(args.dir, args.parent)


if __name__ == "__main__":
    sys.exit(main())
