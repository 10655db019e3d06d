"""Stopping processes safely: the one signalling path for every action that ends a process.

Free-port (issue 5) and stopping a hung lock holder (issue 6) both use this module; it
knows nothing about ports or locks. A caller plans with :func:`identify` and
:func:`refusal`, shows the plan, and after confirmation calls :func:`stop_processes`
with the planned identities and a ``still_holds`` predicate (ports: "still owns the
LISTEN socket inode"; locks: "still holds the lock").

Why this shape (the incident's ``lsof -ti:5000 | xargs kill`` signalled whatever owned a
pid by the time the signal left): every signal goes through a pidfd. For each target,
in the caller's order (callers put a prefork master first):

1. open a pidfd for the pid (``os.pidfd_open``) - from here on the pidfd can only ever
   reach the process it was opened for, whatever happens to the pid number;
2. re-read the pid's start time and compare it with the planned one, then check the
   pidfd's process has not exited meanwhile (a number reused after the open would show
   a different start time; an exit after the check leaves the signal harmless: the
   pidfd still names that same, now dead, process, and never a new owner of the pid);
3. re-check :func:`refusal` on the fresh identity;
4. ask ``still_holds(identity)``; a process that let go is left alone;
5. SIGTERM through ``signal.pidfd_send_signal``.

Then it waits up to ``grace_s`` for the signalled processes to exit (polling their
pidfds, with a countdown in the progress note), and sends SIGKILL only when
``escalate`` is set, only to processes that are still running and still hold the
resource. A process that exited (a zombie counts as exited) gets no further signal.
When /proc cannot be read the target is refused: without its start time there is no
proof of identity (fail closed).
"""

from __future__ import annotations

import os
import select
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import psutil

from backends.actions import Progress

#: How often the grace wait looks at the cancel event and updates the countdown.
POLL_SLICE_S = 0.1
#: How long to wait for the exit that follows a SIGKILL.
KILL_WAIT_S = 2.0
#: /proc/PID/stat flag of kernel threads (include/linux/sched.h).
PF_KTHREAD = 0x00200000
#: The kernel's thread daemon; its children are kernel threads.
KTHREADD_PID = 2


class ProcessGone(Exception):
    """The pid names no process (it exited, or never existed)."""


class ProcessUnreadable(Exception):
    """/proc does not let us read the process, so its identity cannot be proven."""


@dataclass(frozen=True, slots=True)
class ProcessIdentity:
    """Who a process is, as read at one moment; ``create_time`` is psutil's (Unix seconds).

    ``pid`` + ``create_time`` identify a process for its whole life: a recycled pid has a
    later start time.
    """

    pid: int
    create_time: float
    name: str
    user: str
    uid: int
    cmdline: tuple[str, ...]
    ppid: int
    children: tuple[int, ...] = ()
    kernel_thread: bool = False

    def command(self) -> str:
        """The command line on one line (whitespace runs, newlines included, become one space),
        or ``[name]`` for a process without one."""
        return " ".join(" ".join(self.cmdline).split()) if self.cmdline else f"[{self.name}]"

    def describe(self) -> str:
        """``pid 123 (python3, user bot)`` for messages."""
        return f"pid {self.pid} ({self.name}, user {self.user})"


