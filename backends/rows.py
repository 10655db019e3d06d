"""Immutable table rows, and sorting and filtering them off the event loop.

A table on screen should cost what it shows, so everything that grows with the row
count happens here, in a worker thread: building the key index, sorting, filtering.
Work is cut into chunks that each hold the GIL only briefly (a single C-level sort of a
million rows would hold it for a second and freeze the event loop), and it checks a
cancel event between chunks so a superseded sort or filter stops early.
"""

from __future__ import annotations

import heapq
import queue
import sys
import threading
import time
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple


#: Rows handled per chunk: a few milliseconds of work while holding the GIL.
CHUNK = 10_000
#: The key index is split over this many dicts, so no single dict resize (a C call that
#: holds the GIL) grows with the row count.
SHARDS = 64
#: How many 10 ms looks the reaper takes for a discarded set's last other holder to let go.
REAPER_PATIENCE = 20


class Row(NamedTuple):
    """One row: a stable key that actions use, the cell values, and an optional row style."""

    key: Hashable
    values: tuple[Any, ...]
    style: str | None = None


class Cancelled(Exception):
    """A sort or filter was superseded before it finished."""


def _check(cancelled: threading.Event | None) -> None:
    """Between chunks: stop if superseded, and hand the GIL to the event loop if it waits.

    ``time.sleep(0)`` releases the GIL at once; without it the loop waits up to the
    interpreter's switch interval (5 ms) for each turn, which a keypress feels.
    """
    if cancelled is not None and cancelled.is_set():
        raise Cancelled
    time.sleep(0)


class KeyIndex(Mapping[Hashable, int]):
    """Key → position, sharded by hash so building it never stalls on one huge resize."""

    __slots__ = ("_shards",)

    def __init__(self, shards: list[dict[Hashable, int]]) -> None:
        self._shards = shards

    @classmethod
    def of(cls, rows: Sequence[Row], cancelled: threading.Event | None = None) -> KeyIndex:
        shards: list[dict[Hashable, int]] = [{} for _ in range(SHARDS)]
        for start in range(0, len(rows), CHUNK):
            _check(cancelled)
            for offset, row in enumerate(rows[start : start + CHUNK]):
                shards[hash(row.key) % SHARDS][row.key] = start + offset
        return cls(shards)

    def __getitem__(self, key: Hashable) -> int:
        return self._shards[hash(key) % SHARDS][key]

    def get(self, key: Hashable, default: int | None = None) -> int | None:  # type: ignore[override]
        return self._shards[hash(key) % SHARDS].get(key, default)

    def __len__(self) -> int:
        return sum(len(shard) for shard in self._shards)

    def __iter__(self) -> Iterator[Hashable]:
        for shard in self._shards:
            yield from shard

    def drain(self) -> None:
        """Empty the shards one by one (each free is small)."""
        while self._shards:
            self._shards.pop()
            time.sleep(0)


@dataclass(frozen=True, slots=True)
class RowSet:
    """Rows in display order with a key → position index, built once, off the loop."""

    rows: Sequence[Row]
    positions: Mapping[Hashable, int] = field(repr=False)

    @classmethod
    def build(cls, rows: Iterable[Row], cancelled: threading.Event | None = None) -> RowSet:
        """Index the rows by key (linear in the row count: call it from a worker thread)."""
        ordered = list(rows)  # its own copy: nobody else can change it, and it can be freed in pieces
        return cls(ordered, KeyIndex.of(ordered, cancelled))

    def __len__(self) -> int:
        return len(self.rows)

    def position(self, key: Hashable) -> int | None:
        return self.positions.get(key)


EMPTY = RowSet.build(())


