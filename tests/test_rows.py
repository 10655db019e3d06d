"""backends.rows: the key index, stable chunked sorting, filtering and cancellation (no Textual)."""

from __future__ import annotations

import enum
import gc
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import backends.rows as rows_module
from backends.rows import (
    BLOCK,
    CHUNK,
    EMPTY,
    Cancelled,
    Row,
    RowSet,
    View,
    apply_view,
    discard,
    filtered_rows,
    sort_key,
    sorted_rows,
)

MILLION = 1_000_000


def reference_sorted(rows: Sequence[Row], column: int, descending: bool = False) -> list[Row]:
    """What the chunked sort must equal: Python's own stable sort (stable with reverse=True too)."""
    return sorted(rows, key=lambda row: sort_key(row.values[column]), reverse=descending)


def cell_matches(value: Any, needle: str) -> bool:
    return needle.casefold() in ("" if value is None else str(value)).casefold()


def reference_filtered(rows: Sequence[Row], needle: str) -> list[Row]:
    """What the filter must equal: a list comprehension over every cell, order kept."""
    return [row for row in rows if any(cell_matches(value, needle) for value in row.values)]


def keys(rows: Sequence[Row]) -> list[Any]:
    return [row.key for row in rows]


def make_rows(count: int, value: Callable[[int], Any]) -> list[Row]:
    return [Row(index, (value(index), f"name-{index}")) for index in range(count)]


# -- RowSet.build -----------------------------------------------------------------------


@pytest.mark.parametrize("count", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 7])
def test_build_indexes_every_key_at_its_position(count: int) -> None:
    rows = [Row(f"k{index}", (index,)) for index in range(count)]
    built = RowSet.build(rows)
    assert len(built) == count
    assert list(built.rows) == rows
    assert len(built.positions) == count
    for index in (0, count // 2, count - 1) if count else ():
        assert built.position(f"k{index}") == index
        assert built.rows[built.position(f"k{index}")].key == f"k{index}"
    assert all(built.positions[row.key] == index for index, row in enumerate(rows))
    assert built.position("missing") is None
    rows.append(Row("late", (0,)))
    assert len(built) == count and built.position("late") is None, "a RowSet owns its rows"


def test_build_accepts_a_generator_and_a_tuple() -> None:
    from_generator = RowSet.build(Row(index, (index,)) for index in range(5))
    from_tuple = RowSet.build(tuple(Row(index, (index,)) for index in range(5)))
    assert from_generator.rows == from_tuple.rows
    assert from_generator.position(4) == 4 == from_tuple.position(4)


def test_empty_rowset() -> None:
    assert len(EMPTY) == 0
    assert EMPTY.position("anything") is None
    assert len(RowSet.build([])) == 0


def test_build_with_a_set_cancel_event_raises() -> None:
    cancelled = threading.Event()
    cancelled.set()
    with pytest.raises(Cancelled):
        RowSet.build([Row(1, (1,))], cancelled)


# -- sort_key -----------------------------------------------------------------------------


def test_sort_key_orders_numbers_then_text_then_none() -> None:
    values = ["beta", None, 3, "Alpha", 1.5, None, -2, "alpha"]
    ordered = sorted(values, key=sort_key)
    assert ordered[:3] == [-2, 1.5, 3]
    assert [value.casefold() for value in ordered[3:6]] == ["alpha", "alpha", "beta"]
    assert ordered[3:5] == ["Alpha", "alpha"], "text compares case-insensitively and stably"
    assert ordered[6:] == [None, None]


# -- sorted_rows ---------------------------------------------------------------------------


SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 7]


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("count", SIZES)
def test_sorted_rows_equals_sorted_with_many_equal_keys(count: int, descending: bool) -> None:
    # Only 7 distinct keys: nearly every comparison is a tie, so stability decides the order,
    # across every chunk boundary and in the merge.
    rows = make_rows(count, lambda index: (index * 7919) % 7)
    result = sorted_rows(rows, 0, descending=descending)
    expected = reference_sorted(rows, 0, descending)
    assert keys(result) == keys(expected)
    assert result == expected