def _is_kernel_thread(pid: int) -> bool:
    """Read the PF_KTHREAD flag from /proc/PID/stat (psutil does not expose the flags)."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        fields = stat.read().rsplit(b")", 1)[1].split()
    # After the ")" come: state(0) ppid(1) pgrp(2) session(3) tty(4) tpgid(5) flags(6).
    return bool(int(fields[6]) & PF_KTHREAD)


def identify(pid: int) -> ProcessIdentity:
    """Read a process's identity now.

    Raises:
        ProcessGone: no such process (or it is a zombie: it has already exited).
        ProcessUnreadable: /proc refuses the read, or is not there.
    """
    try:
        process = psutil.Process(pid)
        with process.oneshot():
            if process.status() == psutil.STATUS_ZOMBIE:
                raise ProcessGone(f"pid {pid} has exited (zombie)")
            uid = process.uids().real
            try:
                user = process.username()
            except KeyError:  # a uid with no passwd entry
                user = str(uid)
            try:
                cmdline = tuple(process.cmdline())
            except psutil.AccessDenied:
                cmdline = ()
            identity = ProcessIdentity(
                pid=pid,
                create_time=process.create_time(),
                name=process.name(),
                user=user,
                uid=uid,
                cmdline=cmdline,
                ppid=process.ppid(),
                children=tuple(child.pid for child in process.children()),
                kernel_thread=_is_kernel_thread(pid),
            )
    except (psutil.NoSuchProcess, FileNotFoundError, ProcessLookupError):
        raise ProcessGone(f"pid {pid} does not exist (it has exited)") from None
    except (psutil.AccessDenied, PermissionError) as exc:
        raise ProcessUnreadable(f"cannot read /proc/{pid}: permission denied ({exc})") from None
    except OSError as exc:
        raise ProcessUnreadable(f"cannot read /proc/{pid}: {exc.strerror or exc}") from None
    return identity


def protected_pids() -> frozenset[int]:
    """This console and every ancestor (shell, tmux, the SSH session, init)."""
    pids = {os.getpid()}
    try:
        pids.update(parent.pid for parent in psutil.Process(os.getpid()).parents())
    except psutil.Error:
        pids.add(os.getppid())
    return frozenset(pids)


def refusal(identity: ProcessIdentity) -> str | None:
    """Why this process must not be signalled, or None when it may be.

    Refused: pid 1, kernel threads, this console and its ancestors (stopping your own
    shell or SSH session ends the session you are working in), and, when not root,
    another user's process.
    """
    pid = identity.pid
    if pid == 1:
        return "refused: pid 1 is init; stopping it would take the whole system down"
    if identity.kernel_thread or pid == KTHREADD_PID or identity.ppid == KTHREADD_PID:
        return f"refused: pid {pid} ({identity.name}) is a kernel thread"
    if pid == os.getpid():
        return f"refused: pid {pid} is this console itself"
    if pid in protected_pids():
        return f"refused: pid {pid} ({identity.name}) is an ancestor of this console (your own shell or session)"
    euid = os.geteuid()
    if euid != 0 and identity.uid != euid:
        return f"permission denied: pid {pid} belongs to {identity.user}"
    return None


class StopResult(StrEnum):
    """What happened to one target, in the words of the report."""

    EXITED = "exited"  # exited after SIGTERM
    KILLED = "killed"  # exited after SIGKILL
    ALREADY_GONE = "already_gone"  # exited before it was signalled
    IDENTITY_CHANGED = "identity_changed"  # pid reused / start time differs: not signalled
    LET_GO = "let_go"  # alive but no longer holds the resource: not signalled
    REFUSED = "refused"
    STILL_RUNNING = "still_running"  # SIGTERM sent, grace over, no escalation
    SURVIVED_KILL = "survived_kill"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def gone(self) -> bool:
        """True when the process no longer runs (so it holds nothing)."""
        return self in (StopResult.EXITED, StopResult.KILLED, StopResult.ALREADY_GONE)


@dataclass(frozen=True, slots=True)
class StopStep:
    """One target's fate: the result, the signals actually sent, a sentence for people."""

    pid: int
    name: str
    result: StopResult
    signals_sent: tuple[str, ...]
    message: str


@dataclass(frozen=True, slots=True)
class StopReport:
    steps: tuple[StopStep, ...]

    @property
    def all_gone(self) -> bool:
        """Every target has exited (or let go of the resource)."""
        return all(step.result.gone or step.result is StopResult.LET_GO for step in self.steps)

    def lines(self) -> tuple[str, ...]:
        return tuple(step.message for step in self.steps)

    def details(self) -> list[dict[str, object]]:
        """Per pid, for the audit line."""
        return [
            {"pid": s.pid, "name": s.name, "result": s.result.value, "signals": list(s.signals_sent)}
            for s in self.steps
        ]


