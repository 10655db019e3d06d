"""The Ports detail view: the port's row at once, then its connections and owners' process tree."""

from __future__ import annotations

import time
from typing import Any

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from backends.ports import PortDetail, PortRow, port_detail
from panels.detail import DetailScreen


def facts(row: PortRow, now: float) -> str:
    """What the snapshot already knows about the port."""
    lines = [row.verdict_text]
    if row.states:
        lines.append("sockets: " + ", ".join(f"{name} {count:,}" for name, count in row.states.items()))
    if row.time_wait_expires_in_s is not None:
        lines.append(f"last TIME_WAIT expires in about {row.time_wait_expires_in_s:.0f} s (at collection)")
    if row.addresses:
        lines.append("bound to: " + ", ".join(row.addresses))
    for owner in row.listeners:
        if owner.pid is None:
            lines.append(f"owner: {owner.user}: {owner.note}")
            continue
        uptime = "" if owner.started_at is None else f", up {max(0.0, now - owner.started_at):.0f} s"
        lines.append(f"owner: pid {owner.pid} {owner.name} (user {owner.user}{uptime}): {' '.join(owner.cmdline)}")
    return "\n".join(lines)


def fetched(detail: PortDetail) -> str:
    lines = [f"connections on this port: {detail.connections:,}"]
    for endpoint in detail.endpoints:
        lines.append(f"  {endpoint.count:>7,}  {endpoint.state:<12} {endpoint.remote}")
    if detail.connections > sum(endpoint.count for endpoint in detail.endpoints):
        lines.append("  … (top remote addresses only)")
    lines.append("")
    lines.append("process tree (* holds the listening socket):")
    for node in detail.tree:
        mark = "*" if node.holder else " "
        lines.append(f"{mark} {'  ' * node.depth}{node.pid} {node.user} {node.command}")
    if detail.note:
        lines.append(detail.note)
    elif not detail.tree:
        lines.append("  (no owner process known)")
    return "\n".join(lines)


class PortDetailScreen(DetailScreen):
    def __init__(self, row: PortRow) -> None:
        super().__init__(f"{row.proto.value} port {row.port}: {row.verdict.value}")
        self.row = row

    def compose_content(self) -> ComposeResult:
        with VerticalScroll(id="port-body"):
            yield Static(facts(self.row, time.time()), id="port-facts", markup=False)
            yield Static("", id="port-fetched", markup=False)

    def load(self) -> Any:
        pids = [owner.pid for owner in self.row.listeners if owner.pid is not None]
        return port_detail(self.row.proto, self.row.port, pids)

    def show_loaded(self, data: Any) -> None:
        self.query_one("#port-fetched", Static).update(fetched(data))
