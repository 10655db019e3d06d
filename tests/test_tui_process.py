"""`opsconsole --demo` in a real pseudo-terminal: it draws, and every way out cleans up."""

from __future__ import annotations

import fcntl
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import psutil
import pytest

LIMIT_S = 20.0


class Terminal:
    """A pty running the console, with its output drained so the app never blocks on writes."""

    def __init__(self, args: list[str], env: dict[str, str], size: tuple[int, int]) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
        self.master = master
        self.output = bytearray()
        self.process = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env,
                                        start_new_session=True, cwd=Path(__file__).parent.parent)
        os.close(slave)
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.output.extend(chunk)

    def wait_for(self, text: bytes) -> None:
        deadline = time.monotonic() + LIMIT_S
        while text not in self.output:
            assert self.process.poll() is None, f"console exited early: {bytes(self.output[-2000:])!r}"
            assert time.monotonic() < deadline, f"{text!r} never appeared on the screen"
            time.sleep(0.05)

    def hang_up(self) -> None:
        os.close(self.master)
        self.master = -1

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.master >= 0:
            os.close(self.master)


def world_processes(world: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if str(world) in " ".join(process.info["cmdline"] or []):
            found.append(process)
    return found


@pytest.mark.parametrize("ending", ["q", "ctrl+c", "SIGTERM", "SIGHUP", "terminal closed"])
def test_demo_draws_and_every_exit_removes_the_world(tmp_path, ending):
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp), "TERM": "xterm-256color", "HOME": str(tmp_path),
           "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "XDG_STATE_HOME": str(tmp_path / "state")}
    env.pop("OPSCONSOLE_CONFIG", None)
    terminal = Terminal([sys.executable, "-m", "console", "--demo"], env, (80, 24))
    try:
        terminal.wait_for(b"PCAP cache")
        terminal.wait_for(b"updated")  # a panel's status line: its first collection is on screen
        (world,) = temp.glob("opsconsole-demo-*")
        assert world_processes(world), "the demo's helper processes should be running"
        if ending == "q":
            os.write(terminal.master, b"q")
        elif ending == "ctrl+c":
            os.write(terminal.master, b"\x03")
        elif ending == "terminal closed":
            # The SSH connection or tmux pane went away and no SIGHUP reached the console
            # (it is not the session leader): it must notice the dead terminal by itself.
            terminal.hang_up()
        else:
            terminal.process.send_signal(getattr(signal, ending))
        assert terminal.process.wait(timeout=LIMIT_S) == 0
        # The console leaves at once; its helpers then remove the world (DemoWorld hand_off).
        deadline = time.monotonic() + LIMIT_S
        while (world.exists() or world_processes(world)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not world.exists()
        assert world_processes(world) == []
    finally:
        terminal.close()