class _Target:
    """A planned process during a stop: its pidfd once opened, and its outcome so far."""

    def __init__(self, planned: ProcessIdentity) -> None:
        self.planned = planned
        self.pidfd: int | None = None
        self.signals: list[str] = []
        self.result: StopResult | None = None
        self.message = ""

    def finish(self, result: StopResult, message: str) -> None:
        self.result, self.message = result, message

    def exited(self) -> bool:
        """The pidfd turns readable when the process exits (zombie included)."""
        assert self.pidfd is not None
        poller = select.poll()  # not select(): a pidfd may be above FD_SETSIZE
        poller.register(self.pidfd, select.POLLIN)
        return bool(poller.poll(0))

    def step(self) -> StopStep:
        assert self.result is not None
        return StopStep(self.planned.pid, self.planned.name, self.result, tuple(self.signals), self.message)


def _send(target: _Target, signum: signal.Signals) -> bool:
    """Signal through the pidfd; False when the process turned out to be gone."""
    assert target.pidfd is not None
    try:
        signal.pidfd_send_signal(target.pidfd, signum)
    except ProcessLookupError:
        return False
    target.signals.append(signum.name)
    return True


def _verify(target: _Target, still_holds: Callable[[ProcessIdentity], bool]) -> bool:
    """Open the pidfd, then prove it is the planned process and still relevant.

    Records the outcome and returns False when the target must not be signalled.
    """
    planned = target.planned
    pid, who = planned.pid, planned.describe()
    try:
        target.pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        target.finish(StopResult.ALREADY_GONE, f"{who}: exited before it was signalled; nothing sent")
        return False
    except OSError as exc:
        target.finish(StopResult.FAILED, f"{who}: cannot open a pidfd ({exc.strerror}); nothing sent")
        return False
    try:
        current = identify(pid)
    except ProcessGone:
        target.finish(StopResult.ALREADY_GONE, f"{who}: exited before it was signalled; nothing sent")
        return False
    except ProcessUnreadable as exc:
        target.finish(StopResult.REFUSED, f"{who}: {exc}; refusing to signal a process it cannot identify")
        return False
    if current.create_time != planned.create_time:
        target.finish(
            StopResult.IDENTITY_CHANGED,
            f"{who}: the pid now belongs to another process ({current.name}, started "
            f"{time.strftime('%H:%M:%S', time.localtime(current.create_time))}); the planned process "
            "is gone and the pid was reused - NO signal sent",
        )
        return False
    if target.exited():  # exited after the open: the pid may be reused any moment now
        target.finish(StopResult.ALREADY_GONE, f"{who}: exited before it was signalled; nothing sent")
        return False
    # Refusals first: they give the precise reason ("permission denied: pid N belongs to
    # USER"), where reading another user's fds would only say "cannot check".
    if (reason := refusal(current)) is not None:
        target.finish(StopResult.REFUSED, f"{who}: {reason}")
        return False
    try:
        holds = still_holds(current)
    except OSError as exc:
        target.finish(StopResult.REFUSED, f"{who}: cannot check what it holds ({exc}); refusing (fail closed)")
        return False
    if not holds:
        target.finish(StopResult.LET_GO, f"{who}: no longer holds it; left alone, nothing sent")
        return False
    return True


def _wait_exit(
    waiting: Sequence[_Target], seconds: float, label: str, progress: Progress, cancelled: threading.Event | None
) -> None:
    """Wait until every target's pidfd is readable, ``seconds`` pass, or ``cancelled`` is set."""
    deadline = time.monotonic() + seconds
    pending = list(waiting)
    while pending:
        pending = [t for t in pending if not t.exited()]
        left = deadline - time.monotonic()
        if not pending or left <= 0 or (cancelled is not None and cancelled.is_set()):
            return
        pids = ", ".join(str(t.planned.pid) for t in pending)
        progress.note(f"waiting for pid {pids} after {label}: {left:.0f} s left")
        poller = select.poll()
        for target in pending:
            assert target.pidfd is not None
            poller.register(target.pidfd, select.POLLIN)
        poller.poll(max(1, int(min(left, POLL_SLICE_S) * 1000)))