@pytest.mark.parametrize("count", SIZES)
def test_sorted_rows_is_stable_for_all_equal_keys(count: int) -> None:
    rows = make_rows(count, lambda index: "same")
    assert keys(sorted_rows(rows, 0)) == list(range(count))
    assert keys(sorted_rows(rows, 0, descending=True)) == list(range(count)), (
        "descending must stay stable (like sorted(..., reverse=True)), not reverse ties"
    )


@pytest.mark.parametrize("count", SIZES)
def test_sorted_rows_distinct_keys_across_chunks(count: int) -> None:
    # A permutation: every run is sorted separately and the merge must interleave them.
    rows = make_rows(count, lambda index: (index * 7919) % (count or 1))
    assert sorted_rows(rows, 0) == reference_sorted(rows, 0)
    assert sorted_rows(rows, 0, descending=True) == reference_sorted(rows, 0, True)


def test_sorted_rows_puts_none_last_ascending_and_matches_sorted_descending() -> None:
    rows = make_rows(3 * CHUNK + 7, lambda index: None if index % 3 == 0 else index % 11)
    ascending = sorted_rows(rows, 0)
    nones = sum(1 for row in rows if row.values[0] is None)
    assert all(row.values[0] is None for row in ascending[-nones:])
    assert all(row.values[0] is not None for row in ascending[:-nones])
    assert ascending == reference_sorted(rows, 0)
    assert sorted_rows(rows, 0, descending=True) == reference_sorted(rows, 0, True)


def test_sorted_rows_mixed_int_and_str() -> None:
    def value(index: int) -> Any:
        return [index % 5, f"Item{index % 4}", f"item{index % 4}", float(index % 3) + 0.5, None][index % 5]

    rows = make_rows(2 * CHUNK + 13, value)
    ascending = sorted_rows(rows, 0)
    assert ascending == reference_sorted(rows, 0)
    kinds = [0 if isinstance(row.values[0], int | float) else 1 if row.values[0] is not None else 2 for row in ascending]
    assert kinds == sorted(kinds), "numbers, then text, then None"
    assert sorted_rows(rows, 0, descending=True) == reference_sorted(rows, 0, True)


def test_sorted_rows_by_second_column() -> None:
    rows = [Row(index, (index, f"n{(index * 31) % 17:02d}")) for index in range(CHUNK + 50)]
    assert sorted_rows(rows, 1) == reference_sorted(rows, 1)


def test_sorted_rows_does_not_modify_its_input() -> None:
    rows = tuple(make_rows(CHUNK + 3, lambda index: -index))
    copy = tuple(rows)
    sorted_rows(rows, 0)
    assert rows == copy


# -- filtered_rows --------------------------------------------------------------------------


def test_filtered_rows_is_case_insensitive_on_every_cell_in_order() -> None:
    rows = [
        Row("a", ("web-1", "FAILED", 3)),
        Row("b", ("db-1", "active", None)),
        Row("c", ("Worker", "failed", 13)),
        Row("d", ("cache", "stopped", 130)),
        Row("e", (None, None, None)),
    ]
    assert keys(filtered_rows(rows, "failed")) == ["a", "c"]
    assert keys(filtered_rows(rows, "FaIlEd")) == ["a", "c"]
    assert keys(filtered_rows(rows, "WORKER")) == ["c"]
    assert keys(filtered_rows(rows, "13")) == ["c", "d"], "numbers are searched as text, order kept"
    assert keys(filtered_rows(rows, "")) == ["a", "b", "c", "d", "e"]
    assert filtered_rows(rows, "none") == [], "an empty (None) cell is empty text, not 'None'"
    assert filtered_rows(rows, "nothing-matches") == []


