"""Immutable table rows, and sorting, filtering and updating them off the event loop.

A table on screen should cost what it shows, so everything that grows with the row
count happens here, in a worker thread: building the key index, sorting, filtering.
Work is cut into chunks that each hold the GIL only briefly (a single C-level sort of a
million rows would hold it for a second and freeze the event loop), and it checks a
cancel event between chunks so a superseded sort or filter stops early.

How rows are stored is about CPython's cyclic garbage collector, which holds the GIL
(so stops the event loop) for as long as it walks objects:

- A RowSet keeps its rows in blocks of at most ``BLOCK`` rows, each stored column by
  column in plain tuples. A tuple of strings and numbers is untracked by the collector
  after its first pass, a ``Row`` (a tuple subclass) never is: a million stored Rows made
  every full collection walk a million objects (~0.2 s), and even a column of enum values
  is one object to it, not one per row. ``Row`` objects are made when read (the screen
  reads about fifty).
- No container holds more than a few thousand items, so a young-generation pass never
  meets a million-item list just built in a thread (that alone cost ~20 ms per pass).
- :meth:`RowSet.updated` applies a collector's few changes by copying only the blocks
  they touch and sharing the rest with the set it came from.
"""

from __future__ import annotations

import gc
import heapq
import itertools
import queue
import sys
import threading
import time
from array import array
from bisect import bisect_right
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from operator import itemgetter
from typing import Any, NamedTuple, overload

#: Rows handled per chunk: a few milliseconds of work while holding the GIL.
CHUNK = 10_000
#: Rows per storage block: an update copies whole blocks, a young GC pass sees at most a few.
BLOCK = 256
#: Keys per shard of the key index when it is built: an update copies only the shards it
#: touches, and no single dict resize (a C call that holds the GIL) grows with the row count.
SHARD_KEYS = 1024
#: How many 10 ms looks the reaper takes for a discarded set's last other holder to let go.
REAPER_PATIENCE = 20


class Row(NamedTuple):
    """One row: a stable key that actions use, the cell values, and an optional row style."""

    key: Hashable
    values: tuple[Any, ...]
    style: str | None = None


_make_row = partial(tuple.__new__, Row)
#: Block identities: a key index maps a key to the serial of the block holding it.
_serials = itertools.count()


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


# -- storage: blocks of rows, column by column ------------------------------------------


class _Block:
    """Up to ``BLOCK`` consecutive rows: keys, one tuple per column, styles (None if all None).

    Rows whose value tuples differ in length (unusual) are kept row by row instead.
    Never changed after construction; an update makes a new block with the same serial.
    """

    __slots__ = ("__weakref__", "columns", "keys", "ragged", "serial", "styles")

    def __init__(self, serial: int, keys: tuple[Hashable, ...], values: Sequence[tuple[Any, ...]],
                 styles: tuple[str | None, ...]) -> None:
        self.serial = serial
        self.keys = keys
        widths = set(map(len, values))
        self.ragged = tuple(values) if len(widths) > 1 else None
        # tuple(list(...)): the outer tuple is made after the column tuples, so the young
        # collection that stops tracking them reaches it afterwards and stops tracking it too.
        self.columns: tuple[tuple[Any, ...], ...] = ()
        if self.ragged is None and max(widths):
            self.columns = tuple(list(zip(*values, strict=True)))  # noqa: C414 - allocation order matters
        self.styles = None if styles.count(None) == len(styles) else styles

    @classmethod
    def from_columns(cls, serial: int, keys: tuple[Hashable, ...], columns: tuple[tuple[Any, ...], ...],
                     styles: tuple[str | None, ...]) -> _Block:
        block = cls.__new__(cls)
        block.serial, block.keys, block.columns, block.ragged = serial, keys, columns, None
        block.styles = None if styles.count(None) == len(styles) else styles
        return block

    @classmethod
    def of(cls, serial: int, entries: Sequence[tuple[Hashable, tuple[Any, ...], str | None]]) -> _Block:
        keys, values, styles = zip(*entries, strict=True)
        return cls(serial, keys, values, styles)

    def __len__(self) -> int:
        return len(self.keys)

    def values(self) -> Iterable[tuple[Any, ...]]:
        if self.ragged is not None:
            return self.ragged
        if self.columns:
            return zip(*self.columns, strict=True)
        return itertools.repeat((), len(self.keys))

    def style_list(self) -> Iterable[str | None]:
        return itertools.repeat(None, len(self.keys)) if self.styles is None else self.styles

    def entries(self) -> Iterator[tuple[Hashable, tuple[Any, ...], str | None]]:
        """(key, values, style) for each row, in order."""
        return zip(self.keys, self.values(), self.style_list(), strict=True)

    def entry(self, offset: int) -> tuple[Hashable, tuple[Any, ...], str | None]:
        if self.ragged is not None:
            values = self.ragged[offset]
        else:
            values = tuple([column[offset] for column in self.columns])
        return (self.keys[offset], values, None if self.styles is None else self.styles[offset])

    def column(self, index: int) -> Sequence[Any]:
        if self.ragged is not None:
            return [values[index] for values in self.ragged]
        if index >= len(self.columns):
            raise IndexError(index)
        return self.columns[index]


