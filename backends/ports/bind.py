"""The bind test: bind a port exactly as a server would, with and without SO_REUSEADDR.

The incident's pre-flight check bound with SO_REUSEADDR, which TIME_WAIT sockets let
through, while the real server bound without it and failed. Showing both outcomes side
by side makes that difference visible. Each socket is closed at once; a TCP socket is
also put into listen(), because that is where a bind that slipped through can still fail.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from backends.ports.model import Proto


@dataclass(frozen=True, slots=True)
class BindOutcome:
    reuseaddr: bool
    ok: bool
    error: str | None = None

    def text(self) -> str:
        how = "with SO_REUSEADDR" if self.reuseaddr else "without SO_REUSEADDR"
        return f"{how}: {'binds' if self.ok else 'fails (' + (self.error or '?') + ')'}"


@dataclass(frozen=True, slots=True)
class BindTest:
    proto: Proto
    address: str
    port: int
    plain: BindOutcome
    reuseaddr: BindOutcome

    def text(self) -> str:
        return f"bind {self.proto}/{self.address}:{self.port} {self.plain.text()}; {self.reuseaddr.text()}"

    def short(self) -> str:
        """``bind :5000 plain fails, SO_REUSEADDR binds`` for a one-line summary."""
        def word(outcome: BindOutcome) -> str:
            return "binds" if outcome.ok else "fails"
        return f"bind :{self.port} plain {word(self.plain)}, SO_REUSEADDR {word(self.reuseaddr)}"


def _try_bind(proto: Proto, address: str, port: int, reuseaddr: bool) -> BindOutcome:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    kind = socket.SOCK_STREAM if proto is Proto.TCP else socket.SOCK_DGRAM
    try:
        with socket.socket(family, kind) as sock:
            if reuseaddr:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address, port))
            if proto is Proto.TCP:
                sock.listen(1)
    except OSError as exc:
        return BindOutcome(reuseaddr, False, exc.strerror or str(exc))
    return BindOutcome(reuseaddr, True)


def bind_test(port: int, proto: Proto = Proto.TCP, address: str = "0.0.0.0") -> BindTest:
    """Try both ways, without SO_REUSEADDR first; never leaves a socket open.

    ``address`` defaults to the wildcard a server listening on all interfaces uses
    (a wildcard bind also conflicts with sockets on any one address of that port).
    """
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} is out of range (1-65535)")
    return BindTest(proto, address, port, _try_bind(proto, address, port, False), _try_bind(proto, address, port, True))
