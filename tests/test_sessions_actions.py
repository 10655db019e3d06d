"""The Sessions panel's actions between plan and execute: what the operator confirmed is what happens.

Against SQLite and the real PostgreSQL; the race is made to happen by changing the
registry between ``plan()`` and ``execute()``, as another worker would.
"""

from __future__ import annotations

import threading

from backends.actions import Progress
from backends.sessions import Registry, SessionState, Tombstone
from backends.sessions.actions import ExpireSession, PurgeSessions, StopSession
from tests.sessions_helpers import check_consistency, url_fixture

url = url_fixture  # pytest finds the fixture here


def execute(action, plan):  # type: ignore[no-untyped-def]
    return action.execute(plan, Progress(), threading.Event())


def test_expire_applies_only_to_the_state_the_plan_showed(url: str):
    with Registry.open(url, actor="app worker") as registry:
        registry.start("s-1")
        registry.start("s-2")
        expire_1, expire_2 = ExpireSession(url, "s-1"), ExpireSession(url, "s-2")
        plan_1, plan_2 = expire_1.plan(), expire_2.plan()
        assert "s-1 (no label) is active" in plan_1.lines[0]
        registry.complete("s-1", result={"rows": 3})  # the analysis finished while the dialog was open
        refused = execute(expire_1, plan_1)
        assert not refused.ok and refused.details == {"result": "refused"}
        assert refused.message == (
            "not done: session 's-1' is completed: cannot expire (move to expired): it was active when the move"
            " was planned")
        done = execute(expire_2, plan_2)
        assert done.ok and done.message == "session s-2 expired"
        assert [(s.id, s.state) for s in registry.snapshot().sessions()] == [
            ("s-1", SessionState.COMPLETED), ("s-2", SessionState.EXPIRED)]
        assert registry.history("s-2")[-1].actor.startswith("opsconsole ")


def test_stop_of_a_session_that_finished_meanwhile_is_refused(url: str):
    with Registry.open(url) as registry:
        registry.start("s-1")
        stop = StopSession(url, "s-1")
        plan = stop.plan()
        registry.fail("s-1", "disk full")
        outcome = execute(stop, plan)
        assert not outcome.ok and "is failed: cannot stop" in outcome.message
        assert StopSession(url, "s-1").plan().nothing_to_do


def age(registry: Registry, session_id: str, seconds: float) -> None:
    """Make a session's last change ``seconds`` older, as if it had happened back then."""
    registry._write(lambda tx: tx.execute(
        f"UPDATE {registry.sessions_table} SET updated_at = updated_at - ? WHERE id = ?", (seconds, session_id)))


def test_purge_deletes_what_the_plan_listed_and_nothing_that_qualified_later(url: str):
    with Registry.open(url, actor="app worker") as registry:
        for name in ("old-a", "old-b", "late"):
            registry.start(name)
        registry.complete("old-a")
        registry.stop("old-b")
        registry.fail("late", "boom")
        age(registry, "old-a", 7200)
        age(registry, "old-b", 7200)
        purge = PurgeSessions(url, 3600)
        plan = purge.plan()
        assert plan.title == "Purge 2 session(s) unchanged for 1 h?"
        assert plan.lines[:3] == ("1 completed, 1 stopped", "old-a (completed)", "old-b (stopped)")
        age(registry, "late", 7200)  # old enough now, but nobody confirmed purging it
        registry.expire("old-b")  # changed since the plan: no longer unchanged for an hour
        outcome = execute(purge, plan)
        assert outcome.ok and outcome.message == "purged 1 of 2 session(s); 1 changed since the plan and stayed"
        assert outcome.details == {"result": "purged", "count": 1, "planned": 2}
        assert isinstance(registry.get("old-a"), Tombstone)
        assert {s.id: s.state for s in registry.snapshot().sessions()} == {
            "old-b": SessionState.EXPIRED, "late": SessionState.FAILED}
        assert check_consistency(registry) == []
