"""What the Ports panel knows: socket tallies, port rows and their verdicts.

The tallies are filled by a socket source (sock_diag netlink, or /proc/net as the
fallback); the rows are what the panel shows and what `snapshot --json` prints under
``ports`` (DESIGN.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum


class Proto(StrEnum):
    TCP = "tcp"
    UDP = "udp"


class TcpState(IntEnum):
    """The kernel's socket states (include/net/tcp_states.h); names as the issue spells them."""

    ESTABLISHED = 1
    SYN_SENT = 2
    SYN_RECV = 3
    FIN_WAIT1 = 4
    FIN_WAIT2 = 5
    TIME_WAIT = 6
    CLOSE = 7
    CLOSE_WAIT = 8
    LAST_ACK = 9
    LISTEN = 10
    CLOSING = 11
    NEW_SYN_RECV = 12  # a half-open connection as a request sock; shown as SYN_RECV


#: The TCP states counted per port, in display order.
TCP_STATES: tuple[TcpState, ...] = (
    TcpState.LISTEN,
    TcpState.ESTABLISHED,
    TcpState.TIME_WAIT,
    TcpState.CLOSE_WAIT,
    TcpState.FIN_WAIT1,
    TcpState.FIN_WAIT2,
    TcpState.SYN_SENT,
    TcpState.SYN_RECV,
    TcpState.LAST_ACK,
    TcpState.CLOSING,
)
#: A UDP socket bound but not connected: the UDP form of "listening" (``ss`` says UNCONN).
UDP_UNCONN = "UNCONN"


def state_name(proto: Proto, state: int) -> str:
    """The name a count is reported under: TCP state names, UNCONN for bound UDP."""
    if proto is Proto.UDP and state == TcpState.CLOSE:
        return UDP_UNCONN
    if state == TcpState.NEW_SYN_RECV:
        return TcpState.SYN_RECV.name
    return TcpState(state).name


class PortVerdict(StrEnum):
    """Can a server bind this port now? (the JSON contract's three values)."""

    FREE = "free"
    LISTENING = "listening"
    #: No listener, but TIME_WAIT (or other lingering) sockets make a bind without
    #: SO_REUSEADDR fail.
    TIME_WAIT = "time_wait"


@dataclass(frozen=True, slots=True)
class ListenSocket:
    """One listening TCP socket (or bound UDP socket), as the kernel reports it."""

    proto: Proto
    port: int
    address: str
    uid: int
    inode: int


@dataclass(slots=True)
class SocketTally:
    """Per-port counts gathered by one pass over the kernel's sockets (mutable while filled)."""

    counts: dict[tuple[Proto, int, str], int] = field(default_factory=dict)
    #: Milliseconds until the last TIME_WAIT socket of each TCP port expires.
    time_wait_ms: dict[int, int] = field(default_factory=dict)
    listeners: list[ListenSocket] = field(default_factory=list)
    sockets: int = 0

    def add(self, proto: Proto, port: int, state: int, count: int = 1) -> None:
        key = (proto, port, state_name(proto, state))
        self.counts[key] = self.counts.get(key, 0) + count
        self.sockets += count

    def note_time_wait(self, port: int, expires_ms: int) -> None:
        if expires_ms > self.time_wait_ms.get(port, -1):
            self.time_wait_ms[port] = expires_ms


@dataclass(frozen=True, slots=True)
class Listener:
    """A process that holds a port's listening socket (JSON: ``ports[].listeners[]``).

    ``note`` says why the owner is unknown: "owner hidden (needs root)" when the socket
    belongs to another user and we are not root.
    """

    pid: int | None
    name: str | None
    user: str | None
    cmdline: tuple[str, ...]
    started_at: float | None
    ppid: int | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class PortRow:
    """One (protocol, port) with its sockets, owners and verdict; a ``snapshot --json`` entry."""

    port: int
    proto: Proto
    address: str | None
    listeners: tuple[Listener, ...]
    states: Mapping[str, int]
    time_wait_expires_in_s: float | None
    watched: bool
    verdict: PortVerdict
    verdict_text: str
    addresses: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, int]:
        return (self.proto.value, self.port)

    @property
    def time_wait(self) -> int:
        return self.states.get(TcpState.TIME_WAIT.name, 0)

    @property
    def has_listener(self) -> bool:
        return bool(self.listeners) or bool(self.addresses)


@dataclass(frozen=True, slots=True)
class PortsValue:
    """The Ports collector's value: rows in display order (watched, listening, by TIME_WAIT)."""

    ports: tuple[PortRow, ...]
    source: str
    sockets: int

    def summary(self) -> str:
        listening = sum(1 for row in self.ports if row.verdict is PortVerdict.LISTENING)
        waiting = sum(row.time_wait for row in self.ports)
        return f"{len(self.ports)} ports, {listening} listening, {waiting:,} TIME_WAIT ({self.source})"


def verdict_of(proto: Proto, listening: bool, states: Mapping[str, int], expires_in_s: float | None) -> tuple[PortVerdict, str]:
    """The verdict and its sentence for one port.

    The incident in one rule: a bind without SO_REUSEADDR fails while any socket still
    holds the port, TIME_WAIT included; with SO_REUSEADDR only a listener blocks it.
    """
    if listening:
        return PortVerdict.LISTENING, "listening: a new server cannot bind until the owner lets go"
    time_wait = states.get(TcpState.TIME_WAIT.name, 0)
    others = sum(n for name, n in states.items() if name != TcpState.TIME_WAIT.name)
    if proto is Proto.TCP and (time_wait or others):
        if time_wait:
            seconds = 0 if expires_in_s is None else round(expires_in_s)
            text = f"blocked by {time_wait} TIME_WAIT for about {seconds} s"
        else:
            text = "no listener"
        if others:
            text += f"; {others} other connection{'s' if others != 1 else ''} still open"
        return PortVerdict.TIME_WAIT, text + ": a server that binds without SO_REUSEADDR will fail until then"
    return PortVerdict.FREE, "free: a server can bind now"
