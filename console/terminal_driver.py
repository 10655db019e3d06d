"""A terminal driver that notices when its terminal goes away, and then lets the app quit.

A dropped SSH connection or a closed tmux pane hangs the terminal up, and the console is
not always told: SIGHUP goes to the session leader (the shell), which need not pass it on.
Textual's own driver then misbehaves: its output thread dies at the first write that
fails, so later writes block for good on that thread's full queue (neither `q` nor
SIGTERM can end the app any more), and its input thread spins on end-of-file. This driver
watches the terminal from a thread of its own; when it is gone it points the standard
descriptors at /dev/null (reads see end-of-file, writes succeed into nothing) and posts
:class:`TerminalLost`, on which the app quits the way SIGHUP makes it quit: collectors
stopped, a running action told to stop and audited, the demo world removed.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from textual.drivers.linux_driver import LinuxDriver
from textual.message import Message

#: How often the watcher looks at the terminal (an ioctl: microseconds, never blocks).
WATCH_INTERVAL_S = 0.5


class TerminalLost(Message):
    """The terminal was hung up: nobody can see or answer the console any more."""


def terminal_gone(fd: int) -> bool:
    """True when ``fd``, a terminal when the app started, has been hung up or closed."""
    try:
        os.get_terminal_size(fd)
    except OSError:
        return True
    return False


class HangupAwareDriver(LinuxDriver):
    """LinuxDriver whose writes never block on a dead output thread, plus a hang-up watcher."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._terminal_lost = threading.Event()
        self._watcher: threading.Thread | None = None

    def start_application_mode(self) -> None:
        super().start_application_mode()
        if os.isatty(self.fileno) and self._watcher is None:
            self._watcher = threading.Thread(target=self._watch, name="opsconsole-hangup", daemon=True)
            self._watcher.start()

    def _watch(self) -> None:
        while not self.exit_event.wait(WATCH_INTERVAL_S):
            if terminal_gone(self.fileno):
                self._lose_terminal()
                return

    def _lose_terminal(self) -> None:
        self._terminal_lost.set()
        devnull = os.open(os.devnull, os.O_RDWR)
        try:
            for fd in {0, 1, 2, self.fileno}:
                os.dup2(devnull, fd)
        finally:
            os.close(devnull)
        self.send_message(TerminalLost())

    def _writer_alive(self) -> bool:
        return self._writer_thread is not None and self._writer_thread.is_alive()

    def write(self, data: str) -> None:
        """Drop output nobody can see: after the output thread died its queue is never emptied."""
        if self._terminal_lost.is_set() or not self._writer_alive():
            return
        super().write(data)

    def close(self) -> None:
        if self._writer_alive():
            super().close()
