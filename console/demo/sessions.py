"""The Sessions panel's demo activity: the simulator, gently, against the world's SQLite registry.

Run as ``python -m console.demo.sessions --dir DIR --parent PID`` (one HelperSpec in
console.demo.world). A few sessions are started and finished at once so every state shows up,
then one worker moves sessions about twice a second until the console goes.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import threading
from collections.abc import Sequence
from pathlib import Path

from backends.sessions import LABELS, OWNERS, Registry, WorkerPlan, run_worker
from console.demo.helper import die_with_parent, remove_world

#: Operations per second: slow enough to follow by eye.
RATE = 2.0
PARENT_POLL_S = 0.5


def sessions_url(world: Path) -> str:
    """The same URL DemoWorld.sessions_url gives the console."""
    return f"sqlite:///{world}/sessions.db"


def seed(url: str) -> None:
    """One session in every state, so the panel starts out showing each colour."""
    with Registry.open(url, actor="demo seed") as registry:
        for number, end in enumerate(("complete", "stop", "fail", "expire", None, None)):
            session_id = f"seed-{number}"
            registry.start(session_id, label=LABELS[number % len(LABELS)], owner=OWNERS[number % len(OWNERS)])
            registry.progress(session_id, round((number + 1) / 7, 2), note="warming up")
            if end == "fail":
                registry.fail(session_id, "capture file truncated")
            elif end is not None:
                getattr(registry, end)(session_id)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m console.demo.sessions")
    parser.add_argument("--dir", type=Path, required=True, help="the demo world directory")
    parser.add_argument("--parent", type=int, required=True, help="the parent's pid")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda signum, frame: stop.set())
    signal.signal(signal.SIGHUP, lambda signum, frame: None)  # parent death: checked below
    die_with_parent()
    url = sessions_url(args.dir)
    if not (args.dir / "sessions.db").exists():
        seed(url)

    def watch_parent() -> None:
        while not stop.wait(PARENT_POLL_S):
            if os.getppid() != args.parent:
                stop.set()

    threading.Thread(target=watch_parent, daemon=True).start()
    run_worker(WorkerPlan(url, 0, RATE, math.inf), stop)
    if os.getppid() != args.parent:
        remove_world(args.dir, args.parent)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
