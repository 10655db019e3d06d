"""Synthetic session rows for the table benchmarks: key, numeric id, state, label, bytes.

Deterministic and cheap (no random module per row), so a million rows build in a couple
of seconds in a worker thread. ``tick`` changes the values the way a collector's next
full snapshot would: byte counters move, some states change, keys stay.
:class:`SessionEvents` is the other kind of producer: a few changes per second, as a
collector following an event cursor sees them.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

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


def session_row(i: int, tick: int = 0) -> Row:
    """Session ``i`` as of snapshot ``tick``."""
    state = STATES[(i // 7 + (tick if i % 5 == 0 else 0)) % 6]
    label = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}:{40000 + i % 20000} → worker-{i % 64}"
    moved = (i * 2654435761 + tick * 40503 * (i % 11)) % 1_000_000_007
    return Row(f"s{i}", (i, state, label, moved))


def iter_session_rows(n: int, tick: int = 0) -> Iterator[Row]:
    return (session_row(i, tick) for i in range(n))


def session_rows(n: int, tick: int = 0) -> list[Row]:
    """``n`` session rows as of snapshot ``tick``."""
    return list(iter_session_rows(n, tick))


def session_rowset(n: int, tick: int = 0) -> RowSet:
    """Rows and their key index, as a collector's full re-read hands them over (call it off
    the loop): the rows come from a generator, as a panel's ``rows_of`` yields them."""
    return RowSet.build(iter_session_rows(n, tick))


class SessionEvents:
    """What a sessions collector following ``events_since(cursor)`` learns each second, for
    a registry of ``n`` sessions: ``changes`` events, of which 90% move an existing
    session's counters or state, 5% start a new session and 5% end (purge) one.
    Deterministic (a seeded generator); at most ``changes`` rows change per tick.
    """

    def __init__(self, n: int, changes: int, seed: int = 7) -> None:
        self.live = [f"s{i}" for i in range(n)]
        self._next = n
        self._random = random.Random(seed)
        self.changes = changes

    def tick(self, tick: int) -> tuple[list[Row], list[str]]:
        """(upserted rows, removed keys) since the previous tick."""
        upserts: list[Row] = []
        removed: list[str] = []
        for _ in range(self.changes):
            roll = self._random.random()
            if roll < 0.05 or not self.live:
                upserts.append(session_row(self._next, tick))
                self.live.append(f"s{self._next}")
                self._next += 1
            elif roll < 0.10:
                removed.append(self._remove(self._random.randrange(len(self.live))))
            else:
                key = self.live[self._random.randrange(len(self.live))]
                upserts.append(session_row(int(key[1:]), tick))
        gone = set(removed)
        return [row for row in upserts if row.key not in gone], removed

    def _remove(self, index: int) -> str:
        """Swap-remove: O(1), the order of ``live`` does not matter."""
        key = self.live[index]
        self.live[index] = self.live[-1]
        self.live.pop()
        return key