@pytest.mark.parametrize("count", SIZES)
def test_filtered_rows_across_chunks_equals_list_comprehension(count: int) -> None:
    rows = make_rows(count, lambda index: "Match" if index % 97 == 0 else "skip")
    assert filtered_rows(rows, "match") == reference_filtered(rows, "match")
    assert len(filtered_rows(rows, "match")) == (count + 96) // 97


# -- hypothesis: chunked sort/filter vs the reference, with tiny chunks -----------------------

TEXT = st.text(alphabet="aAbBß s-1", max_size=4)
VALUE = st.one_of(st.none(), st.integers(-5, 5), st.floats(-3, 3, allow_nan=False), TEXT)
ROWS = st.lists(st.tuples(VALUE, VALUE), max_size=60).map(
    lambda cells: [Row(index, values) for index, values in enumerate(cells)]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=ROWS, column=st.integers(0, 1), descending=st.booleans(), chunk=st.integers(1, 8))
def test_property_sorted_rows_equals_sorted(rows: list[Row], column: int, descending: bool, chunk: int) -> None:
    with mock.patch.object(rows_module, "CHUNK", chunk):
        result = sorted_rows(rows, column, descending=descending)
    assert result == reference_sorted(rows, column, descending)


@settings(max_examples=300, deadline=None)
@given(rows=ROWS, needle=TEXT, chunk=st.integers(1, 8))
def test_property_filtered_rows_equals_list_comprehension(rows: list[Row], needle: str, chunk: int) -> None:
    with mock.patch.object(rows_module, "CHUNK", chunk):
        result = filtered_rows(rows, needle)
    assert result == reference_filtered(rows, needle)


@settings(max_examples=200, deadline=None)
@given(
    rows=ROWS,
    needle=TEXT,
    column=st.one_of(st.none(), st.integers(0, 1)),
    descending=st.booleans(),
    chunk=st.integers(1, 8),
)
def test_property_apply_view(rows: list[Row], needle: str, column: int | None, descending: bool, chunk: int) -> None:
    expected: list[Row] = reference_filtered(rows, needle)
    if column is not None:
        expected = reference_sorted(expected, column, descending)
    with mock.patch.object(rows_module, "CHUNK", chunk):
        result = apply_view(rows, View(sort_column=column, descending=descending, filter_text=needle))
    assert list(result.rows) == expected
    assert all(result.position(row.key) == index for index, row in enumerate(expected))


# -- apply_view -----------------------------------------------------------------------------


def test_apply_view_filters_then_sorts_then_indexes() -> None:
    rows = [Row(index, (f"{'web' if index % 2 else 'db'}-{index}", (index * 37) % 10)) for index in range(CHUNK + 20)]
    view = View(sort_column=1, descending=True, filter_text="WEB")
    result = apply_view(rows, view)
    expected = reference_sorted(reference_filtered(rows, "web"), 1, descending=True)
    assert list(result.rows) == expected
    assert len(result.positions) == len(expected)
    assert all(result.position(row.key) == index for index, row in enumerate(expected))


def test_apply_view_identity_keeps_source_order() -> None:
    rows = make_rows(50, lambda index: -index)
    assert View().identity
    assert not View(sort_column=0).identity
    assert not View(filter_text="x").identity
    assert list(apply_view(rows, View()).rows) == rows


# -- cancellation -----------------------------------------------------------------------------


def test_already_set_event_cancels_sort_filter_and_view() -> None:
    cancelled = threading.Event()
    cancelled.set()
    rows = make_rows(10, lambda index: index)
    with pytest.raises(Cancelled):
        sorted_rows(rows, 0, cancelled=cancelled)
    with pytest.raises(Cancelled):
        filtered_rows(rows, "1", cancelled=cancelled)
    with pytest.raises(Cancelled):
        apply_view(rows, View(sort_column=0), cancelled)


