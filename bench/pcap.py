"""bench.pcap — issue 3: the PCAP scan against `find | awk` and `du -sb` on one warm tree.

    flock /tmp/opsconsole-bench.lock .venv/bin/python -m bench.pcap            # 500k files, 5 runs
    .venv/bin/python -m bench.pcap --files 50000 --runs 3                      # a quick look
    .venv/bin/python -m bench.pcap --files 300000 --uptime-minutes 10          # issue 12, item 5

Generates a tree under /tmp (sparse files of varied sizes in ~1,000 dated directories,
mtimes days old), warms it, then measures side by side, median of --runs each:
`find ROOT -type f -printf '%s\\n' | awk`, `du -sb ROOT`, the opsconsole full scan
(warm worker pool, as a running console pays it; and cold, starting the pool), and an
incremental rescan after 1% of the directories changed. Then: peak RSS of a scan (its
process and its workers, in a fresh process; and of `opsconsole snapshot --refresh
--full`, the program as it runs), and 8 long-lived reader processes plus a headless
console on an expired cache, twice: readers at the console's priority, then at nice 19
(scans run, the console's event-loop lag p99 meanwhile, and how much of that lag the
loop spent runnable but waiting for a CPU that other processes held). The tree is
deleted at the end. With ``--uptime-minutes M`` it runs only this instead: the real
console in a pty on that tree, fully rescanned every second (``ttl = 1``,
``full_rescan_every = 1``, ``interval = 1``), measured for a minute after M minutes of
uptime (bench.uptime). Other processes on the machine skew the numbers; run it under the
shared bench lock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from backends.pcap.cache import CacheStore
from backends.pcap.scan import ScanOutcome, ScanPool, totals
from bench import uptime

PATTERNS = ("*.pcap", "*.pcapng", "*.cap")
WINDOW_S = 120.0
DAY = 86400
ROOT = Path(__file__).resolve().parent.parent

#: One reader process of the stampede test: a long-lived worker (a gunicorn worker, another
#: console) that asks for the stats once. It says "ready" when its imports are done, asks
#: when the go file appears, and stays alive until its stdin closes: the measured window
#: holds the stampede, not 8 interpreters starting up or shutting down.
READER = """
import sys, time
from pathlib import Path
from backends.pcap.model import PcapSettings
from backends.pcap.source import PcapSource
from backends.collector import CollectContext
import threading
root, cache, go = map(Path, sys.argv[1:4])
source = PcapSource(PcapSettings(root=root, cache_dir=cache, patterns=("*.pcap", "*.pcapng", "*.cap")))
print("ready", flush=True)
while not go.exists():
    time.sleep(0.01)
