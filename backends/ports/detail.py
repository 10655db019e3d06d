"""What the Ports detail view fetches on demand: a port's connections and its owners' process tree."""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import psutil

from backends.ports.diag import TCP_STATE_MASK, UDP_STATE_MASK, DiagUnavailable, sockets
from backends.ports.model import Proto, TcpState, state_name

#: How many remote endpoints the detail view lists.
TOP_ENDPOINTS = 15
#: Bounds of the process tree below an owner.
TREE_DEPTH = 3
TREE_NODES = 40


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Connections from one remote address in one state."""

    remote: str
    state: str
    count: int


@dataclass(frozen=True, slots=True)
class TreeNode:
    depth: int
    pid: int
    name: str
    user: str
    command: str
    holder: bool


@dataclass(frozen=True, slots=True)
class PortDetail:
    proto: Proto
    port: int
    connections: int
    endpoints: tuple[Endpoint, ...]
    tree: tuple[TreeNode, ...]
    note: str | None = None


def endpoints(proto: Proto, port: int, top: int = TOP_ENDPOINTS) -> tuple[int, list[Endpoint]]:
    """All connections on local ``port`` (listeners excluded), grouped by remote address and state."""
    protocol, mask = (socket.IPPROTO_TCP, TCP_STATE_MASK & ~(1 << TcpState.LISTEN)) if proto is Proto.TCP else (
        socket.IPPROTO_UDP, UDP_STATE_MASK & ~(1 << TcpState.CLOSE))
    counts: Counter[tuple[str, str]] = Counter()
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            for sock in sockets(family, protocol, mask):
                if sock.local_port == port:
                    counts[(sock.remote, state_name(proto, sock.state))] += 1
        except DiagUnavailable:
            continue
    listed = [Endpoint(remote, state, count) for (remote, state), count in counts.most_common(top)]
    return sum(counts.values()), listed


def _node(process: psutil.Process, depth: int, holders: set[int]) -> TreeNode:
    with process.oneshot():
        try:
            command = " ".join(" ".join(process.cmdline()).split()) or f"[{process.name()}]"
        except psutil.AccessDenied:
            command = f"[{process.name()}]"
        try:
            user = process.username()
        except (psutil.AccessDenied, KeyError):
            user = "?"
        return TreeNode(depth, process.pid, process.name(), user, command, process.pid in holders)


def process_tree(owner_pids: Sequence[int]) -> list[TreeNode]:
    """The first owner's ancestors, then each owner with its descendants (bounded)."""
    holders = set(owner_pids)
    nodes: list[TreeNode] = []
    shown: set[int] = set()
    for index, pid in enumerate(owner_pids):
        if pid in shown:
            continue
        try:
            process = psutil.Process(pid)
            lineage = list(reversed(process.parents())) if index == 0 else []
            for depth, ancestor in enumerate(lineage):
                nodes.append(_node(ancestor, depth, holders))
            stack = [(process, len(lineage))]
            while stack and len(nodes) < TREE_NODES:
                current, depth = stack.pop()
                nodes.append(_node(current, depth, holders))
                shown.add(current.pid)
                if depth - len(lineage) < TREE_DEPTH:
                    stack.extend((child, depth + 1) for child in reversed(current.children()))
        except psutil.NoSuchProcess:
            continue
    return nodes


def port_detail(proto: Proto, port: int, owner_pids: Sequence[int]) -> PortDetail:
    """Connections (top remote endpoints) and the owners' process tree, read now."""
    total, listed = endpoints(proto, port)
    try:
        tree = process_tree(owner_pids)
        note = None
    except psutil.AccessDenied:
        tree, note = [], "process tree hidden (needs root)"
    return PortDetail(proto, port, total, tuple(listed), tuple(tree), note)
