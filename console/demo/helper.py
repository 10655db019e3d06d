"""Helper processes that give the demo world (`opsconsole --demo`) its live activity.

Run as ``python -m console.demo.helper <helper> --dir DIR --parent PID``; one subcommand
per helper, so each issue that adds demo activity adds a subcommand here and a
``HelperSpec`` in ``console.demo.world``. A helper dies with the console that started it and,
if that console was killed outright (no ``__exit__`` ran), removes the world itself.
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import os
import selectors
import shutil
import signal
import socket
import struct
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

#: Written into every world dir by the console, holding the console's pid; nothing is
#: deleted from a directory without it.
MARKER = ".opsconsole-demo"
#: Where the activity helper records its listening port.
PORT_FILE = "port"
#: The lock the activity helper holds for its whole life, with its pid inside.
LOCK_NAME = "demo-activity.lock"
#: Sent by Linux when our parent (thread) exits; a helper has no terminal, so no real
#: hangup ever arrives, and SIGTERM stays an unambiguous "stop".
PARENT_DEATH_SIGNAL = signal.SIGHUP

APPEND_EVERY_S = 2.0
ROTATE_EVERY_S = 10.0
PARENT_POLL_S = 1.0
PACKETS_PER_APPEND = 4
PACKET_BYTES = 1000

_PR_SET_PDEATHSIG = 1
# Classic libpcap global header: magic, v2.4, thiszone, sigfigs, snaplen, linktype (Ethernet).
_PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)


def remove_world(world: Path, owner_pid: int) -> bool:
    """Delete ``world`` if its marker names ``owner_pid``; True when it was deleted.

    The marker goes last, so when several helpers clean up at once (or one is interrupted)
    whoever comes next still finds the marker and finishes the job.
    """
    marker = world / MARKER
    try:
        if marker.read_text().strip() != str(owner_pid):
            return False
        for entry in world.iterdir():
            if entry.name == MARKER:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        marker.unlink(missing_ok=True)
        world.rmdir()
    except (OSError, ValueError):
        # Already gone, not a directory, or written into meanwhile: report it, never force.
        return False
    return True


def die_with_parent() -> None:
    """Ask Linux to send PARENT_DEATH_SIGNAL when our parent goes; the getppid poll backs it up.

    The signal only wakes the helper to look at its parent, it is not a stop request:
    Linux sends it when the *thread* that spawned us exits. When the console is SIGKILLed
    and its main thread dies first, we are briefly reparented to a sibling thread (same
    pid) and signalled while ``getppid()`` still names the console; deciding then would
    exit without cleaning up. A helper restarted by the supervisor thread is likewise
    signalled when that thread stops during an orderly shutdown, with the console alive.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, PARENT_DEATH_SIGNAL, 0, 0, 0)


class _Signals:
    """Signals set flags and wake the selector, so the helper reacts at once, not per poll."""

    def __init__(self, selector: selectors.BaseSelector) -> None:
        self.stop_requested = False
        self._wake_r, self._wake_w = socket.socketpair()
        for end in (self._wake_r, self._wake_w):
            end.setblocking(False)
        signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_stop)
        # A handler (not SIG_IGN) so the wakeup fd fires; the loop then checks getppid().
        signal.signal(PARENT_DEATH_SIGNAL, self._on_parent_death)
        selector.register(self._wake_r, selectors.EVENT_READ, self._drain)

    def _on_stop(self, signum: int, frame: object) -> None:
        self.stop_requested = True

    def _on_parent_death(self, signum: int, frame: object) -> None:
        pass

    def _drain(self) -> None:
        try:
            self._wake_r.recv(64)
        except BlockingIOError:
            pass


class _LiveCapture:
    """A capture file that grows every few seconds and rotates like a real capture daemon."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._file: BinaryIO | None = None
        self._opened_at = 0.0

    def append(self) -> None:
        """Write a few packets, starting a new file first when the current one is old."""
        now = time.monotonic()
        file = self._file
        if file is None or now - self._opened_at >= ROTATE_EVERY_S:
            self.close()
            file = self._file = self._open_next()
            self._opened_at = now
        ts = time.time()
        for _ in range(PACKETS_PER_APPEND):
            record = struct.pack("<IIII", int(ts), int(ts % 1 * 1e6), PACKET_BYTES, PACKET_BYTES)
            file.write(record + os.urandom(PACKET_BYTES))
        file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _open_next(self) -> BinaryIO:
        # Numbered after what is on disk, so a restarted helper never appends to an old file.
        day = self._root / time.strftime("%Y-%m-%d")
        day.mkdir(parents=True, exist_ok=True)
        taken = [int(n) for p in day.glob("live-*.pcap") if (n := p.stem[5:]).isdigit()]
        file = open(day / f"live-{max(taken, default=-1) + 1}.pcap", "xb")
        file.write(_PCAP_HEADER)
        return file


def _hold_lock(path: Path) -> int:
    """Take an exclusive flock on ``path`` and write our pid into it; returns the fd."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise SystemExit(f"demo activity: {path} is locked by another process") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _listen(port_file: Path) -> socket.socket:
    """Listen on 127.0.0.1, on the port a previous run recorded if it is still free.

    Keeping the port across restarts keeps ``ports.watch`` in an applied config correct.
    SO_REUSEADDR lets the rebind succeed while that port still has TIME_WAIT connections.
    """
    try:
        previous = int(port_file.read_text())
    except (FileNotFoundError, ValueError):
        previous = 0
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("127.0.0.1", previous))
    except OSError:
        listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    tmp = port_file.with_name(f".{port_file.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as out:
        out.write(f"{port}\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, port_file)
    return listener


def _accept_all(listener: socket.socket) -> None:
    while True:
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return
        conn.close()


def run_activity(world: Path, parent: int) -> int:
    """The baseline demo activity: a TCP listener, a growing capture, a held lock."""
    selector = selectors.DefaultSelector()
    signals = _Signals(selector)  # before prctl, so the parent-death signal is handled
    die_with_parent()
    lock_fd = _hold_lock(world / "locks" / LOCK_NAME)
    listener = _listen(world / PORT_FILE)
    selector.register(listener, selectors.EVENT_READ, lambda: _accept_all(listener))
    capture = _LiveCapture(world / "pcap")
    try:
        next_append = time.monotonic()
        # Checked every pass: also covers a parent that died before prctl took effect.
        while not signals.stop_requested and os.getppid() == parent:
            now = time.monotonic()
            if now >= next_append:
                capture.append()
                next_append = now + APPEND_EVERY_S
            timeout = min(PARENT_POLL_S, max(0.0, next_append - time.monotonic()))
            for key, _ in selector.select(timeout):
                key.data()
    finally:
        capture.close()
        listener.close()
        os.close(lock_fd)
    if os.getppid() != parent:
        remove_world(world, parent)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dir", type=Path, required=True, help="the demo world directory")
    common.add_argument("--parent", type=int, required=True, help="the console's pid")
    parser = argparse.ArgumentParser(prog="python -m console.demo.helper")
    helpers = parser.add_subparsers(dest="helper", required=True)
    activity = helpers.add_parser(
        "activity", parents=[common], help="listener, live capture and a held lock"
    )
    activity.set_defaults(run=run_activity)
    args = parser.parse_args(argv)
    exit_code: int = args.run(args.dir, args.parent)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
