"""The action protocol as one piece of machinery: refuse, plan, confirm, act, audit, refresh.

Both the TUI and the CLI subcommands drive actions through :func:`run_action`; they
differ only in their :class:`ActionUI` (modal screens, or a terminal prompt).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from backends.actions import Action, Outcome, Plan, Progress
from backends.collector import describe_error
from console.audit import AuditLog, AuditUnavailable


#: What can stop an audit line being written after the action ran (TypeError: a plan or
#: outcome value with no JSON form); it is reported with the outcome, never raised.
AUDIT_ERRORS = (OSError, AuditUnavailable, TypeError, ValueError)


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
    work = asyncio.get_running_loop().run_in_executor(
        None, functools.partial(contextvars.copy_context().run, action.execute, plan, progress, cancelled)
    )
    interrupted: asyncio.CancelledError | None = None
    try:
        while True:
            try:
                outcome = await asyncio.shield(work)
                break
            except asyncio.CancelledError as exc:
                if work.cancelled():
                    outcome = Outcome(ok=False, message=f"{action.name} interrupted: outcome unknown")
                    break
                # Our caller is going away (the app quitting cancels its workers). A thread
                # cannot be killed, so left alone the action would run on unseen and unaudited:
                # ask it to stop between steps, wait for what it did, audit that, then go.
                cancelled.set()
                interrupted = exc
    except Exception as exc:  # noqa: BLE001 - recorded in the audit line and shown
        outcome = Outcome(ok=False, message=f"{action.name} failed: {describe_error(exc)}")
    finally:
        ui.progress_finished()

    audit_outcome = {**outcome.details, "ok": outcome.ok, "message": outcome.message, "cancelled": cancelled.is_set()}

    def write_audit_line() -> None:
        audit.record(action=action.name, target=plan.target, plan=plan.audit, outcome=audit_outcome)

    if interrupted is not None:
        # Written here, not in a thread: the loop may be shutting down and cancel us again.
        with contextlib.suppress(*AUDIT_ERRORS):
            write_audit_line()
        raise interrupted
    message = outcome.message
    try:
        await asyncio.to_thread(write_audit_line)
    except AUDIT_ERRORS as exc:
        message = f"{message} (audit line NOT written: {describe_error(exc)})"
    await refresh(action.panel)
    if outcome.ok:
        status = ActionStatus.DONE
    else:
        status = ActionStatus.CANCELLED if cancelled.is_set() else ActionStatus.FAILED
    return ActionResult(status, message, plan, outcome)
