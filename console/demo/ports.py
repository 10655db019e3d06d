"""The Ports panel's demo activity: TIME_WAIT that piles up and drains, and a port to free.

Run as ``python -m console.demo.ports --dir DIR --parent PID`` (one HelperSpec in
console.demo.world). It runs:

* a "churn" server on a free loopback port, and a client that opens short connections
  in bursts; the server closes first, so TIME_WAIT piles up on the server's port during
  a burst and drains in the pause after it;
* a "web" server in a child process of its own, on a watched port, that the operator can
  free with ``k``: it takes SIGTERM slowly (a few seconds of "draining"), so the
  countdown shows. It binds with SO_REUSEADDR as werkzeug does. Once freed, it comes
  back after a while on the same port, so the demo can be freed again.

Port numbers are written to files in the world so a restart keeps them and the console
can watch them.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from console.demo.helper import MARKER, die_with_parent, remove_world

CHURN_PORT_FILE = "port-churn"
WEB_PORT_FILE = "port-web"
#: The churn client's bursts: connections per second, burst length, pause length.
CHURN_PER_S = 25.0
BURST_S = 20.0
PAUSE_S = 40.0
#: One connection to the web server per this many churn connections (gives it TIME_WAIT too).
WEB_EVERY = 5
#: How long the web server takes to stop after SIGTERM.
SLOW_STOP_S = 3.0
#: How long after the web server was freed it comes back.
RESPAWN_S = 20.0
PARENT_POLL_S = 0.5
READY_WAIT_S = 5.0


def _write_port(path: Path, port: int) -> None:
    """Record a port in the world, unless the world is already being removed (no marker)."""
    if not (path.parent / MARKER).exists():
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{port}\n")
    os.replace(tmp, path)


def _read_port(path: Path) -> int:
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return 0


def _listen(port_file: Path) -> socket.socket:
    """Listen on 127.0.0.1 (the recorded port if free), with SO_REUSEADDR like werkzeug."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("127.0.0.1", _read_port(port_file)))
    except OSError:
        listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    _write_port(port_file, listener.getsockname()[1])
    return listener


def _serve_closing_first(listener: socket.socket, stop: threading.Event) -> None:
    """Accept and close at once: the server side closes first, so it keeps the TIME_WAIT."""
    listener.settimeout(PARENT_POLL_S)
    while not stop.is_set():
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        except OSError:
            return
        conn.sendall(b"bye\n")
        conn.close()


def _touch(port: int) -> None:
    """One short connection: wait for the server's close, then close our side."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as conn:
            while conn.recv(64):
                pass
    except OSError:
        pass  # the web server may be down (freed): that is part of the demo


def _churn(churn_port: int, web_port_file: Path, stop: threading.Event) -> None:
    count = 0
    while not stop.is_set():
        burst_end = time.monotonic() + BURST_S
        while time.monotonic() < burst_end and not stop.is_set():
            _touch(churn_port)
            count += 1
            if count % WEB_EVERY == 0 and (web_port := _read_port(web_port_file)):
                _touch(web_port)
            stop.wait(1.0 / CHURN_PER_S)
        stop.wait(PAUSE_S)


def run_web(port_file: Path, parent: int) -> int:
    """The freeable server: SIGTERM starts a slow drain; its parent's death ends it at once."""
    stopping, wake = threading.Event(), threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: (stopping.set(), wake.set()))
    signal.signal(signal.SIGHUP, lambda signum, frame: wake.set())  # parent death: look now
    die_with_parent()
    if os.getppid() != parent:
        return 0
    listener = _listen(port_file)
    serving = threading.Event()
    threading.Thread(target=_serve_closing_first, args=(listener, serving), daemon=True).start()
    while not stopping.is_set():
        if os.getppid() != parent:
            return 0
        wake.wait(PARENT_POLL_S)
        wake.clear()
    print(f"web: SIGTERM, draining for {SLOW_STOP_S:g} s", flush=True)
    time.sleep(SLOW_STOP_S)
    serving.set()
    listener.close()
    return 0


def _spawn_web(world: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "console.demo.ports", "web", "--dir", str(world), "--parent", str(os.getpid())],
        stdin=subprocess.DEVNULL,
    )


def run_helper(world: Path, parent: int) -> int:
    """Churn server and client in threads; the web server as a child, respawned after a free."""
    stop, wake = threading.Event(), threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda signum, frame: (stop.set(), wake.set()))
    # Parent death (see die_with_parent): only a reason to look at the parent now.
    signal.signal(signal.SIGHUP, lambda signum, frame: wake.set())
    die_with_parent()
    if os.getppid() != parent:  # the console died before we got going
        remove_world(world, parent)
        return 0
    listener = _listen(world / CHURN_PORT_FILE)
    churn_port = listener.getsockname()[1]
    threads = [
        threading.Thread(target=_serve_closing_first, args=(listener, stop), daemon=True),
        threading.Thread(target=_churn, args=(churn_port, world / WEB_PORT_FILE, stop), daemon=True),
    ]
    for thread in threads:
        thread.start()
    web = _spawn_web(world)
    respawn_at: float | None = None
    try:
        while not stop.is_set() and os.getppid() == parent:
            wake.wait(PARENT_POLL_S)
            wake.clear()
            if web.poll() is not None:
                if respawn_at is None:
                    respawn_at = time.monotonic() + RESPAWN_S
                elif time.monotonic() >= respawn_at:
                    web, respawn_at = _spawn_web(world), None
    finally:
        stop.set()
        if web.poll() is None:
            web.kill()  # the console is going: no slow drain
        web.wait()
        listener.close()
    if os.getppid() != parent:
        remove_world(world, parent)
    return 0


def watched_ports(world: Path, timeout_s: float = READY_WAIT_S) -> tuple[int, ...]:
    """The web server's port, to watch (waits briefly for the helper to record it)."""
    deadline = time.monotonic() + timeout_s
    while not (port := _read_port(world / WEB_PORT_FILE)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return (port,) if port else ()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m console.demo.ports")
    parser.add_argument("role", nargs="?", choices=("helper", "web"), default="helper")
    parser.add_argument("--dir", type=Path, required=True, help="the demo world directory")
    parser.add_argument("--parent", type=int, required=True, help="the parent's pid")
    args = parser.parse_args(argv)
    if args.role == "web":
        return run_web(args.dir / WEB_PORT_FILE, args.parent)
    return run_helper(args.dir, args.parent)


if __name__ == "__main__":
    sys.exit(main())
