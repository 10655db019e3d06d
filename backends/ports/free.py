"""Free-port: stop the processes that own a port's listening socket, then show if it binds.

Only the holders of the LISTEN socket are targets, never clients connected to the port;
a prefork master comes before its workers. Signalling is backends.process_stop's job
(pidfd, start time, and here "still owns the socket inode" re-checked right before each
signal). Afterwards the action waits for the listener to go and reports what is left:
TIME_WAIT sockets, for how long, and whether a server can bind with and without
SO_REUSEADDR.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

from backends.actions import Outcome, Plan, Progress
from backends.human import human_duration
from backends.ports.bind import bind_test
from backends.ports.collect import read_tally
from backends.ports.diag import listen_sockets
from backends.ports.model import Proto, TcpState
from backends.ports.owners import (
    OWNER_HIDDEN,
    OWNER_NOT_FOUND,
    OWNER_UNREADABLE,
    holds_socket,
    masters_first,
    socket_holders,
    user_name,
)
from backends.process_stop import (
    ProcessGone,
    ProcessIdentity,
    ProcessUnreadable,
    identify,
    refusal,
    stop_processes,
)

DEFAULT_GRACE_S = 5.0
#: After the signals: how long to wait for the listening socket to disappear.
LISTENER_WAIT_S = 5.0
LISTENER_POLL_S = 0.05
#: How much of a command line the plan shows.
COMMAND_CHARS = 100


class FreePortRefused(Exception):
    """The port cannot be freed safely; the message says why."""


@dataclass(frozen=True, slots=True)
class FreePortPlan:
    """The plan's payload: who to stop, and the socket inodes that prove they still hold the port."""

    port: int
    targets: tuple[ProcessIdentity, ...]
    inodes: frozenset[int]


@dataclass(frozen=True, slots=True)
class Leftovers:
    """What is left on a port: its TIME_WAIT sockets and the longest timer among them."""

    time_wait: int
    expires_in_s: float | None
    others: int


def leftovers(port: int) -> Leftovers:
    """TCP sockets on ``port`` that are not listeners (one pass over the kernel's sockets)."""
    tally, _ = read_tally((Proto.TCP,))
    time_wait = others = 0
    for (_, sock_port, state), count in tally.counts.items():
        if sock_port != port or state == TcpState.LISTEN.name:
            continue
        if state == TcpState.TIME_WAIT.name:
            time_wait += count
        else:
            others += count
    expires_ms = tally.time_wait_ms.get(port) if time_wait else None
    return Leftovers(time_wait, None if expires_ms is None else expires_ms / 1000, others)


def describe_leftovers(left: Leftovers) -> str:
    """``12 TIME_WAIT for about 40 s more, 1 other connection`` (or ``no sockets left``)."""
    parts = []
    if left.time_wait:
        parts.append(f"{left.time_wait} TIME_WAIT for about {round(left.expires_in_s or 0)} s more")
    if left.others:
        parts.append(f"{left.others} other connection{'s' if left.others != 1 else ''}")
    return ", ".join(parts) or "no sockets left"


def check_port(port: int) -> int:
    """A port number from the operator, or ValueError with a one-line reason."""
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} is out of range (1-65535)")
    return port


