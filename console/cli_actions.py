"""The action protocol from a terminal: `cleanup`, `free-port`, `break-lock` and the like.

The CLI drives actions through the same :func:`console.action_runner.run_action` as the
TUI; only the operator's side differs. A plan is printed and confirmed with ``y`` at a
terminal, or by ``--yes`` for cron and scripts (never by silence: without a terminal and
without ``--yes`` nothing happens). Ctrl+C stops the action between steps and the audit
line still says what was done.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import TextIO

from backends.actions import Action, Plan, Progress, ProgressState
from backends.collector import describe_error
from console.action_runner import ActionStatus, run_action
from console.audit import AuditLog
from console.config import Config
from console.paths import default_audit_log

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

#: How often the progress line is redrawn at a terminal, and written at most elsewhere.
PROGRESS_EVERY_S = 0.25
PROGRESS_LOG_EVERY_S = 2.0

EXIT_CODES = {
    ActionStatus.DONE: EXIT_OK,
    ActionStatus.NOTHING_TO_DO: EXIT_OK,
    ActionStatus.REFUSED: EXIT_FAILED,
    ActionStatus.CANCELLED: EXIT_FAILED,
    ActionStatus.FAILED: EXIT_FAILED,
}


class NotConfirmed(Exception):
    """No terminal to ask and no ``--yes``: a user error, nothing was done."""


def progress_line(state: ProgressState) -> str:
    """``12/40 files · deleting 2026-11-01/a.pcap`` — what the progress output shows."""
    total = "" if state.total is None else f"/{state.total}"
    unit = f" {state.unit}" if state.unit else ""
    note = f" · {state.note}" if state.note else ""
    return f"{state.done}{total}{unit}{note}"


class TerminalActionUI:
    """Prints the plan, asks for ``y`` (or takes ``--yes``), and shows progress on stderr."""

    def __init__(self, *, yes: bool, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> None:
        self.yes = yes
        self.out = out
        self.err = err
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    async def confirm(self, plan: Plan) -> bool:
        print(plan.text(), file=self.out, flush=True)
        if self.yes:
            return True
        if not sys.stdin.isatty():
            raise NotConfirmed(f"{plan.action}: not confirmed: pass --yes to act without a terminal")
        answer = await asyncio.to_thread(input, "Proceed? [y/N] ")
        return answer.strip().lower() in ("y", "yes")

    def progress_started(self, plan: Plan, progress: Progress, cancelled: threading.Event) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._show, args=(progress,), name="cli-progress", daemon=True)
        self._thread.start()

    def progress_finished(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _show(self, progress: Progress) -> None:
        """Redraw one line at a terminal; elsewhere (cron, logs) write a line when it changes."""
        at_terminal = self.err.isatty()
        last = ""
        while True:
            stopping = self._stop.wait(PROGRESS_EVERY_S if at_terminal else PROGRESS_LOG_EVERY_S)
            line = progress_line(progress.read())
            if at_terminal:
                self.err.write(f"\r\x1b[2K{line}" + ("\n" if stopping else ""))
                self.err.flush()
            elif line != last:
                print(line, file=self.err, flush=True)
            last = line
            if stopping:
                return


async def _drive(action: Action, config: Config, ui: TerminalActionUI) -> int:
    async def no_collectors(name: str) -> None:
        """The CLI has no live collectors to refresh; the next collection sees the change."""

    result = await run_action(
        action,
        ui=ui,
        audit=AuditLog(config.audit_log or default_audit_log()),
        read_only=config.read_only,
        refresh=no_collectors,
    )
    stream = ui.out if EXIT_CODES[result.status] == EXIT_OK else ui.err
    prefix = "" if stream is ui.out else "opsconsole: "
    print(f"{prefix}{result.message}", file=stream, flush=True)
    return EXIT_CODES[result.status]


def run_cli_action(
    action: Action, config: Config, *, yes: bool, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Run ``action`` through the action protocol from a terminal; returns the exit status.

    0 done (or nothing to do); 1 refused (read-only, audit log unwritable), failed or
    cancelled; 2 not confirmed because there is no terminal and no ``--yes``; 130 when
    Ctrl+C stopped it (the audit line is still written).
    """
    ui = TerminalActionUI(yes=yes, out=out, err=err)
    try:
        return asyncio.run(_drive(action, config, ui))
    except NotConfirmed as exc:
        print(f"opsconsole: {exc}", file=err)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"opsconsole: {action.name} interrupted: stopped between steps, audit line written", file=err)
        return EXIT_INTERRUPTED


def plan_only(action: Action, *, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """``--dry-run``: compute and print exactly the plan that ``--yes`` would execute."""
    try:
        plan = action.plan()
    except Exception as exc:  # noqa: BLE001 - a planning failure is a one-line error
        print(f"opsconsole: {action.name}: could not plan: {describe_error(exc)}", file=err)
        return EXIT_FAILED
    print(plan.text(), file=out)
    return EXIT_OK
