"""Stopping the holder of a held lock, through the one safe-signalling path (process_stop).

Offered instead of breaking when a lock is ``held``: a hung job keeps its lock, and the
fix is to end the job, not to pull the lock from under it. The signal goes only to the
planned process (pidfd + start time), only while it still holds this lock as the
verdict reads it now.
"""

from __future__ import annotations

import threading
from pathlib import Path

from backends.actions import Outcome, Plan, Progress
from backends.locks.collect import judge_path
from backends.locks.model import LockVerdict
from backends.process_stop import (
    ProcessGone,
    ProcessIdentity,
    ProcessUnreadable,
    identify,
    refusal,
    stop_processes,
)

#: Seconds between SIGTERM and SIGKILL.
GRACE_S = 5.0


class StopLockHolder:
    name = "locks.stop_holder"
    panel = "locks"

    def __init__(self, path: str | Path, *, stale_after: float, grace_s: float = GRACE_S) -> None:
        self.path = str(path)
        self.stale_after = stale_after
        self.grace_s = grace_s

    def holds(self, identity: ProcessIdentity) -> bool:
        """Whether the process still holds this lock, judged afresh (kernel lock, pid file or git)."""
        entry = judge_path(self.path, stale_after=self.stale_after)
        if entry is None or entry.verdict is not LockVerdict.HELD:
            return False
        return any(h.pid == identity.pid for h in (entry.holder, *entry.also_held_by) if h is not None)

    def plan(self) -> Plan:
        entry = judge_path(self.path, stale_after=self.stale_after)
        if entry is None or entry.verdict is not LockVerdict.HELD or entry.holder is None or entry.holder.pid is None:
            state = "gone" if entry is None else f"{entry.verdict} ({entry.reason})"
            return Plan(self.name, self.path, f"{self.path} has no running holder to stop: {state}", nothing_to_do=True)
        try:
            identity = identify(entry.holder.pid)
        except (ProcessGone, ProcessUnreadable) as exc:
            return Plan(self.name, self.path, f"cannot stop the holder: {exc}", nothing_to_do=True)
        audit = {"path": self.path, "pid": identity.pid, "name": identity.name, "user": identity.user,
                 "create_time": identity.create_time, "cmdline": list(identity.cmdline)}
        if (refused := refusal(identity)) is not None:
            return Plan(self.name, self.path, f"cannot stop the holder: {refused}", nothing_to_do=True, audit=audit)
        return Plan(
            self.name,
            self.path,
            f"Stop the holder of {self.path}: {identity.describe()}",
            lines=(
                f"command: {identity.command()}",
                f"SIGTERM, then up to {self.grace_s:g} s grace, then SIGKILL if it still holds the lock",
                "nothing is sent if the pid now names another process or it has let go of the lock",
            ),
            audit=audit,
            payload=identity,
        )

    def execute(self, plan: Plan, progress: Progress, cancelled: threading.Event) -> Outcome:
        report = stop_processes(
            [plan.payload], grace_s=self.grace_s, escalate=True, still_holds=self.holds,
            progress=progress, cancelled=cancelled,
        )
        return Outcome(report.all_gone, "; ".join(report.lines()), {"processes": report.details()})
