"""The fallback socket source: /proc/net/{tcp,tcp6,udp,udp6}, for kernels without sock_diag.

Slower than netlink (the kernel formats every socket as text), but always there. The
``tm->when`` column of a TIME_WAIT socket counts USER_HZ ticks (``clock_t``, 100 a
second), not the kernel's HZ.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from backends.ports.model import ListenSocket, Proto, SocketTally, TcpState

PROC_NET = Path("/proc/net")
#: USER_HZ: what ``tm->when`` counts.
TICKS_PER_S = os.sysconf("SC_CLK_TCK")
TABLES = {(Proto.TCP, socket.AF_INET): "tcp", (Proto.TCP, socket.AF_INET6): "tcp6",
          (Proto.UDP, socket.AF_INET): "udp", (Proto.UDP, socket.AF_INET6): "udp6"}


def _address(family: int, text: str) -> str:
    """``0100007F`` (32-bit words printed in host order) -> ``127.0.0.1``."""
    raw = b"".join(int(text[i : i + 8], 16).to_bytes(4, sys.byteorder) for i in range(0, len(text), 8))
    return socket.inet_ntop(family, raw)


def tally_proc(tally: SocketTally, proto: Proto, family: int, root: Path = PROC_NET) -> None:
    """Count one /proc/net table's sockets into ``tally`` (a missing table, e.g. IPv6 off, adds none)."""
    table = TABLES[(proto, family)]
    try:
        lines = (root / table).read_text().splitlines()[1:]
    except FileNotFoundError:
        return
    for line in lines:
        fields = line.split()
        local, state_hex, timer, uid, inode = fields[1], fields[3], fields[5], fields[7], fields[9]
        address, port_hex = local.rsplit(":", 1)
        port, state = int(port_hex, 16), int(state_hex, 16)
        if proto is Proto.UDP and (port == 0 or state not in (TcpState.CLOSE, TcpState.ESTABLISHED)):
            continue
        if proto is Proto.TCP and state == TcpState.CLOSE:
            continue
        tally.add(proto, port, state)
        if proto is Proto.TCP and state == TcpState.TIME_WAIT:
            tally.note_time_wait(port, int(timer.split(":")[1], 16) * 1000 // TICKS_PER_S)
        elif (proto is Proto.TCP and state == TcpState.LISTEN) or (proto is Proto.UDP and state == TcpState.CLOSE):
            tally.listeners.append(ListenSocket(proto, port, _address(family, address), int(uid), int(inode)))