def stop_processes(
    targets: Sequence[ProcessIdentity],
    *,
    grace_s: float,
    escalate: bool,
    still_holds: Callable[[ProcessIdentity], bool],
    progress: Progress,
    cancelled: threading.Event,
) -> StopReport:
    """SIGTERM the planned processes (in the given order), wait, then SIGKILL if asked.

    Never raises for a process's fate: every outcome is a :class:`StopStep` of the
    report. Cancelling stops between targets and ends the grace wait early (no SIGKILL
    is sent after a cancel).
    """
    plan = [_Target(identity) for identity in targets]
    progress.start(len(plan), "processes")
    try:
        signalled: list[_Target] = []
        for target in plan:
            if cancelled.is_set():
                target.finish(StopResult.CANCELLED, f"{target.planned.describe()}: cancelled before signalling; nothing sent")
                continue
            if _verify(target, still_holds):
                progress.note(f"SIGTERM to {target.planned.describe()}")
                if _send(target, signal.SIGTERM):
                    signalled.append(target)
                else:
                    target.finish(StopResult.ALREADY_GONE, f"{target.planned.describe()}: exited before it was signalled; nothing sent")
            if target.result is not None:
                progress.advance()
        _wait_exit(signalled, grace_s, "SIGTERM", progress, cancelled)
        to_kill: list[_Target] = []
        for target in signalled:
            who = target.planned.describe()
            if target.exited():
                target.finish(StopResult.EXITED, f"{who}: exited after SIGTERM")
            elif cancelled.is_set():
                target.finish(StopResult.CANCELLED, f"{who}: SIGTERM sent, still running; cancelled, so no SIGKILL")
            elif not escalate:
                target.finish(
                    StopResult.STILL_RUNNING,
                    f"{who}: still running {grace_s:g} s after SIGTERM; not killed (escalation not chosen)",
                )
            elif not _holds_now(target, still_holds):
                target.finish(StopResult.LET_GO, f"{who}: still running after SIGTERM but let go; no SIGKILL needed")
            elif target.exited():  # exited while it was being checked: a zombie gets no SIGKILL
                target.finish(StopResult.EXITED, f"{who}: exited after SIGTERM")
            elif _send(target, signal.SIGKILL):
                to_kill.append(target)
            else:
                target.finish(StopResult.EXITED, f"{who}: exited after SIGTERM")
        _wait_exit(to_kill, KILL_WAIT_S, "SIGKILL", progress, None)
        for target in to_kill:
            who = target.planned.describe()
            if target.exited():
                target.finish(StopResult.KILLED, f"{who}: ignored SIGTERM for {grace_s:g} s; killed with SIGKILL")
            else:
                target.finish(StopResult.SURVIVED_KILL, f"{who}: still there {KILL_WAIT_S:g} s after SIGKILL (stuck in the kernel?)")
        for target in signalled:
            progress.advance()
    finally:
        for target in plan:
            if target.pidfd is not None:
                os.close(target.pidfd)
    return StopReport(tuple(target.step() for target in plan))


def _holds_now(target: _Target, still_holds: Callable[[ProcessIdentity], bool]) -> bool:
    """Before a SIGKILL: does the (pidfd-proven) process still hold the resource?

    An unreadable answer counts as "holds": escalation was chosen, and the pidfd already
    proves the process is the planned one. So does a process that is gone (a zombie is
    unreadable too); the caller's pidfd check that follows sends it no SIGKILL.
    """
    try:
        return still_holds(identify(target.planned.pid))
    except (ProcessGone, ProcessUnreadable, OSError):
        return True

