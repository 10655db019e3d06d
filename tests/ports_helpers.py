"""Real sockets and real server processes for the Ports tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

#: A server child: listens on 127.0.0.1:0 (SO_REUSEADDR like werkzeug), prints its port,
#: then sleeps. argv[1]: "term" exits on SIGTERM, "ignore" ignores it, "slow" takes 1 s,
#: "closer" accepts and closes every connection first (TIME_WAIT lands on its port),
#: "prefork" forks a worker that shares the socket (the worker's pid is printed first).
SERVER = r"""
import os, signal, socket, sys, threading, time
mode = sys.argv[1]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(16)
if mode == "ignore":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
elif mode == "slow":
    signal.signal(signal.SIGTERM, lambda *a: (time.sleep(1), sys.exit(0)))
elif mode == "prefork":
    worker = os.fork()
    if worker == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        while True:
            time.sleep(60)
    def stop(*a):
        os.kill(worker, signal.SIGTERM)
        os.waitpid(worker, 0)
        sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
    print(worker, flush=True)
elif mode == "closer":
    def close_all():
        while True:
            conn, _ = s.accept()
            conn.close()
    threading.Thread(target=close_all, daemon=True).start()
print(s.getsockname()[1], flush=True)
while True:
    time.sleep(60)
"""

SS_STATES = {
    "ESTAB": "ESTABLISHED", "TIME-WAIT": "TIME_WAIT", "CLOSE-WAIT": "CLOSE_WAIT", "LISTEN": "LISTEN",
    "FIN-WAIT-1": "FIN_WAIT1", "FIN-WAIT-2": "FIN_WAIT2", "SYN-SENT": "SYN_SENT", "SYN-RECV": "SYN_RECV",
    "LAST-ACK": "LAST_ACK", "CLOSING": "CLOSING",
}


class Server:
    """A server child process and what it printed: its port (and a prefork worker's pid)."""

    def __init__(self, mode: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER, mode], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.worker = int(self.proc.stdout.readline()) if mode == "prefork" else None
        self.port = int(self.proc.stdout.readline())

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.worker is not None:
            try:
                os.kill(self.worker, signal.SIGKILL)
            except ProcessLookupError:
                pass


@contextmanager
def server(mode: str = "term") -> Iterator[Server]:
    child = Server(mode)
    try:
        yield child
    finally:
        child.stop()


def listener(host: str = "127.0.0.1", reuseaddr: bool = True) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    if reuseaddr:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(64)
    return sock


def connect_and_wait_for_close(port: int, count: int) -> None:
    """``count`` connections to a "closer" server: it closes first, so TIME_WAIT stays on ``port``."""
    for _ in range(count):
        with socket.create_connection(("127.0.0.1", port)) as client:
            client.recv(1)
    wait_for(lambda: ss_counts(port).get("TIME_WAIT", 0) >= count)


def make_time_wait(server_sock: socket.socket, count: int) -> None:
    """``count`` connections that the server closes first: TIME_WAIT stays on the server's port."""
    host, port = server_sock.getsockname()[:2]
    for _ in range(count):
        client = socket.create_connection((host, port))
        accepted, _ = server_sock.accept()
        accepted.close()
        client.recv(1)  # EOF: the server's FIN arrived
        client.close()
    wait_for(lambda: ss_counts(port).get("TIME_WAIT", 0) >= count)


def wait_for(condition, timeout_s: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def ss_counts(port: int, proto: str = "t") -> Counter[str]:
    """``ss``'s view: sockets with local port ``port`` per state."""
    out = subprocess.run(["ss", f"-{proto}anH", f"sport = :{port}"], capture_output=True, text=True, check=True).stdout
    states: Counter[str] = Counter()
    for line in out.splitlines():
        name = line.split()[0]
        states["UNCONN" if name == "UNCONN" else SS_STATES[name]] += 1
    return states


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True