began = time.monotonic()
value = source.collect(CollectContext(None, False, time.monotonic() + 600, threading.Event()))
print(value.scan.serial, value.cache.refreshing, round(time.monotonic() - began, 3), flush=True)
sys.stdin.read()
source.close()
"""


def generate(root: Path, files: int, dirs: int) -> tuple[int, int]:
    """``files`` sparse files in ``dirs`` day/hour directories, mtimes days old; returns (files, dirs)."""
    per_dir = max(1, files // dirs)
    base = time.time() - 60 * DAY
    made = 0
    for d in range(dirs):
        directory = root / f"2026-{d // 24 // 28 + 1:02}-{d // 24 % 28 + 1:02}" / f"{d % 24:02}"
        directory.mkdir(parents=True, exist_ok=True)
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for n in range(per_dir):
                mtime_ns = int((base + d * 3600 + n) * 1e9)
                fd = os.open(f"cap-{n:05}.pcap", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=dir_fd)
                os.ftruncate(fd, 1000 + (made * 7919) % 9_000_000)
                os.utime(fd, ns=(mtime_ns, mtime_ns))
                os.close(fd)
                made += 1
        finally:
            os.close(dir_fd)
    for dirpath, _, _ in os.walk(root):
        os.utime(dirpath, (base, base))
    return made, dirs


def median_time(run: Callable[[], object], runs: int) -> float:
    durations = []
    for _ in range(runs):
        began = time.perf_counter()
        run()
        durations.append(time.perf_counter() - began)
    return statistics.median(durations)


def shell(command: str) -> Callable[[], object]:
    return lambda: subprocess.run(command, shell=True, check=True, stdout=subprocess.DEVNULL)


def scan(pool: ScanPool, root: Path, previous=None) -> ScanOutcome:  # type: ignore[no-untyped-def]
    return pool.scan(str(root), previous, patterns=PATTERNS, active_window_s=WINDOW_S, cross_filesystems=False,
                     deadline=time.monotonic() + 600, cancelled=threading.Event())


def change_one_percent(root: Path, dirs: list[Path], serial: int) -> None:
    """A new capture file in 1% of the directories (as a capture daemon would)."""
    for directory in random.sample(dirs, max(1, len(dirs) // 100)):
        (directory / f"new-{serial}.pcap").write_bytes(b"\0" * 100)


def rss_probe(root: Path) -> None:
    """Run in a fresh process: a full scan and an incremental one; print peak RSS of all processes."""
    pool = ScanPool(2)
    first = scan(pool, root)
    second = scan(pool, root, first.records)
    workers: dict[int, int] = {}
    for outcome in (first, second):
        for pid, rss in outcome.worker_max_rss.items():
            workers[pid] = max(workers.get(pid, 0), rss)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    pool.close()
    print(own, sum(workers.values()), len(workers))


def _descendants(pid: int) -> list[int]:
    found = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as file:
                for child in file.read().split():
                    found += _descendants(int(child))
    except OSError:
        pass
    return found


def cli_rss(root: Path, work: Path) -> dict[str, int]:
    """Peak RSS (VmHWM, polled every 10 ms) of `opsconsole snapshot --refresh --full` on the
    tree: the program as users run it, and its scan workers, by command."""
    config = work / "rss.toml"
    config.write_text(f'[pcap]\nroot = "{root}"\ncache_dir = "{work / "rss-cache"}"\n')
    program = Path(sys.executable).with_name("opsconsole")
    run = subprocess.Popen([str(program), "--config", str(config), "snapshot", "--json", "--panel", "pcap",
                            "--refresh", "--full"], stdout=subprocess.DEVNULL)
    peaks: dict[int, tuple[int, str]] = {}
    while run.poll() is None:
        for pid in _descendants(run.pid):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as file:
                    command = file.read().replace(b"\0", b" ").decode(errors="replace")
                with open(f"/proc/{pid}/status") as file:
                    hwm = next(int(line.split()[1]) * 1024 for line in file if line.startswith("VmHWM"))
            except (OSError, StopIteration):
                continue
            if pid != run.pid and "multiprocessing" not in command:
                continue  # a child between fork and exec still shows its parent's memory
            kind = ("worker" if "spawn_main" in command else "resource tracker" if "resource_tracker" in command
                    else "opsconsole")
            peaks[pid] = (max(hwm, peaks.get(pid, (0, ""))[0]), kind)
        time.sleep(0.01)
    by_kind: dict[str, int] = {}
    for hwm, kind in peaks.values():
        by_kind[kind] = by_kind.get(kind, 0) + hwm
    return by_kind


class LoopSampler:
    """A finer lag probe than the console's own (10 ms instead of 50 ms), which also reads the
    loop thread's scheduler statistics: how much of each late wake-up the thread spent
    runnable but waiting for a CPU that other processes had (``/proc/self/task/TID/schedstat``)."""

    PERIOD_S = 0.01

    def __init__(self) -> None:
        self.lags: list[float] = []
        self.waits: list[float] = []
        self._schedstat = f"/proc/self/task/{threading.get_native_id()}/schedstat"

    def _run_queue_s(self) -> float:
        try:
            with open(self._schedstat) as file:
                return int(file.read().split()[1]) / 1e9
        except (OSError, IndexError, ValueError):
            return 0.0

    async def run(self) -> None:
        while True:
            expected = time.monotonic() + self.PERIOD_S
            waited = self._run_queue_s()
            await asyncio.sleep(self.PERIOD_S)
            self.lags.append(max(0.0, time.monotonic() - expected))
            self.waits.append(self._run_queue_s() - waited)

    def summary(self) -> tuple[float, float, float, float]:
        """(p99 lag ms, max lag ms, share of the lag over 5 ms spent waiting for a CPU,
        p99 ms of the lag left when that wait is taken out: the console's own stalls)."""
        if not self.lags:
            return 0.0, 0.0, 0.0, 0.0
        late = [(lag, wait) for lag, wait in zip(self.lags, self.waits, strict=True) if lag > 0.005]
        share = sum(min(w, lag) for lag, w in late) / sum(lag for lag, _ in late) if late else 0.0
        own = [max(0.0, lag - wait) for lag, wait in zip(self.lags, self.waits, strict=True)]
        return _p99(self.lags) * 1000, max(self.lags) * 1000, share, _p99(own) * 1000


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


@dataclass(frozen=True, slots=True)
class Stampede:
    scans: int
    reader_lines: list[str]
    p99_ms: float  # the console's own probe (50 ms period): what its Ctrl+D overlay shows
    max_ms: float
    samples: int
    fine_p99_ms: float  # the bench's 10 ms probe
    fine_max_ms: float
    cpu_wait_share: float
    own_p99_ms: float  # the 10 ms probe's lag less the time the loop waited for a CPU
    scanner: str


async def stampede_with_console(root: Path, cache: Path, reader_nice: int | None,
                                console_first: bool = False) -> Stampede:
    """8 reader processes (at ``reader_nice`` if given) + a headless console on an expired cache.

    With ``console_first`` the console asks first and is the one that scans (in its own
    process: the coordinator thread and its worker pool), the readers right after it.
    """
    from backends.catalog import PANEL_NAMES
    from backends.collector import Collector, CollectorGroup
    from backends.host import read_host_info
    from backends.pcap.source import pcap_collector
    from console.app import make_app
    from console.audit import AuditLog
    from console.config import Config, PcapConfig

    config = Config(pcap=PcapConfig(root=root, cache_dir=cache, patterns=PATTERNS, interval=3600))
    store = CacheStore(cache, str(root))
    doc, _ = store.load()
    assert doc is not None
    # expired, and due for a full scan: the incident's case
    store.write(replace(doc, written_at=doc.written_at - 100_000, scans_since_full=10**6))
    collectors = {name: Collector(name, lambda context: None, interval_s=3600, timeout_s=10) for name in PANEL_NAMES}
    collectors["pcap"] = pcap_collector(config.pcap, cache)
    app = make_app(config, CollectorGroup(collectors), host=read_host_info(),
                   audit=AuditLog(cache / "audit.log"), autostart=False)
    go = cache / "go"
    go.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    nice = [] if reader_nice is None else ["nice", "-n", str(reader_nice)]
    readers = [subprocess.Popen([*nice, sys.executable, "-c", READER, str(root), str(cache), str(go)],  # noqa: ASYNC220 - before the measured window
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env) for _ in range(8)]
    assert all(r.stdout is not None and r.stdout.readline() == "ready\n" for r in readers)
    sampler = LoopSampler()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(1.0)  # the console settles after its start
        sampling = asyncio.create_task(sampler.run())
        app.probe._samples.clear()
        if not console_first:
            go.touch()
        console_read = asyncio.create_task(app.collectors["pcap"].refresh())
        while console_first and getattr(store.rebuilder(), "pid", None) != os.getpid():  # until the console scans
            await asyncio.sleep(0.005)
        go.touch()
        answers = await asyncio.gather(*(asyncio.to_thread(r.stdout.readline) for r in readers))  # type: ignore[union-attr]
        await console_read
        while app.collectors["pcap"].snapshot.refreshing:
            await pilot.pause(0.05)
        await pilot.pause(0.2)
        stats = app.probe.stats()
        sampling.cancel()
    for reader in readers:
        reader.communicate("")  # let it go
    after, _ = store.load()
    assert after is not None
    fine_p99, fine_max, share, own_p99 = sampler.summary()
    scanner = "the console" if after.scan.by_pid == os.getpid() else "a reader"
    return Stampede(after.scan.serial - doc.scan.serial, [line.strip() for line in answers], stats.p99_ms, stats.max_ms,
                    stats.samples, fine_p99, fine_max, share, own_p99, scanner)


def report_stampede(title: str, run: Stampede) -> None:
    waits = sorted(float(line.split()[2]) for line in run.reader_lines)
    print(f"\n8 reader processes{title} + 1 headless console on an expired cache: {run.scans} scan(s), by {run.scanner}")
    print(f"  readers answered in {waits[0]:.3f} .. {waits[-1]:.3f} s "
          f"({sum('True' in line for line in run.reader_lines)} served the stale value marked refreshing)")
    print(f"  console event-loop lag meanwhile: p99 {run.p99_ms:.1f} ms, max {run.max_ms:.1f} ms "
          f"({run.samples} samples of its own 50 ms probe); 10 ms probe: p99 {run.fine_p99_ms:.1f} ms, "
          f"max {run.fine_max_ms:.1f} ms")
    print(f"  {run.cpu_wait_share:.0%} of that lateness the loop was runnable, waiting for a CPU held by other "
          f"processes; without those waits p99 {run.own_p99_ms:.1f} ms")


def console_rescanning(root: Path, cache: Path, work: Path, uptime_minutes: float) -> None:
    """The real console with the tree fully rescanned every second, after the uptime (bench.uptime)."""
    config = work / "uptime.toml"
    config.write_text(f"[pcap]\nroot = {json.dumps(str(root))}\ncache_dir = {json.dumps(str(cache))}\n"
                      "ttl = 1\nfull_rescan_every = 1\ninterval = 1\n")
    # Down/Up on the PCAP panel's breakdown: every press changes the screen. (With only [pcap]
    # configured, Down on another panel may change nothing, and the next repaint would be
    # timed as its answer.)
    figures = uptime.under_load(["--config", str(config)], ("down", "up"), uptime_minutes * 60,
                                ready=b"PCAP", first_keys=("1",))
    print("\n".join(uptime.report("console, tree fully rescanned every second", figures)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pcap", description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=500_000)
    parser.add_argument("--dirs", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--uptime-minutes", type=float, default=None, metavar="M",
                        help="only the console under a rescan every second, measured after M minutes")
    parser.add_argument("--rss-probe", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_probe is not None:
        rss_probe(args.rss_probe)
        return 0
    work = Path(tempfile.mkdtemp(prefix="opsconsole-bench-pcap-", dir="/tmp"))
    root, cache = work / "pcap", work / "cache"
    try:
        began = time.perf_counter()
        files, dirs = generate(root, args.files, args.dirs)
        print(f"tree: {files:,} files in {dirs:,} directories under {root} ({time.perf_counter() - began:.1f} s to make)")
        if args.uptime_minutes is not None:
            console_rescanning(root, cache, work, args.uptime_minutes)
            return 0
        leaf_dirs = sorted({p.parent for p in root.glob("*/*/*.pcap")})
        for warm in ("du -sb", "find"):
            shell(f"{warm} {root} > /dev/null")()
        runs = args.runs
        results: dict[str, float] = {}
        results["find | awk"] = median_time(shell(f"find {root} -type f -printf '%s\\n' | awk '{{s+=$1}} END {{print s}}'"), runs)
        results["du -sb"] = median_time(shell(f"du -sb {root}"), runs)
        pool = ScanPool(2)
        last = scan(pool, root)  # starts the workers
        results["full scan (warm pool)"] = median_time(lambda: scan(pool, root), runs)

        def cold() -> None:
            fresh = ScanPool(2)
            scan(fresh, root)
            fresh.close()

        results["full scan (cold: starts 2 workers)"] = median_time(cold, runs)
        incremental: list[float] = []
        read: list[int] = []
        for serial in range(runs):
            change_one_percent(root, leaf_dirs, serial)
            time.sleep(0.2)  # changed since the last scan, not in the same instant (see "racy")
            began = time.perf_counter()
            last = scan(pool, root, last.records)
            incremental.append(time.perf_counter() - began)
            read.append(last.read)
        results["incremental, 1% dirs changed"] = statistics.median(incremental)
        full = scan(pool, root)
        same = totals(last.records.values(), full.now_ns, int(WINDOW_S * 1e9)) == totals(
            full.records.values(), full.now_ns, int(WINDOW_S * 1e9))
        pool.close()

        du = results["du -sb"]
        print(f"\nmedian of {runs} runs each (warm cache):")
        for name, seconds in results.items():
            print(f"  {name:<36} {seconds * 1000:9.1f} ms   {seconds / du:6.3f}x du   ({du / seconds:6.1f}x faster than du)")
        print(f"  incremental read {statistics.median(read):.0f} of {len(last.records)} directories; equals a full scan: {same}")

        out = subprocess.run([sys.executable, "-m", "bench.pcap", "--rss-probe", str(root)], check=True,
                             capture_output=True, text=True, cwd=ROOT).stdout.split()
        own, workers, count = (int(x) for x in out)
        peak_mb = (own + workers) / 2**20
        print(f"\npeak RSS of a scan: {peak_mb:.1f} MB (coordinator {own / 2**20:.1f} MB + {count} workers "
              f"{workers / 2**20:.1f} MB; sum of each process's peak)")
        program = cli_rss(root, work)
        print(f"  the same through `opsconsole snapshot --refresh --full`: {sum(program.values()) / 2**20:.1f} MB ("
              + ", ".join(f"{kind} {size / 2**20:.1f} MB" for kind, size in sorted(program.items()))
              + ")")

        from backends.collector import CollectContext
        from backends.pcap.model import PcapSettings
        from backends.pcap.source import PcapSource

        seed = PcapSource(PcapSettings(root=root, cache_dir=cache, patterns=PATTERNS))
        seed.collect(CollectContext(None, False, time.monotonic() + 600, threading.Event()))
        seed.close()
        contending = asyncio.run(stampede_with_console(root, cache, None))
        report_stampede("", contending)
        niced = asyncio.run(stampede_with_console(root, cache, 19))
        report_stampede(" at nice 19", niced)
        scanning = asyncio.run(stampede_with_console(root, cache, None, console_first=True))
        report_stampede(", the console scanning,", scanning)

        print("\ntargets:")
        checks = [
            ("full scan <= 1.0x du -sb (warm pool)", results["full scan (warm pool)"] <= du),
            ("incremental >= 25x faster than du -sb", du / results["incremental, 1% dirs changed"] >= 25),
            ("peak RSS <= 100 MB (scan probe)", peak_mb <= 100),
            ("peak RSS <= 100 MB (`opsconsole snapshot --refresh --full`, all its processes)", sum(program.values()) <= 100 * 2**20),
            ("8 readers on an expired cache: 1 scan", contending.scans == niced.scans == scanning.scans == 1),
            ("console lag p99 < 25 ms while the console itself scans", scanning.p99_ms < 25),
            ("console lag p99 < 25 ms meanwhile, readers at nice 19 (the console's own stalls)", niced.p99_ms < 25),
            ("console lag p99 < 25 ms meanwhile, readers at nice 0 (+ the CPU they take)", contending.p99_ms < 25),
        ]
        for name, ok in checks:
            print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    finally:
        began = time.perf_counter()
        shutil.rmtree(work, ignore_errors=True)
        print(f"\ndeleted {work} ({time.perf_counter() - began:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
