"""Synthetic session rows for the table benchmarks: key, numeric id, state, label, bytes.

Deterministic and cheap (no random module per row), so a million rows build in a couple
of seconds in a worker thread. ``tick`` changes the values the way a collector's next
snapshot would: byte counters move, some states change, keys stay.
"""

from __future__ import annotations

from backends.rows import Row, RowSet
from panels.table import Column

STATES = ("ESTABLISHED", "TIME_WAIT", "CLOSE_WAIT", "SYN_SENT", "FIN_WAIT1", "LISTEN")
STATE_STYLES = {"CLOSE_WAIT": "red", "SYN_SENT": "yellow", "TIME_WAIT": "dim", "LISTEN": "green"}

#: Column indexes into Row.values.
ID, STATE, LABEL, BYTES = range(4)


def state_style(value: object) -> str | None:
    return STATE_STYLES.get(value)  # type: ignore[arg-type]


def columns() -> list[Column]:
    return [
        Column("ID", numeric=True),
        Column("State", style=state_style),
        Column("Peer / worker", flex=True),
        Column("Bytes", numeric=True),
    ]


LABELS = ("ID", "State", "Peer / worker", "Bytes")


def session_rows(n: int, tick: int = 0) -> list[Row]:
    """``n`` session rows as of snapshot ``tick``."""
    rows = []
    states = STATES
    for i in range(n):
        state = states[(i // 7 + (tick if i % 5 == 0 else 0)) % 6]
        label = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}:{40000 + i % 20000} → worker-{i % 64}"
        moved = (i * 2654435761 + tick * 40503 * (i % 11)) % 1_000_000_007
        rows.append(Row(f"s{i}", (i, state, label, moved)))
    return rows


def session_rowset(n: int, tick: int = 0) -> RowSet:
    """Rows and their key index, as the collector hands them over (call it off the loop)."""
    return RowSet.build(tuple(session_rows(n, tick)))
