"""bench/ports: the Ports collector against `ss -tan` and psutil at 20k and 60k TIME_WAIT sockets.

    .venv/bin/python -m bench.ports            # 20k and 60k TIME_WAIT, 7 runs each
    .venv/bin/python -m bench.ports --quick    # 20k only, 5 runs

The benchmark makes the TIME_WAIT sockets itself on loopback: servers on 127.0.0.1 that
close every connection first (so the TIME_WAIT stays on the server's side), clients from
several 127.0.0.x source addresses and explicit source ports (every 4-tuple new). Everything
is timed side by side in one run, medians of N runs, then the ratios and the issue's
targets. TIME_WAIT sockets live 60 s, so each size is measured right after it is made.
At the end the listeners are closed and the TIME_WAIT sockets are destroyed with
`ss -K` where the kernel allows it (else they expire on their own within 60 s).
"""

from __future__ import annotations

import argparse
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection

import psutil

from backends.actions import Progress
from backends.ports.collect import PortsCollector
from backends.ports.diag import listen_sockets
from backends.ports.free import FreePortAction
from backends.ports.owners import socket_holders

SERVER_PORTS = 3
#: Client source ports: explicit and never repeated within a run, so every connection
#: is a new 4-tuple (a repeated one would recycle its TIME_WAIT instead of adding one).
FIRST_CLIENT_PORT, CLIENT_PORTS = 20_000, 40_000
TARGET_SS, TARGET_PSUTIL, TARGET_FREE_S = 2.0, 10.0, 1.0


def make_time_wait(servers: list[socket.socket], count: int, start: int) -> int:
    """Open ``count`` connections that the servers close first; returns the next connection index.

    Connection ``i`` comes from 127.0.0.(2 + i // CLIENT_PORTS), port FIRST_CLIENT_PORT +
    i % CLIENT_PORTS (a source port something else holds is skipped).
    """
    made, index = 0, start
    while made < count:
        client = socket.socket()
        try:
            client.bind((f"127.0.0.{2 + index // CLIENT_PORTS}", FIRST_CLIENT_PORT + index % CLIENT_PORTS))
        except OSError:
            client.close()
            index += 1
            continue
        server = servers[index % len(servers)]
        client.connect(server.getsockname())
        accepted, _ = server.accept()
        accepted.close()
        client.recv(1)
        client.close()
        made += 1
        index += 1
    return index


def time_wait_count(ports: Collection[int] | None = None) -> int:
    """TIME_WAIT sockets on the host, or on ``ports`` only."""
    value = PortsCollector()()
    return sum(row.time_wait for row in value.ports if ports is None or row.port in ports)


