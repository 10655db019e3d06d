"""Issue 6 benchmark: collecting 1,000 lock files and their /proc/locks entries (< 100 ms).

    .venv/bin/python -m bench.locks              # 1,000 files, 20 repetitions
    .venv/bin/python -m bench.locks --files 5000 --repeat 10

A temporary directory gets N lock files: half held with flock by one helper process
(so /proc/locks has N/2 more entries), a third of the rest pid files of that live
process, the others pid files of an exited one. Measured, medians of the repetitions:

* ``scan_locks`` in this process: glob, /proc/locks, open+read each file, identities,
  verdicts (the collector's whole work for the files);
* a full ``Collector.refresh`` of the Locks collector (adds the thread hop and snapshot);
* the peer, util-linux ``lslocks`` (when installed), run side by side in the same loop:
  it lists the kernel's locks with holder command and path. It knows nothing about pid
  files, and it is a process start each time, so the ratio compares "what an operator
  waits for" rather than equal work; both are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from backends.collector import Collector
from backends.locks.collect import make_locks_collect, scan_locks

TARGET_S = 0.100
PID_KEY = '"pid"'
STALE_AFTER = 600.0

#: Holds an exclusive flock on every path given on stdin, says "ready", sleeps until killed.
HOLDER = (
    "import fcntl,sys,time; files=[open(p.strip(),'a') for p in sys.stdin];"
    "[fcntl.flock(f,fcntl.LOCK_EX) for f in files]; print('ready',flush=True); time.sleep(3600)"
)


def build(directory: Path, count: int) -> subprocess.Popen[str]:
    """Write the lock files and start the helper that flocks half of them."""
    exited = subprocess.Popen(["true"])
    exited.wait()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    flocked = []
    for index in range(count):
        path = directory / f"job-{index:05d}.lock"
        if index % 2 == 0:
            path.touch()
            flocked.append(str(path))
        elif index % 3 == 0:
            path.write_text(f"{holder.pid}\n")
        else:
            path.write_text(f"pid={exited.pid}\n")
    assert holder.stdin is not None and holder.stdout is not None
    holder.stdin.write("\n".join(flocked) + "\n")
    holder.stdin.close()
    if holder.stdout.readline().strip() != "ready":
        raise SystemExit("bench.locks: the flock helper did not start")
    return holder


def timed(function: Callable[[], object], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return times


def collector_refreshes(pattern: str, repeat: int) -> list[float]:
    """``Collector.refresh`` timed on one running loop, as the app runs it."""

    async def run() -> list[float]:
        collector = Collector("locks", make_locks_collect([pattern], [], stale_after=STALE_AFTER),
                              interval_s=60, timeout_s=30)
        times = []
        try:
            for _ in range(repeat):
                started = time.perf_counter()
                snapshot = await collector.refresh()
                times.append(time.perf_counter() - started)
                assert snapshot.ok, snapshot.error
        finally:
            await collector.stop()
        return times

    return asyncio.run(run())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.locks")
    parser.add_argument("--files", type=int, default=1000, help="lock files to create (default 1000)")
    parser.add_argument("--repeat", type=int, default=20, help="repetitions per measurement (default 20)")
    args = parser.parse_args(argv)
    lslocks = shutil.which("lslocks")
    with tempfile.TemporaryDirectory(prefix="bench-locks-") as tmp:
        directory = Path(tmp)
        holder = build(directory, args.files)
        try:
            pattern = f"{directory}/*.lock"
            entries = scan_locks([pattern], stale_after=STALE_AFTER)  # warm-up, and a check
            verdicts = {v: sum(1 for e in entries if e.verdict == v) for v in {e.verdict for e in entries}}
            print(f"{len(entries)} lock files judged: " + ", ".join(f"{n} {v}" for v, n in sorted(verdicts.items())))
            results = {
                "scan_locks (in process)": timed(lambda: scan_locks([pattern], stale_after=STALE_AFTER), args.repeat),
                "Collector.refresh": collector_refreshes(pattern, args.repeat),
            }
            if lslocks:
                command = [lslocks, "--json", "--notruncate", "-o", "COMMAND,PID,TYPE,MODE,PATH"]
                listed = subprocess.run(command, capture_output=True, text=True, check=True).stdout
                print(f"lslocks lists {listed.count(PID_KEY)} kernel locks (no pid files)")
                results["lslocks (peer, a process)"] = timed(
                    lambda: subprocess.run(command, capture_output=True, check=True), args.repeat
                )
        finally:
            holder.kill()
            holder.wait()
    print(f"\n{'measurement':<28}{'median':>10}{'min':>10}{'max':>10}")
    medians = {}
    for name, times in results.items():
        medians[name] = statistics.median(times)
        print(f"{name:<28}{medians[name] * 1000:>8.1f}ms{min(times) * 1000:>8.1f}ms{max(times) * 1000:>8.1f}ms")
    ours = medians["scan_locks (in process)"]
    peer = medians.get("lslocks (peer, a process)")
    if peer is not None:
        print(f"\nratio lslocks / scan_locks: {peer / ours:.2f}x  (above 1: the console is faster)")
    else:
        print("\nlslocks not installed: no peer to compare with")
    verdict = "PASS" if medians["Collector.refresh"] < TARGET_S else "FAIL"
    print(f"target: {args.files} lock files + /proc/locks in < {TARGET_S * 1000:.0f} ms "
          f"(Collector.refresh median {medians['Collector.refresh'] * 1000:.1f} ms): {verdict}")
    print("note: other work on this machine (2 shared cores) may skew these numbers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
