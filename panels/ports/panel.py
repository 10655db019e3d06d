"""The Ports panel: per port its listeners, connection states, TIME_WAIT expiry and verdict.

Keys: ``k`` frees the port (SIGTERM, no SIGKILL), ``K`` frees it with SIGKILL after the
grace period, ``w`` pins/unpins the row at the top, ``t`` runs the bind test, Enter
opens the detail view, ``/`` filters. ``k``/``K`` are greyed out on a row without a TCP
listener.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static

from backends.collector import Snapshot, describe_error
from backends.ports import (
    FreePortAction,
    PortRow,
    PortsValue,
    PortVerdict,
    Proto,
    TcpState,
    bind_test,
    verdict_of,
)
from backends.rows import Row
from panels.base import show_text
from panels.ports.detail import PortDetailScreen
from panels.table import Column, VirtualTable
from panels.table_panel import TablePanel

VERDICT_STYLES = {
    PortVerdict.LISTENING.value: "green",
    PortVerdict.TIME_WAIT.value: "bold yellow",
    PortVerdict.FREE.value: "dim",
}
#: The states with a column of their own; the rest are summed under "other".
_OWN_COLUMNS = (TcpState.LISTEN.name, TcpState.ESTABLISHED.name, TcpState.TIME_WAIT.name, TcpState.CLOSE_WAIT.name)


def owner_text(row: PortRow) -> str:
    """``python3 (24376, bot)``, ``+2`` for more holders, or the reason the owner is unknown."""
    if not row.listeners:
        return ""
    first = row.listeners[0]
    text = first.note or f"{first.name} ({first.pid}, {first.user})"
    if first.note and first.user:
        text = f"{first.user}: {first.note}"
    more = len(row.listeners) - 1
    return f"{text} +{more}" if more else text


def expiry_text(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds:.0f}s"


def free_row(port: int) -> PortRow:
    """A watched port that the last collection saw no socket on."""
    verdict, text = verdict_of(Proto.TCP, False, {}, None)
    return PortRow(port, Proto.TCP, None, (), {}, None, True, verdict, text)


class PortsPanel(TablePanel):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("k", "free_port", "Free port", tooltip="Stop the listener's processes: SIGTERM, wait, no SIGKILL",
                id="ports.free_port"),
        Binding("K", "free_port_kill", "Free+kill", show=False,
                tooltip="Stop the listener's processes: SIGTERM, wait, then SIGKILL", id="ports.free_port_kill"),
        Binding("w", "toggle_watch", "Watch", tooltip="Pin or unpin this port at the top", id="ports.watch"),
        Binding("t", "bind_test", "Bind test",
                tooltip="Bind this port as a server would, without and with SO_REUSEADDR", id="ports.bind_test"),
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Ports pinned with ``w`` (replaced, never mutated: rows_of reads it from a thread).
        self.pinned: frozenset[int] = frozenset()
        self._index: tuple[object, dict[tuple[str, int], PortRow]] = (None, {})
        self.last_bind_test = ""
        #: When it ran: the summary shows the time, since the port may have changed since.
        self.last_bind_test_at = 0.0

    # -- table -----------------------------------------------------------------------

    def columns(self) -> list[Column]:
        return [
            Column("W", max_width=1),
            Column("Port", numeric=True, min_width=5, format=str),
            Column("Verdict", min_width=9, style=VERDICT_STYLES.get),
            Column("TW", numeric=True),
            Column("Exp", numeric=True, format=expiry_text),
            Column("Est", numeric=True),
            Column("Owner", flex=True, max_width=40),
            Column("Lis", numeric=True),
            Column("CW", numeric=True),
            Column("Other", numeric=True),
            Column("Proto"),
            Column("Address", max_width=39),
        ]

    def pinned_free_rows(self, value: PortsValue) -> list[PortRow]:
        """Rows for the ports pinned with ``w`` that the value has no TCP row for."""
        present = {row.port for row in value.ports if row.proto is Proto.TCP}
        return [free_row(port) for port in sorted(self.pinned - present)]

    def port_rows(self, value: PortsValue | None) -> list[PortRow]:
        """The value's rows plus ports pinned with ``w``, watched ones first."""
        if value is None:
            return []
        pinned = self.pinned
        rows = [*value.ports, *self.pinned_free_rows(value)]
        return sorted(rows, key=lambda row: not (row.watched or row.port in pinned))

    def rows_of(self, value: Any) -> Iterable[Row]:
        pinned = self.pinned
        for row in self.port_rows(value):
            states = row.states
            other = sum(count for name, count in states.items() if name not in _OWN_COLUMNS)
            yield Row(
                row.key,
                (
                    "●" if row.watched or row.port in pinned else "",
                    row.port,
                    row.verdict.value,
                    states.get(TcpState.TIME_WAIT.name, 0) or None,
                    row.time_wait_expires_in_s,
                    states.get(TcpState.ESTABLISHED.name, 0) or None,
                    owner_text(row),
                    (states.get(TcpState.LISTEN.name, 0) or states.get("UNCONN", 0)) or None,
                    states.get(TcpState.CLOSE_WAIT.name, 0) or None,
                    other or None,
                    row.proto.value,
                    row.address or "",
                ),
            )

    def compose_summary(self) -> ComposeResult:
        yield Static("", id="ports-summary", markup=False)

    def render_summary(self, value: Any) -> None:
        if not isinstance(value, PortsValue):
            return
        text = value.summary()
        if self.last_bind_test:
            at = time.strftime("%H:%M:%S", time.localtime(self.last_bind_test_at))
            text = f"{text} · {self.last_bind_test} at {at}"
        show_text(self.query_one("#ports-summary", Static), text)

    def render_snapshot(self, snapshot: Snapshot[Any]) -> None:
        super().render_snapshot(snapshot)
        self.refresh_bindings_if_changed()

    # -- the selected port -----------------------------------------------------------

    def selected_port(self) -> PortRow | None:
        """The PortRow under the cursor, looked up by the row's key in the current snapshot."""
        row = self.selected_row
        if row is None or self.snapshot is None:
            return None
        value = self.snapshot.value
        if self._index[0] is not value:  # once per snapshot (and after ``w``), on first use
            # On the loop, so a dict of the rows, not port_rows()'s sorted list (built off the loop).
            rows = [*value.ports, *self.pinned_free_rows(value)] if isinstance(value, PortsValue) else []
            self._index = (value, {port.key: port for port in rows})
        return self._index[1].get(row.key)  # type: ignore[arg-type]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Grey out free-port on a row with no TCP listener, and row actions with no row."""
        if action in ("free_port", "free_port_kill"):
            port = self.selected_port()
            return True if port is not None and port.proto is Proto.TCP and port.has_listener else None
        if action in ("toggle_watch", "bind_test"):
            return True if self.selected_row is not None else None
        return True

    def on_virtual_table_cursor_moved(self, event: VirtualTable.CursorMoved) -> None:
        self.refresh_bindings_if_changed()

    # -- actions ---------------------------------------------------------------------

    def _request_free(self, escalate: bool) -> None:
        port = self.selected_port()
        if port is None or not port.has_listener:
            return
        self.post_message(self.ActionRequested(FreePortAction(port.port, escalate=escalate)))

    def action_free_port(self) -> None:
        self._request_free(escalate=False)

    def action_free_port_kill(self) -> None:
        self._request_free(escalate=True)

    def action_toggle_watch(self) -> None:
        port = self.selected_port()
        if port is None:
            return
        if port.watched and port.port not in self.pinned:
            self.notify(f"port {port.port} is watched by the config ([ports].watch)")
            return
        self.pinned = self.pinned ^ {port.port}
        self._index = (None, {})
        if self.snapshot is not None:
            self.render_snapshot(self.snapshot)

    @work(group="bind-test", exclusive=True, exit_on_error=False)
    async def action_bind_test(self) -> None:
        port = self.selected_port()
        if port is None:
            return
        address = "::" if port.address and ":" in port.address else "0.0.0.0"
        try:
            result = await asyncio.to_thread(bind_test, port.port, port.proto, address)
        except (OSError, ValueError) as exc:
            self.notify(f"bind test failed: {describe_error(exc)}", severity="error")
            return
        self.last_bind_test, self.last_bind_test_at = result.short(), self.clock()
        self.notify(result.text(), title="Bind test",
                    severity="information" if result.plain.ok else "warning")
        if self.snapshot is not None:
            self.render_summary(self.snapshot.value)

    def open_detail(self, row: Row) -> None:
        port = self.selected_port()
        if port is not None and port.key == row.key:
            self.app.push_screen(PortDetailScreen(port))
