"""The action protocol end to end: refuse, plan, confirm, act, audit, refresh.

Every test drives a real destructive action (tests/conftest.py's FileAction: deletes one
file after re-checking its inode) on a real file, with a real audit log, and a scripted
operator in place of the confirm and progress dialogs.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from backends.actions import Plan, Progress
from console.action_runner import ActionStatus, run_action
from console.audit import AuditLog
from tests.conftest import FileAction


@dataclass
class CountingFileAction(FileAction):
    """FileAction that counts how often it was planned."""

    plans: int = 0

    def plan(self) -> Plan:
        self.plans += 1
        return super().plan()


class ScriptedUI:
    """The operator: answers the confirm dialog as scripted and records what it was shown."""

    def __init__(
        self,
        answer: bool = True,
        *,
        on_confirm: Callable[[Plan], None] | None = None,
        on_progress: Callable[[Progress, threading.Event], None] | None = None,
        watch: Path | None = None,
    ) -> None:
        self.answer = answer
        self.on_confirm = on_confirm
        self.on_progress = on_progress
        self.watch = watch
        self.calls: list[str] = []
        self.shown: list[Plan] = []
        self.progress: Progress | None = None
        self.cancelled: threading.Event | None = None
        self.watched_exists_at_finish: bool | None = None

    async def confirm(self, plan: Plan) -> bool:
        self.calls.append("confirm")
        self.shown.append(plan)
        if self.on_confirm is not None:
            self.on_confirm(plan)
        return self.answer

    def progress_started(self, plan: Plan, progress: Progress, cancelled: threading.Event) -> None:
        self.calls.append("started")
        self.progress, self.cancelled = progress, cancelled
        if self.on_progress is not None:
            self.on_progress(progress, cancelled)

    def progress_finished(self) -> None:
        self.calls.append("finished")
        if self.watch is not None:
            self.watched_exists_at_finish = self.watch.exists()


class Refresh:
    """The refresh callback: records the panel only once it has actually been awaited."""

    def __init__(self, audit_path: Path) -> None:
        self.audit_path = audit_path
        self.awaited: list[str] = []
        self.audit_lines_at_refresh: list[int] = []

    async def __call__(self, panel: str) -> None:
        self.audit_lines_at_refresh.append(len(audit_lines(self.audit_path)))
        await asyncio.sleep(0)
        self.awaited.append(panel)


def audit_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    text = path.read_text()
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "stale.lock"
    path.parent.mkdir()
    path.write_text("pid 4242\n")
    return path


@pytest.fixture
def refresh(audit_path: Path) -> Refresh:
    return Refresh(audit_path)


async def run(action: FileAction, ui: ScriptedUI, audit_path: Path, refresh: Refresh, *, read_only: bool = False):
    return await run_action(action, ui=ui, audit=AuditLog(audit_path), read_only=read_only, refresh=refresh)


# -- refused before anything happens -----------------------------------------------


async def test_read_only_refuses_without_planning(victim: Path, audit_path: Path, refresh: Refresh) -> None:
    action = CountingFileAction(victim)
    ui = ScriptedUI()
    result = await run(action, ui, audit_path, refresh, read_only=True)

    assert result.status is ActionStatus.REFUSED
    assert result.message == "read-only mode: test.delete refused"
    assert result.plan is None and result.outcome is None
    assert action.plans == 0
    assert ui.calls == []
    assert victim.read_text() == "pid 4242\n"
    assert not audit_path.exists()
    assert not audit_path.parent.exists()
    assert refresh.awaited == []


async def test_unwritable_audit_log_refuses_and_does_nothing(tmp_path: Path, victim: Path, refresh: Refresh) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("in the way\n")
    audit_path = blocker / "audit.log"
    action = CountingFileAction(victim)
    ui = ScriptedUI()
    result = await run(action, ui, audit_path, refresh)

    assert result.status is ActionStatus.REFUSED
    assert str(audit_path) in result.message
    assert "test.delete refused" in result.message
    assert "\n" not in result.message
    assert action.plans == 0
    assert ui.calls == []
    assert victim.read_text() == "pid 4242\n"
    assert blocker.read_text() == "in the way\n"
    assert refresh.awaited == []


# -- planning ----------------------------------------------------------------------


async def test_plan_failure_is_reported_not_raised(tmp_path: Path, audit_path: Path, refresh: Refresh) -> None:
    missing = tmp_path / "gone.lock"
    ui = ScriptedUI()
    result = await run(FileAction(missing), ui, audit_path, refresh)

    assert result.status is ActionStatus.FAILED
    assert result.message.startswith("test.delete: could not plan: ")
    assert "No such file or directory" in result.message
    assert "\n" not in result.message
    assert ui.calls == []
    assert audit_lines(audit_path) == []
    assert refresh.awaited == []


@dataclass
class CleanupDir:
    """A second real action: deletes every file in a directory; nothing to do when it is empty."""

    directory: Path
    name: str = "test.cleanup"
    panel: str = "pcap"

    def plan(self) -> Plan:
        files = sorted(self.directory.iterdir())
        return Plan(action=self.name, target=str(self.directory),
                    title=f"Delete {len(files)} files" if files else "Nothing to clean up",
                    lines=tuple(f.name for f in files), audit={"files": files},
                    nothing_to_do=not files, payload=files)

    def execute(self, plan: Plan, progress: Progress, cancelled: threading.Event) -> Any:
        raise AssertionError("execute must not run when there is nothing to do")


async def test_nothing_to_do_never_asks(tmp_path: Path, audit_path: Path, refresh: Refresh) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    ui = ScriptedUI()
    result = await run_action(CleanupDir(empty), ui=ui, audit=AuditLog(audit_path), read_only=False,
                              refresh=refresh)

    assert result.status is ActionStatus.NOTHING_TO_DO
    assert result.message == "Nothing to clean up"
    assert result.plan is not None and result.plan.nothing_to_do
    assert ui.calls == []
    assert audit_lines(audit_path) == []
    assert refresh.awaited == []


# -- confirming --------------------------------------------------------------------


async def test_declined_confirmation_does_nothing(victim: Path, audit_path: Path, refresh: Refresh) -> None:
    ui = ScriptedUI(answer=False)
    result = await run(FileAction(victim), ui, audit_path, refresh)

    assert result.status is ActionStatus.CANCELLED
    assert result.message == "test.delete cancelled: nothing was done"
    assert ui.calls == ["confirm"]
    assert victim.read_text() == "pid 4242\n"
    assert audit_lines(audit_path) == []
    assert refresh.awaited == []


async def test_confirmed_action_acts_audits_and_refreshes(victim: Path, audit_path: Path, refresh: Refresh) -> None:
    inode = victim.stat().st_ino
    ui = ScriptedUI(watch=victim)
    result = await run(FileAction(victim), ui, audit_path, refresh)

    assert result.status is ActionStatus.DONE
    assert result.message == "deleted stale.lock"
    assert result.outcome is not None and result.outcome.ok
    assert not victim.exists()

    [shown] = ui.shown
    assert shown.title == "Delete stale.lock"
    assert shown.lines == (f"inode {inode}",)
    assert result.plan == shown
    assert ui.calls == ["confirm", "started", "finished"]
    assert ui.watched_exists_at_finish is False, "progress finished only after the action ran"
    assert ui.progress is not None and ui.progress.read().done == 1

    [entry] = audit_lines(audit_path)
    assert entry["action"] == "test.delete"
    assert entry["target"] == str(victim)
    assert entry["plan"] == {"inode": inode}
    assert entry["outcome"] == {"ok": True, "message": "deleted stale.lock", "cancelled": False, "deleted": 1}
    assert entry["uid"] == os.getuid()

    assert refresh.awaited == ["locks"]
    assert refresh.audit_lines_at_refresh == [1], "the audit line is written before the refresh"


async def test_two_actions_give_two_audit_lines(tmp_path: Path, audit_path: Path, refresh: Refresh) -> None:
    first, second = tmp_path / "a.lock", tmp_path / "b.lock"
    first.write_text("a")
    second.write_text("b")
    for path in (first, second):
        result = await run(FileAction(path), ScriptedUI(), audit_path, refresh)
        assert result.status is ActionStatus.DONE
    assert [entry["target"] for entry in audit_lines(audit_path)] == [str(first), str(second)]
    assert refresh.awaited == ["locks", "locks"]


# -- acting ------------------------------------------------------------------------


async def test_execute_raising_is_a_failure_and_is_audited(victim: Path, audit_path: Path, refresh: Refresh) -> None:
    # The operator's confirm dialog is open while someone else removes the file:
    # FileAction's re-check (stat) then raises FileNotFoundError inside execute.
    ui = ScriptedUI(on_confirm=lambda plan: victim.unlink())
    result = await run(FileAction(victim), ui, audit_path, refresh)

    assert result.status is ActionStatus.FAILED
    assert result.message.startswith("test.delete failed: ")
    assert "No such file or directory" in result.message
    assert result.outcome is not None and not result.outcome.ok
    assert ui.calls == ["confirm", "started", "finished"]

    [entry] = audit_lines(audit_path)
    assert entry["outcome"]["ok"] is False
    assert entry["outcome"]["cancelled"] is False
    assert entry["outcome"]["message"] == result.message
    assert refresh.awaited == ["locks"]


async def test_file_replaced_between_plan_and_execute_is_not_deleted(
    victim: Path, audit_path: Path, refresh: Refresh
) -> None:
    old_inode = victim.stat().st_ino

    def replace_file(plan: Plan) -> None:
        replacement = victim.with_name("replacement.tmp")
        replacement.write_text("a live lock\n")
        os.replace(replacement, victim)  # same name, new inode

    ui = ScriptedUI(on_confirm=replace_file)
    result = await run(FileAction(victim), ui, audit_path, refresh)

    assert victim.stat().st_ino != old_inode, "precondition: the file really was replaced"
    assert victim.read_text() == "a live lock\n"
    assert result.status is ActionStatus.FAILED
    assert result.message == "file was replaced; not deleted"
    assert result.outcome is not None and not result.outcome.ok

    [entry] = audit_lines(audit_path)
    assert entry["plan"] == {"inode": old_inode}
    assert entry["outcome"] == {"ok": False, "message": "file was replaced; not deleted", "cancelled": False,
                                "deleted": 0}
    assert refresh.awaited == ["locks"]


# -- cancelling --------------------------------------------------------------------


async def test_operator_cancels_from_the_progress_dialog(victim: Path, audit_path: Path, refresh: Refresh) -> None:
    started = threading.Event()

    def press_cancel_once_running(progress: Progress, cancelled: threading.Event) -> None:
        # The operator presses "cancel" once the action is under way (FileAction sets
        # `started` when it begins, then waits on `cancelled` between its steps).
        threading.Thread(target=lambda: started.wait(30) and cancelled.set(), daemon=True).start()

    ui = ScriptedUI(on_progress=press_cancel_once_running)
    result = await run(FileAction(victim, block=started), ui, audit_path, refresh)

    assert started.is_set()
    assert ui.cancelled is not None and ui.cancelled.is_set()
    assert victim.read_text() == "pid 4242\n"
    assert result.status is not ActionStatus.DONE
    assert result.message == "cancelled before deleting"
    assert ui.calls == ["confirm", "started", "finished"]

    [entry] = audit_lines(audit_path)
    assert entry["outcome"] == {"ok": False, "message": "cancelled before deleting", "cancelled": True,
                                "deleted": 0}
    assert refresh.awaited == ["locks"]


async def test_cancel_pressed_before_the_action_starts(victim: Path, audit_path: Path, refresh: Refresh) -> None:
    ui = ScriptedUI(on_progress=lambda progress, cancelled: cancelled.set())
    result = await run(FileAction(victim), ui, audit_path, refresh)

    assert victim.exists()
    assert result.message == "cancelled before deleting"
    [entry] = audit_lines(audit_path)
    assert entry["outcome"]["cancelled"] is True
    assert entry["outcome"]["ok"] is False


async def test_cancelling_the_run_itself_stops_the_action_and_still_audits(
    victim: Path, audit_path: Path, refresh: Refresh
) -> None:
    """The app quitting cancels the task driving the action (Textual cancels its workers).

    A thread cannot be killed: the runner must tell the action to stop, wait for what it
    did, and write the audit line before letting the cancellation through.
    """
    started = threading.Event()
    ui = ScriptedUI()
    task = asyncio.create_task(run(FileAction(victim, block=started), ui, audit_path, refresh))
    try:
        assert await asyncio.to_thread(started.wait, 30), "the action never started"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        assert ui.cancelled is not None and ui.cancelled.is_set(), "the action was not told to stop"
        assert victim.read_text() == "pid 4242\n"
        assert ui.calls == ["confirm", "started", "finished"]
        [entry] = audit_lines(audit_path)
        assert entry["outcome"] == {"ok": False, "message": "cancelled before deleting", "cancelled": True,
                                    "deleted": 0}
    finally:
        if ui.cancelled is not None:
            ui.cancelled.set()  # release the action's thread whatever happened


async def test_details_cannot_overwrite_the_audit_outcome_and_unserialisable_values_do_not_escape(tmp_path):
    """An action's details may not pose as ok/cancelled; a value with no JSON form is reported, not raised."""
    from backends.actions import Outcome, Plan
    from console.action_runner import ActionStatus, run_action
    from console.audit import AuditLog

    class Liar:
        name, panel = "test.liar", "locks"

        def __init__(self, details):
            self.details = details

        def plan(self):
            return Plan(action=self.name, target="x", title="lie")

        def execute(self, plan, progress, cancelled):
            return Outcome(ok=False, message="it failed", details=self.details)

    class Yes:
        async def confirm(self, plan):
            return True

        def progress_started(self, plan, progress, cancelled):
            pass

        def progress_finished(self):
            pass

    async def refresh(name):
        return None

    audit = AuditLog(tmp_path / "audit.log")
    result = await run_action(Liar({"ok": True, "cancelled": True}), ui=Yes(), audit=audit, read_only=False,
                              refresh=refresh)
    entry = json.loads(audit.path.read_text())
    assert result.status == ActionStatus.FAILED
    assert entry["outcome"]["ok"] is False and entry["outcome"]["cancelled"] is False

    result = await run_action(Liar({"when": object()}), ui=Yes(), audit=audit, read_only=False, refresh=refresh)
    assert result.status == ActionStatus.FAILED
    assert "audit line NOT written" in result.message
