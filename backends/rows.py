"""Immutable table rows, and sorting and filtering them off the event loop.

A table on screen should cost what it shows, so everything that grows with the row
count happens here, in a worker thread: building the key index, sorting, filtering.
Work is cut into chunks that each hold the GIL only briefly (a single C-level sort of a
million rows would hold it for a second and freeze the event loop), and it checks a
cancel event between chunks so a superseded sort or filter stops early.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

#: Rows handled per chunk: a few milliseconds of work while holding the GIL.
CHUNK = 10_000

class Row(NamedTuple):
    """One row: a stable key that actions use, the cell values, and an optional row style."""

    key: Hashable
    values: tuple[Any, ...]
    style: str | None = None

class Cancelled(Exception):
    """A sort or filter was superseded before it finished."""

def _check(cancelled: threading.Event | None) -> None:
    if cancelled is not None and cancelled.is_set():
        raise Cancelled

@dataclass(frozen=True, slots=True)
class RowSet:
    """Rows in display order with a key → position index, built once, off the loop."""

    rows: Sequence[Row]
    positions: Mapping[Hashable, int] = field(repr=False)

    @classmethod
    def build(cls, rows: Iterable[Row], cancelled: threading.Event | None = None) -> RowSet:
        """Index the rows by key (linear in the row count: call it from a worker thread)."""
        ordered = rows if isinstance(rows, tuple) else tuple(rows)
        positions: dict[Hashable, int] = {}
        for start in range(0, len(ordered), CHUNK):
            _check(cancelled)
            positions.update((row.key, start + offset) for offset, row in enumerate(ordered[start : start + CHUNK]))
        return cls(ordered, positions)

    def __len__(self) -> int:
        return len(self.rows)

    def position(self, key: Hashable) -> int | None:
        return self.positions.get(key)

EMPTY = RowSet((), {})

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
