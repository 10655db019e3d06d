"""The panel status line: how a collector's snapshot is worded for the operator."""

from __future__ import annotations

from dataclasses import replace

import pytest

from backends.collector import Snapshot
from panels.status import format_age, format_duration, status_kind, status_text

NOW = 1_795_428_000.0

#: A good collection 3 s ago that took 120 ms, the next due in 7 s.
FRESH = Snapshot(name="ports", value=["80"], taken_at=NOW - 3, duration_s=0.12, generation=4, next_at=NOW + 7)


def test_fresh_value_says_age_duration_and_next_run() -> None:
    assert status_text(FRESH, NOW) == "updated 3s ago · 120 ms · next in 7s"
    assert status_kind(FRESH) == "ok"


def test_fresh_value_without_a_schedule_omits_next_run() -> None:
    assert status_text(replace(FRESH, next_at=None), NOW) == "updated 3s ago · 120 ms"


def test_refreshing_with_a_previous_value_keeps_its_age() -> None:
    snapshot = replace(FRESH, refreshing=True)
    assert status_text(snapshot, NOW) == "refreshing… · updated 3s ago"
    assert status_kind(snapshot) == "refreshing"


def test_refreshing_without_a_previous_value() -> None:
    snapshot = Snapshot(name="ports", refreshing=True)
    assert status_text(snapshot, NOW) == "refreshing…"
    assert status_kind(snapshot) == "refreshing"


def test_error_with_a_previous_value_is_stale_with_retry() -> None:
    snapshot = replace(FRESH, taken_at=NOW - 300, error="connection refused", error_at=NOW - 1,
                       consecutive_errors=2, next_at=NOW + 40)
    assert status_text(snapshot, NOW) == "stale 5m · connection refused · retry in 40s"
    assert status_kind(snapshot) == "stale"


def test_error_without_a_value_says_no_data() -> None:
    snapshot = Snapshot(name="ports", error="permission denied: /proc/net/tcp", error_at=NOW,
                        consecutive_errors=1, next_at=NOW + 20)
    assert status_text(snapshot, NOW) == "no data · permission denied: /proc/net/tcp · retry in 20s"
    assert status_kind(snapshot) == "stale"


def test_error_without_a_schedule_has_no_retry() -> None:
    snapshot = Snapshot(name="ports", error="boom", error_at=NOW, consecutive_errors=1)
    assert status_text(snapshot, NOW) == "no data · boom"


def test_never_collected_is_waiting() -> None:
    snapshot = Snapshot(name="ports")
    assert status_text(snapshot, NOW) == "waiting for first collection…"
    assert status_kind(snapshot) == "waiting"


@pytest.mark.parametrize(
    ("snapshot", "expected"),
    [
        (replace(FRESH, paused=True), "paused · updated 3s ago · 120 ms"),
        (replace(FRESH, paused=True, taken_at=NOW - 300, error="timed out", next_at=NOW + 40),
         "paused · stale 5m · timed out"),
        (Snapshot(name="ports", paused=True, error="timed out", next_at=NOW + 40), "paused · no data · timed out"),
        (Snapshot(name="ports", paused=True), "paused · waiting for first collection…"),
        (replace(FRESH, paused=True, refreshing=True), "paused · refreshing… · updated 3s ago"),
    ],
    ids=["ok", "stale", "no-data", "waiting", "refreshing"],
)
def test_paused_is_prefixed_and_drops_next_and_retry(snapshot: Snapshot[object], expected: str) -> None:
    assert status_text(snapshot, NOW) == expected


def test_next_run_already_due_reads_zero_not_negative() -> None:
    assert status_text(replace(FRESH, next_at=NOW - 2), NOW) == "updated 3s ago · 120 ms · next in 0s"


def test_value_taken_in_the_future_reads_zero_age() -> None:
    """A clock stepping backwards must not show "updated -2s ago"."""
    assert status_text(replace(FRESH, taken_at=NOW + 2), NOW).startswith("updated 0s ago · ")


def test_missing_duration_reads_zero() -> None:
    assert status_text(replace(FRESH, duration_s=None), NOW) == "updated 3s ago · 0 ms · next in 7s"


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, "0s"),
        (-5, "0s"),
        (0.9, "0s"),
        (59, "59s"),
        (59.99, "59s"),
        (60, "1m"),
        (119, "1m"),
        (3599, "59m"),
        (3600, "1h"),
        (86399, "23h"),
        (86400, "1d"),
        (3 * 86400 + 5 * 3600, "3d"),
    ],
)
def test_format_age(seconds: float, expected: str) -> None:
    assert format_age(seconds) == expected


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, "0 ms"),
        (0.0004, "0 ms"),
        (0.12, "120 ms"),
        (0.9994, "999 ms"),
        (0.9996, "1.0 s"),
        (1, "1.0 s"),
        (1.94, "1.9 s"),
        (12.96, "13.0 s"),
    ],
)
def test_format_duration(seconds: float, expected: str) -> None:
    assert format_duration(seconds) == expected