class FreePortAction:
    """The ``ports.free_port`` action (TUI key ``k``/``K``, ``opsconsole free-port``)."""

    name = "ports.free_port"
    panel = "ports"

    def __init__(self, port: int, *, grace_s: float = DEFAULT_GRACE_S, escalate: bool = False,
                 listener_wait_s: float = LISTENER_WAIT_S) -> None:
        self.port = check_port(port)
        if grace_s < 0:
            raise ValueError(f"grace period {grace_s:g} s is negative")
        self.grace_s = grace_s
        self.escalate = escalate
        self.listener_wait_s = listener_wait_s

    # -- plan ------------------------------------------------------------------------

    def _holders(self) -> tuple[list[ProcessIdentity], frozenset[int]]:
        sockets = listen_sockets(self.port)
        inodes = frozenset(sock.inode for sock in sockets)
        holders = socket_holders(inodes)
        euid = os.geteuid()
        for sock in sockets:
            if sock.inode not in holders.pids:
                if euid != 0 and sock.uid != euid:
                    raise FreePortRefused(
                        f"permission denied: port {self.port} is held by a process of {user_name(sock.uid)} "
                        f"({OWNER_HIDDEN})"
                    )
                why = OWNER_UNREADABLE if holders.unreadable else OWNER_NOT_FOUND
                raise FreePortRefused(f"port {self.port}: {why}; refusing (fail closed)")
        identities: list[ProcessIdentity] = []
        for pid in dict.fromkeys(pid for pids in holders.pids.values() for pid in pids):
            try:
                identities.append(identify(pid))
            except ProcessGone:
                continue
            except ProcessUnreadable as exc:
                raise FreePortRefused(f"{exc}: refusing (fail closed)") from None
        return masters_first(identities), inodes

    def plan(self) -> Plan:
        targets, inodes = self._holders()
        title_port = f"port {self.port}/tcp"
        if not targets:
            left = leftovers(self.port)
            return Plan(self.name, str(self.port), f"{title_port} has no listener: nothing to stop "
                        f"({describe_leftovers(left)})", nothing_to_do=True)
        refusals = [reason for target in targets if (reason := refusal(target)) is not None]
        if refusals:
            raise FreePortRefused("; ".join(refusals))
        now = time.time()
        holds = "processes hold" if len(targets) != 1 else "process holds"
        lines = [f"{len(targets)} {holds} the listening socket (clients connected to the port are not touched):"]
        for target in targets:
            children = f"  children: {', '.join(map(str, target.children))}" if target.children else ""
            lines.append(f"  pid {target.pid}  {target.user}  up {human_duration(max(0.0, now - target.create_time))}"
                         f"  {target.command()[:COMMAND_CHARS]}{children}")
        lines.append("")
        if len(targets) > 1:
            lines.append("Order: the master first, then its workers.")
        then = ("then SIGKILL whatever still holds the port" if self.escalate
                else "then stop; no SIGKILL (escalation not chosen)")
        lines.append(f"Signals: SIGTERM, wait up to {self.grace_s:g} s (countdown), {then}.")
        lines.append("Right before each signal a pidfd is opened and the pid's start time and socket are"
                     " re-checked: a pid that now names another process is never signalled.")
        audit = {
            "port": self.port,
            "grace_s": self.grace_s,
            "escalate": self.escalate,
            "targets": [{"pid": t.pid, "create_time": t.create_time, "name": t.name, "user": t.user,
                         "cmdline": list(t.cmdline)} for t in targets],
        }
        verb = "stop" if not self.escalate else "stop (SIGKILL after grace)"
        return Plan(self.name, str(self.port), f"Free {title_port}: {verb} {len(targets)} process"
                    f"{'es' if len(targets) != 1 else ''}", tuple(lines), audit,
                    payload=FreePortPlan(self.port, tuple(targets), inodes))

    # -- execute ---------------------------------------------------------------------

    def execute(self, plan: Plan, progress: Progress, cancelled: threading.Event) -> Outcome:
        payload: FreePortPlan = plan.payload
        report = stop_processes(
            payload.targets,
            grace_s=self.grace_s,
            escalate=self.escalate,
            still_holds=lambda identity: holds_socket(identity.pid, payload.inodes),
            progress=progress,
            cancelled=cancelled,
        )
        # A holder still running (no escalation, refused, survived SIGKILL) keeps the
        # listener: waiting for it to close would only delay the report.
        remaining = (self._wait_for_no_listener(progress, cancelled) if report.all_gone
                     else listen_sockets(self.port))
        left = leftovers(self.port)
        test = bind_test(self.port)
        if remaining:
            summary = (f"port {self.port} still has a listener ({len(remaining)} socket"
                       f"{'s' if len(remaining) != 1 else ''})")
        elif left.time_wait or left.others:
            summary = f"port {self.port}: listener gone; {describe_leftovers(left)}"
        else:
            summary = f"port {self.port} is free"
        message = "\n".join((summary, test.text(), *report.lines()))
        details = {
            "processes": report.details(),
            "listener_left": bool(remaining),
            "time_wait": left.time_wait,
            "time_wait_expires_in_s": left.expires_in_s,
            "binds_without_reuseaddr": test.plain.ok,
            "binds_with_reuseaddr": test.reuseaddr.ok,
        }
        return Outcome(ok=not remaining and report.all_gone, message=message, details=details)

    def _wait_for_no_listener(self, progress: Progress, cancelled: threading.Event) -> list[object]:
        deadline = time.monotonic() + self.listener_wait_s
        while True:
            remaining = listen_sockets(self.port)
            if not remaining or time.monotonic() >= deadline or cancelled.is_set():
                return list(remaining)
            progress.note(f"waiting for port {self.port}'s listener to close, "
                          f"{deadline - time.monotonic():.0f} s left")
            cancelled.wait(LISTENER_POLL_S)