def median_s(work: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median wall time and median CPU time (this process's, plus its children's for ``ss``)."""
    walls, cpus = [], []
    for _ in range(runs):
        before = _cpu_s()
        start = time.perf_counter()
        work()
        walls.append(time.perf_counter() - start)
        cpus.append(_cpu_s() - before)
    return statistics.median(walls), statistics.median(cpus)


def _cpu_s() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def ss(*args: str) -> None:
    subprocess.run(["ss", *args], stdout=subprocess.DEVNULL, check=True)


def owners_only() -> None:
    """The owner lookup alone, uncached: a LISTEN-only dump plus the full /proc/*/fd inode walk."""
    socket_holders({sock.inode for sock in listen_sockets()})


def measure(size: int, runs: int) -> None:
    collector = PortsCollector()
    collector()  # warm caches, as between refreshes
    counted = time_wait_count()
    results = {
        "collector": median_s(collector, runs),
        "ss -tan": median_s(lambda: ss("-tan"), runs),
        "psutil": median_s(lambda: psutil.net_connections("inet"), runs),
        "owners (LISTEN + fd walk)": median_s(owners_only, runs),
        "ss -ltnp": median_s(lambda: ss("-ltnp"), runs),
    }
    print(f"\n{size:,} TIME_WAIT made, {counted:,} on the host, medians of {runs} runs:")
    print(f"  {'':<28}{'wall ms':>9}{'us/sock':>9}{'cpu ms':>9}{'us/sock':>9}")
    for name, (wall, cpu) in results.items():
        if name in ("collector", "ss -tan", "psutil"):
            per_wall, per_cpu = f"{wall / counted * 1e6:9.2f}", f"{cpu / counted * 1e6:9.2f}"
        else:  # listeners only: per TIME_WAIT socket says nothing
            per_wall = per_cpu = f"{'-':>9}"
        print(f"  {name:<28}{wall * 1000:9.1f}{per_wall}{cpu * 1000:9.1f}{per_cpu}")
    for peer, target in (("ss -tan", TARGET_SS), ("psutil", TARGET_PSUTIL)):
        for index, clock in ((0, "wall"), (1, "cpu")):
            ratio = results[peer][index] / results["collector"][index]
            verdict = "PASS" if ratio >= target else "FAIL"
            print(f"  {peer} / collector ({clock}){'':<6}{ratio:6.1f}x   target >= {target:g}x: {verdict}")


SERVER = r"""
import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(); print(s.getsockname()[1], flush=True)
time.sleep(60)
"""


def free_port_latency(runs: int) -> float:
    """Seconds from a SIGTERM'd server's exit to free-port's report (median)."""
    delays = []
    for _ in range(runs):
        child = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None
        port = int(child.stdout.readline())
        exited_at: list[float] = []

        def note_exit(child: subprocess.Popen[str] = child, exited_at: list[float] = exited_at) -> None:
            child.wait()
            exited_at.append(time.perf_counter())

        watcher = threading.Thread(target=note_exit)
        watcher.start()
        action = FreePortAction(port, grace_s=5)
        plan = action.plan()
        outcome = action.execute(plan, Progress(), threading.Event())
        reported_at = time.perf_counter()
        watcher.join()
        assert outcome.ok, outcome.message
        delays.append(reported_at - exited_at[0])
    return statistics.median(delays)


def destroy_time_wait(ports: list[int]) -> None:
    for port in ports:
        subprocess.run(["ss", "-K", "state", "time-wait", f"sport = :{port}"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20k only, 5 runs")
    parser.add_argument("--runs", type=int, default=None, help="runs per measurement (at least 5)")
    args = parser.parse_args()
    runs = max(5, args.runs or (5 if args.quick else 7))
    sizes = [20_000] if args.quick else [20_000, 60_000]
    servers = []
    for _ in range(SERVER_PORTS):
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen(128)
        servers.append(server)
    ports = [server.getsockname()[1] for server in servers]
    print(f"bench.ports: collector vs `ss -tan` vs psutil.net_connections('inet'); "
          f"{psutil.cpu_count()} CPUs, load {psutil.getloadavg()[0]:.1f} (other work on the host skews the numbers)")
    baseline = time_wait_count()
    try:
        made, index = 0, 0
        for size in sizes:
            started = time.monotonic()
            index = make_time_wait(servers, size - made, index)
            made = size
            print(f"\nmade {size:,} TIME_WAIT on ports {ports} in {time.monotonic() - started:.1f} s "
                  f"({baseline:,} were there before)")
            measure(size, runs)
        latency = free_port_latency(runs)
        print(f"\nfree-port: report {latency * 1000:.0f} ms after the server's exit (median of {runs}; "
              f"target < {TARGET_FREE_S:g} s: {'PASS' if latency < TARGET_FREE_S else 'FAIL'})")
    finally:
        for server in servers:
            server.close()
        destroy_time_wait(ports)
        left = time_wait_count(ports)
        print(f"\ncleanup: listeners closed; {left:,} of the benchmark's TIME_WAIT left "
              + ("(they expire within 60 s)" if left > 0 else "(destroyed with ss -K)"))


if __name__ == "__main__":
    main()