def _blocks_of(entries: Iterable[tuple[Hashable, tuple[Any, ...], str | None]],
               cancelled: threading.Event | None) -> list[_Block]:
    """Cut rows (or (key, values, style) entries) into new blocks."""
    blocks: list[_Block] = []
    iterator = iter(entries)
    while True:
        if len(blocks) % max(1, CHUNK // BLOCK) == 0:
            _check(cancelled)
        chunk = list(itertools.islice(iterator, BLOCK))
        if not chunk:
            return blocks
        blocks.append(_Block.of(next(_serials), chunk))


class Rows(Sequence[Row]):
    """A RowSet's rows in display order, read as ``Row`` objects made on access."""

    __slots__ = ("_blocks", "_starts", "_where")

    def __init__(self, blocks: list[_Block]) -> None:
        self._blocks = blocks
        self._starts = list(itertools.accumulate(map(len, blocks), initial=0))
        self._where = {block.serial: ordinal for ordinal, block in enumerate(blocks)}

    def __len__(self) -> int:
        return self._starts[-1]

    @overload
    def __getitem__(self, index: int) -> Row: ...
    @overload
    def __getitem__(self, index: slice) -> list[Row]: ...
    def __getitem__(self, index: int | slice) -> Row | list[Row]:
        if isinstance(index, slice):
            return [self._row(position) for position in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._row(index)

    def _row(self, position: int) -> Row:
        ordinal = bisect_right(self._starts, position) - 1
        return _make_row(self._blocks[ordinal].entry(position - self._starts[ordinal]))

    def __iter__(self) -> Iterator[Row]:
        for block in self._blocks:
            yield from map(_make_row, block.entries())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Rows | list | tuple):
            return NotImplemented
        return len(self) == len(other) and all(mine == theirs for mine, theirs in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Rows: {len(self):,} in {len(self._blocks):,} blocks>"

    def position_in(self, serial: int, key: Hashable) -> int | None:
        ordinal = self._where.get(serial)
        if ordinal is None:
            return None
        return self._starts[ordinal] + self._blocks[ordinal].keys.index(key)

    def drain(self) -> None:
        """Drop the blocks a few at a time (blocks shared with a newer set live on there)."""
        while self._blocks:
            del self._blocks[-16:]
            time.sleep(0)


class KeyIndex:
    """Key → serial of the block holding it, sharded by hash so that building it never
    stalls on one huge resize and an update copies only the shards it touches."""

    __slots__ = ("_shards",)

    def __init__(self, shards: list[dict[Hashable, int]]) -> None:
        self._shards = shards

    @classmethod
    def of(cls, blocks: Sequence[_Block], cancelled: threading.Event | None = None) -> KeyIndex:
        count = max(1, sum(map(len, blocks)) // SHARD_KEYS)
        shards: list[dict[Hashable, int]] = [{} for _ in range(count)]
        for ordinal, block in enumerate(blocks):
            if ordinal % max(1, CHUNK // BLOCK) == 0:
                _check(cancelled)
            serial = block.serial
            for key in block.keys:
                shards[hash(key) % count][key] = serial
        return cls(shards)

    def get(self, key: Hashable) -> int | None:
        return self._shards[hash(key) % len(self._shards)].get(key)

    def changed(self, removed: Iterable[Hashable], added: Mapping[Hashable, int]) -> KeyIndex:
        """A new index without ``removed`` and with ``added``; untouched shards are shared."""
        shards = list(self._shards)
        copied: set[int] = set()

        def own(key: Hashable) -> dict[Hashable, int]:
            number = hash(key) % len(shards)
            if number not in copied:
                shards[number] = shards[number].copy()
                copied.add(number)
            return shards[number]

        for key in removed:
            own(key).pop(key, None)
        for key, serial in added.items():
            own(key)[key] = serial
        return KeyIndex(shards)

    @property
    def capacity(self) -> int:
        return len(self._shards) * SHARD_KEYS

    def __len__(self) -> int:
        return sum(map(len, self._shards))

    def __iter__(self) -> Iterator[Hashable]:
        for shard in self._shards:
            yield from shard

    def drain(self) -> None:
        """Empty the shards a few at a time (each free is small)."""
        while self._shards:
            del self._shards[-4:]  # a shard's keys may be the last references to them
            time.sleep(0)


class Positions(Mapping[Hashable, int]):
    """Key → position in a RowSet's rows (the row's block by key, then its place in the block)."""

    __slots__ = ("index", "rows")

    def __init__(self, rows: Rows, index: KeyIndex) -> None:
        self.rows = rows
        self.index = index

    def get(self, key: Hashable, default: int | None = None) -> int | None:  # type: ignore[override]
        serial = self.index.get(key)
        if serial is None:
            return default
        position = self.rows.position_in(serial, key)
        return default if position is None else position

    def __getitem__(self, key: Hashable) -> int:
        position = self.get(key)
        if position is None:
            raise KeyError(key)
        return position

    def __len__(self) -> int:
        return len(self.index)

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self.index)


# -- the row set ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RowSet:
    """Rows in display order with a key → position index, built once, off the loop.

    ``RowSet.build`` stores the rows in blocks (see the module docstring); any other
    sequence and mapping can be wrapped directly, e.g. ``RowSet(rows, positions)``.
    """

    rows: Sequence[Row]
    positions: Mapping[Hashable, int] = field(repr=False)

    @classmethod
    def build(cls, rows: Iterable[Row], cancelled: threading.Event | None = None) -> RowSet:
        """Store and index the rows (linear in the row count: call it from a worker thread).

        Rows are consumed as they come, so a generator's rows can be freed one block at a time.
        """
        return cls._of(_blocks_of(rows, cancelled), cancelled)

    @classmethod
    def _of(cls, blocks: list[_Block], cancelled: threading.Event | None) -> RowSet:
        return cls._of_parts(blocks, KeyIndex.of(blocks, cancelled))

    def __len__(self) -> int:
        return len(self.rows)

    def position(self, key: Hashable) -> int | None:
        return self.positions.get(key)

    def updated(self, upserts: Iterable[Row] = (), removed: Iterable[Hashable] = (),
                cancelled: threading.Event | None = None, *, at_start: bool = False) -> RowSet:
        """A new set with a collector's changes: what an event cursor reports since last time.

        ``removed`` keys are dropped; then each upserted row replaces the row with its key
        in place or, if the key is not (or no longer) there, is appended (``at_start``: put
        before the first row, as a newest-first table wants), in the order the keys first
        appear in ``upserts`` (the last row given for a key wins). Keys must be
        unique. Only the blocks holding changed rows are copied (O(changes) blocks, plus
        O(rows / BLOCK) bookkeeping); the rest is shared with this set, which stays as it
        was. A set that did not come from ``build`` is rebuilt whole.
        """
        changes = {row.key: row for row in upserts}
        gone = set(removed)
        if not isinstance(self.positions, Positions) or not isinstance(self.rows, Rows):
            return RowSet.build(_replayed(self.rows, changes, gone, at_start), cancelled)
        stored, index = self.rows, self.positions.index
        touched: dict[int, set[Hashable]] = {}
        for key in gone.union(changes):
            serial = index.get(key)
            if serial is not None:
                touched.setdefault(serial, set()).add(key)
        replaced: dict[int, _Block | None] = {}  # by ordinal; None: emptied
        dropped: list[Hashable] = []
        for count, (serial, keys) in enumerate(touched.items()):
            if count % 64 == 0:
                _check(cancelled)
            ordinal = stored._where[serial]
            replaced[ordinal], dropped_here = _changed_block(stored._blocks[ordinal], keys, changes, gone)
            dropped.extend(dropped_here)
        blocks = [
            block
            for ordinal, original in enumerate(stored._blocks)
            if (block := replaced.get(ordinal, original)) is not None
        ]
        dropped_set = set(dropped)
        kept_keys = {key for keys in touched.values() for key in keys} - dropped_set
        appended = [(row.key, row.values, row.style) for key, row in changes.items() if key not in kept_keys]
        added: dict[Hashable, int] = {}
        if appended and at_start:
            if blocks and len(blocks[0]) < BLOCK:  # fill the first block first, keeping its serial
                first = blocks.pop(0)
                room = BLOCK - len(first)
                blocks.insert(0, _Block.of(first.serial, [*appended[-room:], *first.entries()]))
                added.update((entry[0], first.serial) for entry in appended[-room:])
                appended = appended[:-room]
            ahead = _blocks_of(appended, cancelled)
            blocks[:0] = ahead
            for block in ahead:
                added.update(dict.fromkeys(block.keys, block.serial))
        elif appended:
            if blocks and len(blocks[-1]) < BLOCK:  # fill the last block first, keeping its serial
                last = blocks.pop()
                room = BLOCK - len(last)
                blocks.append(_Block.of(last.serial, [*last.entries(), *appended[:room]]))
                added.update((entry[0], last.serial) for entry in appended[:room])
                appended = appended[room:]
            for block in _blocks_of(appended, cancelled):
                blocks.append(block)
                added.update(dict.fromkeys(block.keys, block.serial))
        result = RowSet._of_parts(blocks, index.changed(dropped_set - added.keys(), added))
        if len(blocks) > 2 * (len(result) // BLOCK) + 8 or len(result) > 4 * index.capacity:
            return RowSet.build(result.rows, cancelled)  # fragmented by removals, or grown: compact
        return result

    @classmethod
    def _of_parts(cls, blocks: list[_Block], index: KeyIndex) -> RowSet:
        stored = Rows(blocks)
        return cls(stored, Positions(stored, index))


def _changed_block(block: _Block, keys: set[Hashable], changes: Mapping[Hashable, Row],
                   gone: set[Hashable]) -> tuple[_Block | None, list[Hashable]]:
    """The block with its ``keys`` dropped (if in ``gone``) or else replaced, keeping its
    serial (None if nothing is left), and the keys it dropped. A key both dropped and
    upserted is appended by the caller, not put back here.

    Column by column with C-level copies (``compress``, ``list``/``tuple``), so changing a
    few rows of a block costs microseconds; rows of another width take the slow path.
    """
    dropped = [key for key in keys if key in gone]
    replaced = {key: changes[key] for key in keys if key not in gone}
    width = len(block.columns)
    if block.ragged is not None or any(len(row.values) != width for row in replaced.values()) or (
        not width and block.ragged is None and any(len(row.values) for row in replaced.values())
    ):
        entries = [
            (key, replaced[key].values, replaced[key].style) if key in replaced else (key, values, style)
            for key, values, style in block.entries()
            if key not in gone
        ]
        return (_Block.of(block.serial, entries) if entries else None), dropped
    mask = [key not in gone for key in block.keys] if dropped else None
    kept_keys = block.keys if mask is None else tuple(itertools.compress(block.keys, mask))
    if not kept_keys:
        return None, dropped
    columns = [list(column) if mask is None else list(itertools.compress(column, mask)) for column in block.columns]
    styles = list(block.style_list()) if mask is None else list(itertools.compress(block.style_list(), mask))
    for key, row in replaced.items():
        offset = kept_keys.index(key)
        for column, value in zip(columns, row.values, strict=True):
            column[offset] = value
        styles[offset] = row.style
    return _Block.from_columns(block.serial, kept_keys, tuple(map(tuple, columns)), tuple(styles)), dropped


def _replayed(rows: Iterable[Row], changes: Mapping[Hashable, Row], gone: set[Hashable],
              at_start: bool) -> list[Row]:
    """``updated`` row by row, for sets whose storage it cannot share (not made by ``build``)."""
    kept = [changes.get(row.key, row) for row in rows if row.key not in gone]
    present = {row.key for row in kept}
    new = [row for key, row in changes.items() if key not in present]
    return [*new, *kept] if at_start else [*kept, *new]


EMPTY = RowSet.build(())


# -- freeing discarded sets off the loop -------------------------------------------------


class _Reaper:
    """Frees row sets nobody else holds, in pieces, in a daemon thread.

    Dropping the last reference to a million rows frees them in one C call that holds
    the GIL for ~0.1 s wherever it happens, event loop included. A set handed here is
    released piece by piece, and only when this thread holds the last reference, so no
    one can observe it emptying. Blocks it shares with a newer set stay alive there.
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
            # The caller's frame may hold it a moment longer; anyone else (a snapshot, a
            # running sort) keeps it, and then it is only dropped here, never emptied.
            for _ in range(REAPER_PATIENCE):
                if _only_here(rows):
                    break
                time.sleep(0.01)
            if _only_here(rows):
                rows.rows.drain()  # type: ignore[attr-defined]
                rows.positions.index.drain()  # type: ignore[attr-defined]
            del rows


def _only_here(rows: RowSet) -> bool:
    """Whether the caller's one local is the only reference to the set and to its parts.

    Counts: the set: the caller's local + this argument + getrefcount's; its Rows: the
    set + its Positions + getrefcount's; Positions and KeyIndex: their one holder + getrefcount's.
    """
    stored, positions = rows.rows, rows.positions
    if not isinstance(stored, Rows) or not isinstance(positions, Positions) or positions.rows is not stored:
        return False
    # The locals just taken add one to each of stored and positions.
    return (
        sys.getrefcount(rows) == 3
        and sys.getrefcount(stored) == 4
        and sys.getrefcount(positions) == 3
        and sys.getrefcount(positions.index) == 2
    )


_reaper = _Reaper()


def discard(rows: RowSet) -> None:
    """Hand over a row set that the caller is done with, to be freed without stalling the loop."""
    _reaper.discard(rows)


# -- sorting and filtering ----------------------------------------------------------------


def sort_key(value: Any) -> tuple[int, Any]:
    """Order values of one column: numbers, then text, with empty values (None) last."""
    if value is None:
        return (2, 0)
    if isinstance(value, bool | int | float):
        return (0, value)
    return (1, str(value).casefold())


def _sort_order(values: Iterable[Any], *, descending: bool, cancelled: threading.Event | None) -> array[int]:
    """Positions of ``values`` in stable ``sort_key`` order: sorted runs of CHUNK merged
    lazily, so the GIL is released often.

    What it keeps while it works is built so that a full garbage collection (frequent, as
    rows are untracked and so few objects are long-lived) does not walk a million items,
    each a cache miss: the values and their keys sit in tuples of plain numbers or strings,
    which the collector stops tracking, and positions in arrays. So empty values (None)
    are set apart, and a column of only numbers or only text is keyed by the value itself;
    only a column mixing both falls back to ``sort_key``'s (rank, value) tuples.
    """
    chunks: list[tuple[Any, ...]] = []
    types: set[type] = set()
    iterator = iter(values)
    while chunk := tuple(itertools.islice(iterator, CHUNK)):
        _check(cancelled)
        chunks.append(chunk)
        types.update(map(type, chunk))
        _untrack_young()
    kinds = _plain_types(types) - {type(None)}
    key = sort_key if len(kinds) > 1 else _text_key if kinds == {str} else _number_key
    empty = array("q")
    runs: list[tuple[tuple[Any, ...], array[int], int]] = []  # keys, sorted local offsets, start
    for number, chunk in enumerate(chunks):
        _check(cancelled)
        start = number * CHUNK
        keys = tuple(map(key, chunk))
        offsets = [offset for offset, value in enumerate(chunk) if value is not None]
        if len(offsets) < len(chunk):
            empty.extend(start + offset for offset, value in enumerate(chunk) if value is None)
        offsets.sort(key=keys.__getitem__, reverse=descending)  # stable, reverse=True included
        runs.append((keys, array("q", offsets), start))
        _untrack_young()
    merged = heapq.merge(
        *(zip(map(keys.__getitem__, offsets), map(start.__add__, offsets)) for keys, offsets, start in runs),
        key=itemgetter(0),
        reverse=descending,
    )
    order = array("q")
    if descending:  # empty values sort last ascending, so first descending (each group stable)
        order.extend(empty)
    for count, (_, position) in enumerate(merged):
        if count % CHUNK == 0:
            _check(cancelled)
        order.append(position)
    if not descending:
        order.extend(empty)
    while runs:  # free the temporaries in pieces, not in one GIL-holding sweep at return
        runs.pop()
        chunks.pop()
        time.sleep(0)
    return order


def _untrack_young() -> None:
    """Collect the young generation now, while it holds one new chunk: that pass stops
    tracking the chunk's tuple, where a pass due later (after hundreds of such chunks, as
    they count as one allocation each) would walk them all at once, stalling every thread."""
    gc.collect(0)


def _plain_types(types: set[type]) -> set[type]:
    """Stand-ins for ``sort_key``'s ranks: a number type, str, or NoneType for each type."""
    return {int if issubclass(kind, bool | int | float) else type(None) if kind is type(None) else str for kind in types}


def _number_key(value: Any) -> Any:
    return value


def _text_key(value: Any) -> str:
    return str(value).casefold()


def sorted_rows(
    rows: Sequence[Row], column: int, *, descending: bool = False, cancelled: threading.Event | None = None
) -> list[Row]:
    """Stable sort by one column, in chunks, so the GIL is released often."""
    values = itertools.chain.from_iterable(
        (row.values[column] for row in rows[start : start + CHUNK]) for start in range(0, len(rows), CHUNK)
    )
    order = _sort_order(values, descending=descending, cancelled=cancelled)
    result: list[Row] = []
    for start in range(0, len(order), CHUNK):
        _check(cancelled)
        result.extend(rows[index] for index in order[start : start + CHUNK])
    return result


def _sorted_blocks(stored: Rows, column: int, descending: bool, cancelled: threading.Event | None) -> list[_Block]:
    values = itertools.chain.from_iterable(block.column(column) for block in stored._blocks)
    order = _sort_order(values, descending=descending, cancelled=cancelled)
    starts, blocks = stored._starts, stored._blocks
    # Each source block's value tuples, made once (by C-level zips) on its first use: the
    # sorted order visits every block again and again.
    made: list[tuple[tuple[Any, ...], ...] | None] = [None] * len(blocks)

    def entries() -> Iterator[tuple[Hashable, tuple[Any, ...], str | None]]:
        for index in order:
            ordinal = bisect_right(starts, index) - 1
            offset = index - starts[ordinal]
            block, values = blocks[ordinal], made[ordinal]
            if values is None:
                values = made[ordinal] = tuple(list(block.values()))  # noqa: C414 - untracked (see _Block)
            yield (block.keys[offset], values[offset], None if block.styles is None else block.styles[offset])

    return _blocks_of(entries(), cancelled)


def _text(values: tuple[Any, ...]) -> str:
    return "\t".join("" if value is None else str(value) for value in values).casefold()


def row_text(row: Row) -> str:
    """What a text filter searches: every cell, case-folded."""
    return _text(row.values)


def filtered_rows(rows: Sequence[Row], text: str, *, cancelled: threading.Event | None = None) -> list[Row]:
    """Rows whose cells contain ``text`` (case-insensitive), in their original order."""
    needle = text.casefold()
    kept: list[Row] = []
    for start in range(0, len(rows), CHUNK):
        _check(cancelled)
        kept.extend(row for row in rows[start : start + CHUNK] if needle in row_text(row))
    return kept


def _filtered_blocks(stored: Rows, text: str, cancelled: threading.Event | None) -> list[_Block]:
    needle = text.casefold()

    def entries() -> Iterator[tuple[Hashable, tuple[Any, ...], str | None]]:
        unchecked = CHUNK  # rows read since the last check (a filter may keep few of them)
        for block in stored._blocks:
            if unchecked >= CHUNK:
                _check(cancelled)
                unchecked = 0
            unchecked += len(block)
            yield from (entry for entry in block.entries() if needle in _text(entry[1]))

    return _blocks_of(entries(), cancelled)


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
    stored = source if isinstance(source, Rows) else Rows(_blocks_of(source, cancelled))
    blocks = list(stored._blocks)
    if view.filter_text:
        blocks = _filtered_blocks(stored, view.filter_text, cancelled)
    if view.sort_column is not None:
        blocks = _sorted_blocks(Rows(blocks), view.sort_column, view.descending, cancelled)
    return RowSet._of(blocks, cancelled)
