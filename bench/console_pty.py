"""The real console in a pseudo-terminal, driven and measured from outside, as an operator meets it.

Shared by ``bench.soak`` (the demo world, left open for an hour) and the uptime runs of
``bench.pcap`` and ``bench.table`` (the console under load after minutes of uptime).
The console runs as ``python -m console [ARGS]`` with ``OPSCONSOLE_LAG_LOG`` set, so each
second it writes its loop lag and what it holds (DOM nodes, watchers, subscribers: see
console.vitals). CPU and RSS are read from /proc for the console process alone (its
helpers and scan workers are other processes).
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from console.lag import percentile as lag_percentile

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
#: What the terminal sends for the keys an operator presses.
KEYS = {"down": b"\x1b[B", "up": b"\x1b[A", "enter": b"\r", "escape": b"\x1b", "tab": b"\t"}
#: After a key, output that arrives within this long counts as the screen's answer.
ANSWER_WINDOW_S = 2.0


@dataclass(frozen=True, slots=True)
class Usage:
    """The console process's CPU time and RSS at one moment."""

    at: float
    cpu_s: float
    rss_mb: float


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (the console's own, console.lag); NaN when nothing was measured."""
    return lag_percentile(sorted(values), fraction) if values else float("nan")


def median(values: list[float]) -> float:
    return percentile(values, 0.5)


class ConsolePty:
    """``python -m console ARGS`` at ``size`` in a pty; output is drained by a thread."""

    def __init__(self, args: list[str], lag_log: Path, size: tuple[int, int] = (160, 48),
                 env: dict[str, str] | None = None) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
        self.master = master
        self.lag_log = lag_log
        self._output = 0
        self._last_output_at = 0.0
        self._tail = bytearray()
        self._changed = threading.Condition()
        environment = {**os.environ, **(env or {}), "OPSCONSOLE_LAG_LOG": str(lag_log), "TERM": "xterm-256color",
                       "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen([sys.executable, "-m", "console", *args], stdin=slave, stdout=slave,
                                        stderr=slave, env=environment, cwd=ROOT, start_new_session=True)
        os.close(slave)
        self._reader = threading.Thread(target=self._drain, name="pty-drain", daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            with self._changed:
                self._output += len(chunk)
                self._last_output_at = time.monotonic()
                self._tail = (self._tail + chunk)[-65536:]
                self._changed.notify_all()

    def wait_for(self, text: bytes, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while text not in self._tail:
                if self.process.poll() is not None:
                    raise RuntimeError(f"console exited: {bytes(self._tail[-1500:])!r}")
                if not self._changed.wait(max(0.0, min(0.5, deadline - time.monotonic()))) and \
                        time.monotonic() > deadline:
                    raise RuntimeError(f"{text!r} never appeared; screen ends {bytes(self._tail[-1500:])!r}")

    def wait_quiet(self, quiet_s: float = 0.3, timeout_s: float = 5.0) -> None:
        """Until no output came for ``quiet_s`` (the screen has settled)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and time.monotonic() - self._last_output_at < quiet_s:
            time.sleep(0.02)

    def press(self, key: str) -> float | None:
        """Send a key; seconds until the first output after it (None: nothing within the window)."""
        with self._changed:
            before = self._output
        sent = time.monotonic()
        os.write(self.master, KEYS.get(key, key.encode()))
        deadline = sent + ANSWER_WINDOW_S
        with self._changed:
            while self._output == before:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(left)
            return self._last_output_at - sent

    def usage(self) -> Usage:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        rss_kb = next(int(line.split()[1]) for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines()
                      if line.startswith("VmRSS:"))
        return Usage(time.monotonic(), cpu, rss_kb / 1024)

    def lag_lines(self, since: float = 0.0) -> list[dict[str, float]]:
        """The lag log's lines written at or after wall-clock time ``since``."""
        try:
            lines = [json.loads(line) for line in self.lag_log.read_text().splitlines() if line.strip()]
        except FileNotFoundError:
            return []
        return [line for line in lines if line["t"] >= since]

    def quit(self, timeout_s: float = 20.0) -> float:
        """Press q; seconds until the process has exited."""
        sent = time.monotonic()
        os.write(self.master, b"q")
        self.process.wait(timeout_s)
        return time.monotonic() - sent

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        os.close(self.master)
