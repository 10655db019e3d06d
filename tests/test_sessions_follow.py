"""The Sessions collector: one full read, then only events after its cursor, and the cheap check."""

from __future__ import annotations

import json
import time

import pytest

from backends.collector import CollectContext
from backends.jsonable import envelope
from backends.sessions import Registry
from backends.sessions.follow import RegistryFollower, SessionsView
from backends.sessions.source import http_settings, sessions_collector
from console.config import ConfigError, SessionsConfig, parse_config
from tests.sessions_helpers import url_fixture

url = url_fixture  # pytest finds the fixture here


def run(follower: RegistryFollower, previous: SessionsView | None) -> SessionsView:
    return follower(CollectContext(previous=previous, force=False, deadline=time.monotonic() + 10))


def states(view: SessionsView) -> dict[str, str]:
    return {session.id: str(session.state) for session in view.sessions}


def test_follower_reads_everything_once_then_only_what_changed(url: str):
    follower = RegistryFollower(url, gap_events=10)
    with Registry.open(url) as registry:
        registry.start("a", label="first")
        registry.start("b")
        view = run(follower, None)
        assert states(view) == {"a": "active", "b": "active"} and follower.full_reads == 1
        assert run(follower, view) is view  # nothing committed: the cheap check says so
        registry.complete("a")
        registry.stop("b")
        registry.purge(0, states=["stopped"])
        registry.start("c")
        changed = run(follower, view)
        assert states(changed) == {"a": "completed", "c": "active"}
        assert changed.counts == {"active": 1, "completed": 1, "stopped": 0, "failed": 0, "expired": 0}
        assert changed.cursor == registry.cursor() and follower.full_reads == 1
        assert [s.id for s in changed.sessions] == ["c", "a"]  # newest first
        for n in range(12):  # more than gap_events waiting: one full read instead
            registry.start(f"bulk-{n}")
        after_gap = run(follower, changed)
        assert len(after_gap.sessions) == 14 and follower.full_reads == 2
    follower.close()


def test_a_view_says_which_sessions_changed_since_an_earlier_one(url: str):
    """What lets the panel update its rows in place instead of rebuilding them all."""
    follower = RegistryFollower(url, gap_events=10)
    with Registry.open(url) as registry:
        registry.start("a")
        registry.start("b")
        first = run(follower, None)
        assert first.changed_since(first) == frozenset()
        registry.complete("a")
        second = run(follower, first)
        registry.start("c")
        registry.stop("b")
        registry.purge(0, states=["stopped"])
        third = run(follower, second)
        assert third.changed_since(second) == {"b", "c"}
        assert third.changed_since(first) == {"a", "b", "c"}  # a view skipped in between
        assert third.by_id["a"].state == "completed" and "b" not in third.by_id
        assert second.by_id["a"].state == "completed"  # each view keeps its own sessions
        for n in range(12):  # a gap: a full read, after which earlier views say nothing
            registry.start(f"bulk-{n}")
        after_gap = run(follower, third)
        assert follower.full_reads == 2 and after_gap.changed_since(third) is None
    follower.close()


def test_a_failed_run_starts_over_with_a_full_read(url: str):
    follower = RegistryFollower(url)
    with Registry.open(url) as registry:
        registry.start("a")
        view = run(follower, None)
        follower.close()  # what an error does: drop the connection and the cached rows
        registry.complete("a")
        assert states(run(follower, view)) == {"a": "completed"} and follower.full_reads == 2
    follower.close()


async def test_collector_value_follows_the_snapshot_json_contract(url: str):
    with Registry.open(url) as registry:
        registry.start("s-1", label="pcap", owner="alice")
        registry.progress("s-1", 0.4)
    collector = sessions_collector(SessionsConfig(url=url))
    snapshot = await collector.refresh()
    value = json.loads(json.dumps(envelope(snapshot, time.time())))["value"]
    assert value["source"] == url and value["cursor"] == 2
    assert set(value) == {"source", "cursor", "counts", "sessions", "full_reads"}  # no index, no change log
    assert value["counts"] == {"active": 1, "completed": 0, "stopped": 0, "failed": 0, "expired": 0}
    (session,) = value["sessions"]
    assert {k: session[k] for k in ("id", "state", "label", "owner", "progress")} == {
        "id": "s-1", "state": "active", "label": "pcap", "owner": "alice", "progress": 0.4}
    assert {"created_at", "updated_at", "last_access_at"} <= set(session)
    await collector.stop()


async def test_unconfigured_panel_says_which_key_to_set():
    snapshot = await sessions_collector(SessionsConfig()).refresh()
    assert snapshot.error == "Sessions panel not configured: set [sessions] url in the config file"


def test_http_keys_are_read_from_the_config_and_bad_values_are_one_line(tmp_path):
    config = parse_config(
        '[sessions]\nurl = "https://app.example/api/sessions"\ntoken_env = "APP_TOKEN"\nretries = 0\n'
        '[sessions.fields]\nid = "session_id"\n[sessions.state_names]\npartial = "stopped"\n'
        '[sessions.headers]\n"X-Api-Key" = "k"\n',
        tmp_path / "c.toml",
    )
    settings = http_settings(config.sessions)
    assert (settings.fields, settings.state_names, settings.headers, settings.token_env, settings.retries) == (
        {"id": "session_id"}, {"partial": "stopped"}, {"X-Api-Key": "k"}, "APP_TOKEN", 0)
    with pytest.raises(ConfigError) as caught:
        parse_config('[sessions.headers]\n"X-Api-Key" = 5\n', tmp_path / "c.toml")
    assert str(caught.value) == (
        f'config error in {tmp_path / "c.toml"}: [sessions.headers].X-Api-Key: expected a non-empty string, got 5 (integer)')
