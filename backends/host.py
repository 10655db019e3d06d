"""Facts about this host for the header: name, user, boot time."""

from __future__ import annotations

import getpass
import os
import socket
from dataclasses import dataclass

import psutil


@dataclass(frozen=True, slots=True)
class HostInfo:
    hostname: str
    user: str
    uid: int
    boot_time: float | None

    def uptime_s(self, now: float) -> float | None:
        return None if self.boot_time is None else max(0.0, now - self.boot_time)


def read_host_info() -> HostInfo:
    """Read once at start-up (it reads /proc): boot time does not change while we run."""
    try:
        boot_time: float | None = psutil.boot_time()
    except (OSError, RuntimeError):
        boot_time = None
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return HostInfo(hostname=socket.gethostname(), user=user, uid=os.getuid(), boot_time=boot_time)
