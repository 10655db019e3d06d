"""The action protocol as one piece of machinery: refuse, plan, confirm, act, audit, refresh.

Both the TUI and the CLI subcommands drive actions through :func:`run_action`; they
differ only in their :class:`ActionUI` (modal screens, or a terminal prompt).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from backends.actions import Action, Outcome, Plan, Progress
from backends.collector import describe_error
from console.audit import AuditLog, AuditUnavailable


class ActionStatus(StrEnum):
    REFUSED = "refused"
    NOTHING_TO_DO = "nothing_to_do"
    CANCELLED = "cancelled"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ActionResult:
    status: ActionStatus
    message: str
    plan: Plan | None = None
    outcome: Outcome | None = None


class ActionUI(Protocol):
    """How the operator sees a plan and an action's progress."""

    async def confirm(self, plan: Plan) -> bool: ...

    def progress_started(self, plan: Plan, progress: Progress, cancelled: threading.Event) -> None: ...

    def progress_finished(self) -> None: ...


async def run_action(
    action: Action,
    *,
    ui: ActionUI,
    audit: AuditLog,
    read_only: bool,
    refresh: Callable[[str], Awaitable[object]],
) -> ActionResult:
    """Drive one action through the protocol in DESIGN.md; never raises for an action's failure."""
    if read_only:
        return ActionResult(ActionStatus.REFUSED, f"read-only mode: {action.name} refused")
    try:
        await asyncio.to_thread(audit.check_writable)
    except AuditUnavailable as exc:
        return ActionResult(ActionStatus.REFUSED, f"{exc}: {action.name} refused")
    try:
        plan = await asyncio.to_thread(action.plan)
    except Exception as exc:  # noqa: BLE001 - a planning failure is reported, not raised
        return ActionResult(ActionStatus.FAILED, f"{action.name}: could not plan: {describe_error(exc)}")
    if plan.nothing_to_do:
        return ActionResult(ActionStatus.NOTHING_TO_DO, plan.title, plan)
    if not await ui.confirm(plan):
        return ActionResult(ActionStatus.CANCELLED, f"{action.name} cancelled: nothing was done", plan)

    progress, cancelled = Progress(), threading.Event()
    ui.progress_started(plan, progress, cancelled)
    try:
        outcome = await asyncio.to_thread(action.execute, plan, progress, cancelled)
    except Exception as exc:  # noqa: BLE001 - recorded in the audit line and shown
        outcome = Outcome(ok=False, message=f"{action.name} failed: {describe_error(exc)}")
    finally:
        ui.progress_finished()

    audit_outcome = {"ok": outcome.ok, "message": outcome.message, "cancelled": cancelled.is_set(), **outcome.details}
    message = outcome.message
    try:
        await asyncio.to_thread(
            audit.record, action=action.name, target=plan.target, plan=plan.audit, outcome=audit_outcome
        )
    except (OSError, AuditUnavailable) as exc:
        message = f"{message} (audit line NOT written: {describe_error(exc)})"
    await refresh(action.panel)
    return ActionResult(ActionStatus.DONE if outcome.ok else ActionStatus.FAILED, message, plan, outcome)