class _Reaper:
    """Frees row sets nobody else holds, in chunks, in a daemon thread.

    Dropping the last reference to a million rows frees them in one C call that holds
    the GIL for ~0.1 s wherever it happens, event loop included. A set handed here is
    released piece by piece, and only when this thread holds the last reference, so no
    one can observe it emptying.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[RowSet] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def discard(self, rows: RowSet) -> None:
        if len(rows.rows) < CHUNK:
            return  # small: freeing it costs nothing worth a thread hop
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="rows-reaper", daemon=True)
                self._thread.start()
        self._queue.put(rows)

    def _run(self) -> None:
        while True:
            rows = self._queue.get()
            # Two references: this local and getrefcount's argument. The caller's frame may
            # hold it a moment longer; anyone else (a snapshot, a running sort) keeps it,
            # and then it is only dropped here, never emptied.
            for _ in range(REAPER_PATIENCE):
                if sys.getrefcount(rows) == 2:
                    break
                time.sleep(0.01)
            if sys.getrefcount(rows) == 2 and isinstance(rows.rows, list):
                _drain_list(rows.rows)
                if isinstance(rows.positions, KeyIndex):
                    rows.positions.drain()
            del rows


def _drain_list(items: list[Any]) -> None:
    while items:
        del items[-CHUNK:]
        time.sleep(0)


_reaper = _Reaper()


def discard(rows: RowSet) -> None:
    """Hand over a row set that the caller is done with, to be freed without stalling the loop."""
    _reaper.discard(rows)


def sort_key(value: Any) -> tuple[int, Any]:
    """Order values of one column: numbers, then text, with empty values (None) last."""
    if value is None:
        return (2, 0)
    if isinstance(value, bool | int | float):
        return (0, value)
    return (1, str(value).casefold())


def sorted_rows(
    rows: Sequence[Row], column: int, *, descending: bool = False, cancelled: threading.Event | None = None
) -> list[Row]:
    """Stable sort by one column, in chunks merged lazily, so the GIL is released often."""
    keys: list[tuple[int, Any]] = []
    for start in range(0, len(rows), CHUNK):
        _check(cancelled)
        keys.extend(sort_key(row.values[column]) for row in rows[start : start + CHUNK])
    runs: list[list[int]] = []
    for start in range(0, len(rows), CHUNK):
        _check(cancelled)
        runs.append(sorted(range(start, min(start + CHUNK, len(rows))), key=keys.__getitem__, reverse=descending))
    merged: list[Row] = []
    for count, index in enumerate(heapq.merge(*runs, key=keys.__getitem__, reverse=descending)):
        if count % CHUNK == 0:
            _check(cancelled)
        merged.append(rows[index])
    # Free the million-entry temporaries in pieces, not in one GIL-holding sweep at return.
    _drain_list(keys)
    while runs:
        runs.pop()
        time.sleep(0)
    return merged


def row_text(row: Row) -> str:
    """What a text filter searches: every cell, case-folded."""
    return "\t".join("" if value is None else str(value) for value in row.values).casefold()


def filtered_rows(rows: Sequence[Row], text: str, *, cancelled: threading.Event | None = None) -> list[Row]:
    """Rows whose cells contain ``text`` (case-insensitive), in their original order."""
    needle = text.casefold()
    kept: list[Row] = []
    for start in range(0, len(rows), CHUNK):
        _check(cancelled)
        kept.extend(row for row in rows[start : start + CHUNK] if needle in row_text(row))
    return kept


@dataclass(frozen=True, slots=True)
class View:
    """How a table shows its source rows: an optional sort column and filter text."""

    sort_column: int | None = None
    descending: bool = False
    filter_text: str = ""

    @property
    def identity(self) -> bool:
        return self.sort_column is None and not self.filter_text


def apply_view(source: Sequence[Row], view: View, cancelled: threading.Event | None = None) -> RowSet:
    """Filter, then sort, then index: the whole view, computed in a worker thread."""
    rows: Sequence[Row] = source
    if view.filter_text:
        rows = filtered_rows(rows, view.filter_text, cancelled=cancelled)
    if view.sort_column is not None:
        rows = sorted_rows(rows, view.sort_column, descending=view.descending, cancelled=cancelled)
    return RowSet.build(rows, cancelled)
