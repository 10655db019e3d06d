"""The Ports collector: one pass over the kernel's sockets, owners of the listeners, verdicts.

Rows: every watched port, every port with a listener (TCP LISTEN or bound UDP), and
every TCP port with TIME_WAIT sockets (a server binding there without SO_REUSEADDR
would fail). Connections on other ports (a client's ephemeral side) are counted but
not listed.
"""

from __future__ import annotations

import socket
from collections.abc import Collection, Sequence
from types import MappingProxyType

from backends.collector import CollectContext
from backends.ports.diag import DiagUnavailable, tally_tcp, tally_udp
from backends.ports.model import (
    TCP_STATES,
    UDP_UNCONN,
    ListenSocket,
    PortRow,
    PortsValue,
    Proto,
    SocketTally,
    TcpState,
    verdict_of,
)
from backends.ports.owners import HolderCache, Holders, OwnerCache
from backends.ports.proc import tally_proc

FAMILIES = (socket.AF_INET, socket.AF_INET6)
_STATE_ORDER = {name: index for index, name in enumerate([s.name for s in TCP_STATES] + [UDP_UNCONN])}


class Cancelled(Exception):
    """The collector gave up on this run (timeout or shutdown)."""


def read_tally(protos: Collection[Proto] = (Proto.TCP, Proto.UDP)) -> tuple[SocketTally, str]:
    """Count every socket: sock_diag netlink, or /proc/net where netlink cannot dump.

    Returns the tally and the name of the source(s) used.
    """
    tally = SocketTally()
    sources: set[str] = set()
    if Proto.TCP in protos:
        try:
            tally_tcp(tally)  # fills the tally only once the whole dump has been read
            sources.add("netlink")
        except DiagUnavailable:
            for family in FAMILIES:
                tally_proc(tally, Proto.TCP, family)
            sources.add("/proc/net")
    if Proto.UDP in protos:
        for family in FAMILIES:
            try:
                tally_udp(tally, family)
                sources.add("netlink")
            except DiagUnavailable:
                tally_proc(tally, Proto.UDP, family)
                sources.add("/proc/net")
    return tally, "+".join(sorted(sources))


def _primary(addresses: Sequence[str]) -> str | None:
    """The address a row shows: a wildcard if one is bound, else the first."""
    for wildcard in ("0.0.0.0", "::"):
        if wildcard in addresses:
            return wildcard
    return addresses[0] if addresses else None


def build_rows(tally: SocketTally, holders: Holders, watch: Sequence[int], owners: OwnerCache) -> list[PortRow]:
    """Turn a tally into rows in display order: watched, then listening, then by TIME_WAIT."""
    states: dict[tuple[Proto, int], dict[str, int]] = {}
    for (proto, port, name), count in tally.counts.items():
        states.setdefault((proto, port), {})[name] = count
    listening: dict[tuple[Proto, int], list[ListenSocket]] = {}
    for sock in tally.listeners:
        listening.setdefault((sock.proto, sock.port), []).append(sock)
    watched = set(watch)
    keys = {key for key, counts in states.items() if key in listening or TcpState.TIME_WAIT.name in counts}
    keys |= {key for key in states if key[1] in watched}
    keys |= {(Proto.TCP, port) for port in watched}
    rows = []
    for proto, port in keys:
        counts = states.get((proto, port), {})
        sockets = listening.get((proto, port), [])
        addresses = tuple(dict.fromkeys(sock.address for sock in sockets))
        expires_ms = tally.time_wait_ms.get(port) if proto is Proto.TCP and TcpState.TIME_WAIT.name in counts else None
        expires_in_s = None if expires_ms is None else expires_ms / 1000
        verdict, text = verdict_of(proto, bool(sockets), counts, expires_in_s)
        rows.append(
            PortRow(
                port=port,
                proto=proto,
                address=_primary(addresses),
                listeners=tuple(owners.listeners(sockets, holders)),
                states=MappingProxyType(dict(sorted(counts.items(), key=lambda item: _STATE_ORDER[item[0]]))),
                time_wait_expires_in_s=expires_in_s,
                watched=port in watched,
                verdict=verdict,
                verdict_text=text,
                addresses=addresses,
            )
        )
    rows.sort(key=lambda row: (not row.watched, not row.has_listener, -row.time_wait, row.port, row.proto.value))
    return rows


class PortsCollector:
    """The collect function of the Ports panel; keeps the owner cache between refreshes."""

    def __init__(self, watch: Sequence[int] = ()) -> None:
        self.watch = tuple(watch)
        self._owners = OwnerCache()
        self.holders = HolderCache()

    def __call__(self, context: CollectContext[PortsValue] | None = None) -> PortsValue:
        tally, source = read_tally()
        if context is not None and context.cancelled.is_set():
            raise Cancelled("ports collection cancelled")
        holders = self.holders.holders({sock.inode for sock in tally.listeners})
        rows = build_rows(tally, holders, self.watch, self._owners)
        self._owners.end_refresh()
        return PortsValue(ports=tuple(rows), source=source, sockets=tally.sockets)