def test_unset_event_does_not_cancel() -> None:
    rows = make_rows(CHUNK + 1, lambda index: -index)
    assert sorted_rows(rows, 0, cancelled=threading.Event()) == reference_sorted(rows, 0)


class Pausing(Sequence[Row]):
    """A row sequence that, once ``pause_after`` accesses are reached, tells the test it is
    mid-way and waits (bounded) for the test's thread to cancel, then counts later accesses."""

    def __init__(self, rows: Sequence[Row], pause_after: int, *, ints_only: bool) -> None:
        self._rows = rows
        self._pause_after = pause_after
        self._ints_only = ints_only
        self.accesses = 0
        self.accesses_after_cancel = 0
        self.midway = threading.Event()
        self.cancel_seen = threading.Event()

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, index: Any) -> Any:  # type: ignore[override]
        counted = isinstance(index, int) or not self._ints_only
        if counted:
            if self.cancel_seen.is_set():
                self.accesses_after_cancel += 1
            self.accesses += 1
            if self.accesses == self._pause_after:
                self.midway.set()
                assert self.cancel_seen.wait(30), "the test never cancelled"
        return self._rows[index]


def run_in_thread(function: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = function()
        except BaseException as error:  # noqa: BLE001 - handed back to the test
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, outcome


@pytest.fixture(scope="module")
def million_rows() -> list[Row]:
    return [Row(index, ((index * 7919) % 1000, f"name-{index}")) for index in range(MILLION)]


@pytest.mark.parametrize(
    ("phase", "pause_after", "ints_only"),
    [
        # slices of CHUNK rows while computing the keys: pause after 5 of 100 chunks
        ("keys", 5, False),
        # single-row reads while merging: pause after 3 chunks' worth of output
        ("merge", 3 * CHUNK, True),
    ],
)
def test_event_set_from_another_thread_stops_a_million_row_sort_midway(
    million_rows: list[Row], phase: str, pause_after: int, ints_only: bool
) -> None:
    rows = Pausing(million_rows, pause_after, ints_only=ints_only)
    cancelled = threading.Event()
    thread, outcome = run_in_thread(lambda: sorted_rows(rows, 0, cancelled=cancelled))
    assert rows.midway.wait(60), f"the sort never reached the middle of its {phase} phase"
    cancelled.set()  # from this (the test's) thread, while the worker is mid-way
    rows.cancel_seen.set()
    thread.join(60)
    assert not thread.is_alive(), "the sort did not stop after being cancelled"
    assert isinstance(outcome.get("error"), Cancelled), f"expected Cancelled, got {outcome!r}"
    assert "result" not in outcome
    # It stops at the next chunk boundary, far from the end of the million rows.
    assert rows.accesses_after_cancel <= CHUNK, rows.accesses_after_cancel


def test_event_set_from_another_thread_stops_a_million_row_filter_midway(million_rows: list[Row]) -> None:
    rows = Pausing(million_rows, 10, ints_only=False)
    cancelled = threading.Event()
    thread, outcome = run_in_thread(lambda: filtered_rows(rows, "name-9", cancelled=cancelled))
    assert rows.midway.wait(60)
    cancelled.set()
    rows.cancel_seen.set()
    thread.join(60)
    assert not thread.is_alive()
    assert isinstance(outcome.get("error"), Cancelled), f"expected Cancelled, got {outcome!r}"
    assert rows.accesses_after_cancel <= 1, "one more chunk at most after the event is set"


def test_unpaused_million_row_sort_cancelled_from_another_thread(million_rows: list[Row]) -> None:
    """No instrumentation: a plain thread sorting a million rows, cancelled by this thread as
    soon as the worker has started. The worker must raise Cancelled, not return rows."""
    cancelled = threading.Event()
    started = threading.Event()

    def work() -> list[Row]:
        started.set()
        return sorted_rows(million_rows, 1, cancelled=cancelled)

    thread, outcome = run_in_thread(work)
    assert started.wait(30)
    cancelled.set()
    thread.join(120)
    assert not thread.is_alive()
    assert isinstance(outcome.get("error"), Cancelled), f"expected Cancelled, got {sorted(outcome)}"


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Bounded poll for the reaper thread (not a timing assertion)."""
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_discard_frees_only_sets_nobody_else_holds() -> None:
    """The reaper frees a discarded set's blocks in pieces, but never empties one still in use."""
    kept = RowSet.build(Row(index, (index,)) for index in range(2 * CHUNK))
    discard(kept)  # this test still holds it: it must stay whole
    released = RowSet.build(Row(index, (index,)) for index in range(2 * CHUNK))
    first_block = weakref.ref(released.rows._blocks[0])  # type: ignore[attr-defined]
    discard(released)
    del released
    wait_until(lambda: first_block() is None, "the unreferenced discarded set to be freed")
    time.sleep(0.3)  # the reaper's patience for the kept set runs out
    assert len(kept) == 2 * CHUNK and kept.position(2 * CHUNK - 1) == 2 * CHUNK - 1
    assert list(kept.rows) == [Row(index, (index,)) for index in range(2 * CHUNK)]


def test_discard_keeps_blocks_shared_with_an_updated_set() -> None:
    old = RowSet.build(Row(index, (index,)) for index in range(2 * CHUNK))
    new = old.updated([Row(0, (-1,))], removed=[2 * CHUNK - 1])
    changed = weakref.ref(old.rows._blocks[0])  # type: ignore[attr-defined]
    discard(old)
    del old
    wait_until(lambda: changed() is None, "the replaced block to be freed")
    assert list(new.rows) == [Row(0, (-1,)), *(Row(index, (index,)) for index in range(1, 2 * CHUNK - 1))]
    assert new.position(2 * CHUNK - 2) == 2 * CHUNK - 2 and new.position(2 * CHUNK - 1) is None


# -- storage: blocks, Rows, and the garbage collector ---------------------------------------


def test_rows_sequence_reads_like_a_list() -> None:
    rows = [Row(f"k{index}", (index, f"n{index}"), "red" if index % 7 == 0 else None) for index in range(3 * BLOCK + 5)]
    stored = RowSet.build(rows).rows
    assert len(stored) == len(rows)
    assert stored[0] == rows[0] and stored[-1] == rows[-1] and stored[BLOCK] == rows[BLOCK]
    assert stored[BLOCK - 3 : BLOCK + 3] == rows[BLOCK - 3 : BLOCK + 3]
    assert stored[::BLOCK] == rows[::BLOCK]
    assert list(stored) == rows and stored == rows and stored == tuple(rows)
    assert stored != rows[:-1]
    assert isinstance(stored[1], Row) and stored[7].style == "red" and stored[8].style is None
    with pytest.raises(IndexError):
        stored[len(rows)]
    with pytest.raises(IndexError):
        stored[-len(rows) - 1]


def test_rows_of_different_widths_and_no_values_round_trip() -> None:
    rows = [Row(0, ()), Row(1, (1,)), Row(2, (2, "two")), Row(3, ())]
    assert list(RowSet.build(rows).rows) == rows
    empty_values = [Row(index, ()) for index in range(BLOCK + 1)]
    assert list(RowSet.build(empty_values).rows) == empty_values


class State(enum.StrEnum):
    ACTIVE = "active"
    FAILED = "failed"


@pytest.mark.parametrize("state", [None, State.ACTIVE], ids=["atomic-values", "enum-values"])
def test_a_built_rowset_adds_few_objects_for_the_garbage_collector_to_walk(state: State | None) -> None:
    """A full collection walks every tracked object while holding the GIL (the event loop
    waits): storing 100,000 rows must not add 100,000 of them, whatever the values are
    (an enum member is itself tracked, so a tuple holding one stays tracked)."""
    count = 100_000
    gc.collect()
    before = len(gc.get_objects())
    built = RowSet.build(Row(f"k{index}", (index, state or f"n{index}", None)) for index in range(count))
    gc.collect()
    added = len(gc.get_objects()) - before
    assert len(built) == count
    assert added < 10 * (count // BLOCK + 1), f"{added} tracked objects for {count} rows"


# -- RowSet.updated ---------------------------------------------------------------------------


def reference_updated(rows: Sequence[Row], upserts: Sequence[Row], removed: Sequence[Any],
                      at_start: bool = False) -> list[Row]:
    """What ``updated`` must equal: drop the removed keys, replace upserted keys in place,
    append (or put first) the other upserted keys in the order they first appear (the last
    row for a key wins)."""
    gone = set(removed)
    latest = {row.key: row for row in upserts}
    kept = [latest.get(row.key, row) for row in rows if row.key not in gone]
    kept_keys = {row.key for row in kept}
    new = [row for key, row in latest.items() if key not in kept_keys]
    return new + kept if at_start else kept + new


def assert_indexed(result: RowSet, expected: list[Row]) -> None:
    assert list(result.rows) == expected
    assert len(result) == len(expected) == len(result.positions)
    assert all(result.position(row.key) == index for index, row in enumerate(expected))


def test_updated_replaces_in_place_appends_new_keys_and_drops_removed() -> None:
    old_rows = [Row(f"k{index}", (index, "active")) for index in range(3 * BLOCK)]
    old = RowSet.build(old_rows)
    upserts = [Row("k5", (5, "failed"), "red"), Row("new-1", (-1, "active")), Row(f"k{2 * BLOCK}", (0, "x")),
               Row("new-2", (-2, "active")), Row("new-1", (-11, "failed"))]
    removed = ["k0", f"k{BLOCK + 1}", "not-there", f"k{2 * BLOCK}"]
    result = old.updated(upserts, removed)
    expected = reference_updated(old_rows, upserts, removed)
    assert_indexed(result, expected)
    assert result.rows[4] == Row("k5", (5, "failed"), "red")
    # appended in the order the keys first appear; a removed-and-upserted key comes back at the end
    assert result.rows[-3:] == [Row("new-1", (-11, "failed")), Row(f"k{2 * BLOCK}", (0, "x")), Row("new-2", (-2, "active"))]
    assert result.position("k0") is None and result.position("not-there") is None
    assert_indexed(old, old_rows)  # the set it came from is unchanged


def test_updated_at_start_puts_new_keys_first_filling_the_first_block() -> None:
    """A newest-first table (sessions): new rows go on top, in the order given."""
    old_rows = [Row(index, (index,)) for index in range(BLOCK + 10)]  # a full block, then 10 rows
    old = RowSet.build(old_rows)
    fresh = [Row(f"new-{n}", (n,)) for n in range(3)]
    first = old.updated([*fresh, Row(4, (-4,))], removed=[1], at_start=True)
    assert_indexed(first, reference_updated(old_rows, [*fresh, Row(4, (-4,))], [1], at_start=True))
    assert [row.key for row in first.rows[:4]] == ["new-0", "new-1", "new-2", 0]
    # the first block now has room (one removed): the next new row fills it, no new block
    second = first.updated([Row("newer", (9,))], at_start=True)
    assert second.rows[0].key == "newer" and len(second.rows._blocks) == len(first.rows._blocks)  # type: ignore[attr-defined]
    wrapped = RowSet(tuple(old_rows), {row.key: index for index, row in enumerate(old_rows)})
    assert_indexed(wrapped.updated(fresh, [0], at_start=True), reference_updated(old_rows, fresh, [0], at_start=True))


def test_updated_shares_the_blocks_it_does_not_touch() -> None:
    old = RowSet.build(Row(index, (index,)) for index in range(10 * BLOCK))
    new = old.updated([Row(3 * BLOCK + 1, (0,))])
    old_blocks, new_blocks = old.rows._blocks, new.rows._blocks  # type: ignore[attr-defined]
    shared = [old_block is new_block for old_block, new_block in zip(old_blocks, new_blocks, strict=True)]
    assert shared == [index != 3 for index in range(10)]


def test_updated_with_nothing_and_from_empty() -> None:
    rows = [Row(index, (index,)) for index in range(5)]
    built = RowSet.build(rows)
    assert_indexed(built.updated(), rows)
    assert_indexed(EMPTY.updated(rows), rows)
    assert_indexed(built.updated(removed=range(5)), [])
    assert_indexed(built.updated(removed=range(5)).updated(rows[::-1]), rows[::-1])


def test_updated_on_a_set_not_built_here_rebuilds_it() -> None:
    rows = [Row(index, (index,)) for index in range(20)]
    wrapped = RowSet(tuple(rows), {row.key: index for index, row in enumerate(rows)})
    upserts, removed = [Row(3, (-3,)), Row(99, (99,))], [0, 7]
    assert_indexed(wrapped.updated(upserts, removed), reference_updated(rows, upserts, removed))


def test_updated_compacts_blocks_emptied_by_removals() -> None:
    rows = [Row(index, (index,)) for index in range(20 * BLOCK)]
    current = RowSet.build(rows)
    for start in range(0, len(rows), BLOCK):  # leave one row per block, one block at a time
        removed = [row.key for row in rows[start + 1 : start + BLOCK]]
        current = current.updated(removed=removed)
    expected = rows[::BLOCK]
    assert_indexed(current, expected)
    assert len(current.rows._blocks) <= 2 * (len(expected) // BLOCK) + 8  # type: ignore[attr-defined]


def test_updated_with_a_set_cancel_event_raises() -> None:
    cancelled = threading.Event()
    cancelled.set()
    with pytest.raises(Cancelled):
        RowSet.build(Row(index, (index,)) for index in range(BLOCK)).updated([Row(0, (1,))], cancelled=cancelled)


KEY = st.integers(0, 40)
UPSERT = st.builds(lambda key, values, red: Row(key, values, "red" if red else None),
                   KEY, st.tuples(VALUE, VALUE) | st.tuples(VALUE), st.booleans())
CHANGE = st.tuples(st.lists(UPSERT, max_size=12), st.lists(KEY, max_size=8))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(initial=st.lists(UPSERT, max_size=40, unique_by=lambda row: row.key), changes=st.lists(CHANGE, max_size=6),
       block=st.integers(1, 5), shard_keys=st.integers(1, 4), at_start=st.booleans())
def test_property_updated_equals_a_full_rebuild(
    initial: list[Row], changes: list[tuple[list[Row], list[int]]], block: int, shard_keys: int, at_start: bool
) -> None:
    """Successive updates, with tiny blocks and shards so they cross block boundaries, empty
    and refill blocks, compact and rebuild: each result equals the reference applied to a list."""
    with mock.patch.object(rows_module, "BLOCK", block), mock.patch.object(rows_module, "SHARD_KEYS", shard_keys):
        current = RowSet.build(initial)
        expected = list(initial)
        for upserts, removed in changes:
            before = list(current.rows)
            updated = current.updated(upserts, removed, at_start=at_start)
            expected = reference_updated(expected, upserts, removed, at_start)
            assert_indexed(updated, expected)
            assert list(current.rows) == before, "the set it came from is unchanged"
            current = updated
        for view in (View(sort_column=0), View(filter_text="a"), View(sort_column=0, descending=True, filter_text="1")):
            if all(len(row.values) for row in expected):
                shown = apply_view(current.rows, view)
                reference = reference_filtered(expected, view.filter_text)
                if view.sort_column is not None:
                    reference = reference_sorted(reference, 0, view.descending)
                assert_indexed(shown, reference)
