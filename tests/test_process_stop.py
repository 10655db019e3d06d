"""backends.process_stop on real child processes: TERM, grace, KILL, races, refusals, fail closed."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from backends.actions import Progress
from backends.ports.owners import holds_socket
from backends.process_stop import (
    ProcessGone,
    ProcessIdentity,
    StopResult,
    identify,
    refusal,
    stop_processes,
)
from tests.nobody import NOBODY, as_nobody

READY = "import sys; print('ready', flush=True); "
SLEEPER = READY + "import time; time.sleep(60)"
IGNORE_TERM = "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
IGNORES_TERM = IGNORE_TERM + SLEEPER


class RecordingProgress(Progress):
    """Keeps every note, so a test can see the countdown."""

    def __init__(self) -> None:
        super().__init__()
        self.notes: list[str] = []

    def note(self, text: str) -> None:
        self.notes.append(text)
        super().note(text)


def child(code: str, **popen: object) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, **popen)  # type: ignore[call-overload]
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


@pytest.fixture
def children():
    started: list[subprocess.Popen[str]] = []

    def start(code: str, **popen: object) -> subprocess.Popen[str]:
        proc = child(code, **popen)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def stop(targets: list[ProcessIdentity], *, grace_s: float = 2.0, escalate: bool = False,
         still_holds=lambda identity: True, cancelled: threading.Event | None = None,  # type: ignore[no-untyped-def]
         progress: Progress | None = None):
    return stop_processes(targets, grace_s=grace_s, escalate=escalate, still_holds=still_holds,
                          progress=progress or Progress(), cancelled=cancelled or threading.Event())


def test_identify_reads_the_process(children) -> None:
    proc = children(SLEEPER)
    identity = identify(proc.pid)
    assert identity.pid == proc.pid
    assert identity.ppid == os.getpid()
    assert identity.user == "root" if os.geteuid() == 0 else identity.uid == os.getuid()
    assert identity.cmdline[-1] == SLEEPER
    assert not identity.kernel_thread


def test_identify_a_missing_pid_is_gone(children) -> None:
    proc = children(SLEEPER)
    proc.kill()
    proc.wait()
    with pytest.raises(ProcessGone, match=f"pid {proc.pid}"):
        identify(proc.pid)


def test_exits_on_sigterm(children) -> None:
    proc = children(SLEEPER)
    report = stop([identify(proc.pid)])
    assert [step.result for step in report.steps] == [StopResult.EXITED]
    assert report.steps[0].signals_sent == ("SIGTERM",)
    assert "exited after SIGTERM" in report.steps[0].message
    assert proc.wait() == -signal.SIGTERM
    assert report.all_gone


def test_ignores_sigterm_without_escalation_is_left_running(children) -> None:
    proc = children(IGNORES_TERM)
    progress = RecordingProgress()
    report = stop([identify(proc.pid)], grace_s=0.5, progress=progress)
    assert report.steps[0].result is StopResult.STILL_RUNNING
    assert report.steps[0].signals_sent == ("SIGTERM",)
    assert "not killed (escalation not chosen)" in report.steps[0].message
    assert proc.poll() is None
    assert any("s left" in note for note in progress.notes)  # the countdown
    assert not report.all_gone


def test_ignores_sigterm_with_escalation_is_killed(children) -> None:
    proc = children(IGNORES_TERM)
    report = stop([identify(proc.pid)], grace_s=0.3, escalate=True)
    assert report.steps[0].result is StopResult.KILLED
    assert report.steps[0].signals_sent == ("SIGTERM", "SIGKILL")
    assert proc.wait() == -signal.SIGKILL


def test_a_process_that_let_go_during_the_grace_gets_no_kill(children) -> None:
    proc = children(IGNORES_TERM)
    holds = iter([True, False])  # holds at the check before TERM, not before KILL
    report = stop([identify(proc.pid)], grace_s=0.2, escalate=True, still_holds=lambda identity: next(holds))
    assert report.steps[0].result is StopResult.LET_GO
    assert report.steps[0].signals_sent == ("SIGTERM",)
    assert proc.poll() is None


def test_a_process_that_exits_right_before_the_kill_gets_no_kill(children) -> None:
    """The race between TERM and KILL, made to happen: the holder exits (a zombie, not yet
    reaped) while the pre-KILL check runs, after it was found still holding."""
    # SIGTERM is ignored before "ready" is printed, or a quick TERM could end it first
    proc = children(IGNORE_TERM + READY + "sys.stdin.read()",
                    stdin=subprocess.PIPE)
    checks: list[int] = []

    def holds(identity: ProcessIdentity) -> bool:
        checks.append(identity.pid)
        if len(checks) == 2:  # the check before SIGKILL: the process exits right now
            proc.stdin.close()  # type: ignore[union-attr]
            os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped: a zombie
        return True

    report = stop([identify(proc.pid)], grace_s=0.2, escalate=True, still_holds=holds)
    assert len(checks) == 2
    assert report.steps[0].result is StopResult.EXITED
    assert report.steps[0].signals_sent == ("SIGTERM",)  # no SIGKILL to the zombie
    assert proc.wait() == 0


def test_a_process_that_no_longer_holds_is_not_signalled(children) -> None:
    proc = children(SLEEPER)
    report = stop([identify(proc.pid)], still_holds=lambda identity: False)
    assert report.steps[0].result is StopResult.LET_GO
    assert report.steps[0].signals_sent == ()
    assert proc.poll() is None


def test_zombie_counts_as_gone_and_gets_no_signal(children) -> None:
    proc = children(READY + "sys.stdin.read()", stdin=subprocess.PIPE)  # exits when stdin closes
    identity = identify(proc.pid)
    proc.stdin.close()  # type: ignore[union-attr]
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped: a zombie
    report = stop([identity])
    assert report.steps[0].result is StopResult.ALREADY_GONE
    assert report.steps[0].signals_sent == ()


def test_changed_start_time_means_another_process_and_no_signal(children) -> None:
    proc = children(SLEEPER)
    planned = dataclasses.replace(identify(proc.pid), create_time=identify(proc.pid).create_time - 100)
    report = stop([planned])
    step = report.steps[0]
    assert step.result is StopResult.IDENTITY_CHANGED
    assert step.signals_sent == ()
    assert "pid was reused - NO signal sent" in step.message
    assert proc.poll() is None


def reuse_pid(pid: int, code: str) -> subprocess.Popen[str] | None:
    """Start a process that gets exactly ``pid`` (via ns_last_pid); None when the kernel won't."""
    for _ in range(20):
        try:
            Path("/proc/sys/kernel/ns_last_pid").write_text(str(pid - 1))
        except OSError:
            return None
        proc = child(code)
        if proc.pid == pid:
            return proc
        proc.kill()
        proc.wait()
    return None


def test_recycled_pid_is_never_signalled(children) -> None:
    old = children(SLEEPER)
    planned = identify(old.pid)
    old.kill()
    old.wait()
    new = reuse_pid(planned.pid, SLEEPER)
    if new is None:
        pytest.skip("cannot steer pid allocation here (needs root and a writable ns_last_pid)")
    try:
        report = stop([planned])
        assert report.steps[0].result is StopResult.IDENTITY_CHANGED
        assert report.steps[0].signals_sent == ()
        assert "reused" in report.steps[0].message
        assert new.poll() is None
    finally:
        new.kill()
        new.wait()


def test_cancel_during_the_grace_sends_no_kill(children) -> None:
    proc = children(IGNORES_TERM)
    cancelled = threading.Event()
    timer = threading.Timer(0.3, cancelled.set)
    timer.start()
    report = stop([identify(proc.pid)], grace_s=30, escalate=True, cancelled=cancelled)
    timer.join()
    assert report.steps[0].result is StopResult.CANCELLED
    assert report.steps[0].signals_sent == ("SIGTERM",)
    assert proc.poll() is None


def test_targets_are_signalled_in_the_given_order(children) -> None:
    first, second = children(SLEEPER), children(SLEEPER)
    report = stop([identify(second.pid), identify(first.pid)])
    assert [step.pid for step in report.steps] == [second.pid, first.pid]
    assert all(step.result is StopResult.EXITED for step in report.steps)


def test_unreadable_holdings_refuse_fail_closed(children) -> None:
    proc = children(SLEEPER)

    def unreadable(identity: ProcessIdentity) -> bool:
        raise PermissionError(13, "Permission denied", f"/proc/{identity.pid}/fd")

    report = stop([identify(proc.pid)], still_holds=unreadable)
    assert report.steps[0].result is StopResult.REFUSED
    assert "fail closed" in report.steps[0].message
    assert proc.poll() is None


def test_refuses_init_self_and_ancestors() -> None:
    assert refusal(identify(1)) == "refused: pid 1 is init; stopping it would take the whole system down"
    assert refusal(identify(os.getpid())) == f"refused: pid {os.getpid()} is this console itself"
    parent = refusal(identify(os.getppid()))
    assert parent is not None and "ancestor of this console" in parent


def test_refuses_kernel_threads() -> None:
    kthreadd = identify(2)
    assert kthreadd.kernel_thread
    assert refusal(kthreadd) == "refused: pid 2 (kthreadd) is a kernel thread"


def test_refusal_passes_an_ordinary_child(children) -> None:
    assert refusal(identify(children(SLEEPER).pid)) is None


def stop_as_nobody(pid: int) -> dict[str, object]:
    def work() -> dict[str, object]:
        identity = identify(pid)
        report = stop([identity], grace_s=1, still_holds=lambda i: holds_socket(i.pid, {1}))
        step = report.steps[0]
        return {"refusal": refusal(identity), "result": step.result.value, "message": step.message,
                "signals": list(step.signals_sent)}

    return as_nobody(work)


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another uid needs root")
def test_non_root_on_another_users_process_is_permission_denied(children) -> None:
    proc = children(SLEEPER)  # root's
    seen = stop_as_nobody(proc.pid)
    assert seen["refusal"] == f"permission denied: pid {proc.pid} belongs to root"
    assert seen["result"] == "refused"
    assert str(seen["message"]).endswith(f": permission denied: pid {proc.pid} belongs to root")
    assert seen["signals"] == []
    assert proc.poll() is None


#: Becomes nobody's process, non-dumpable (PR_SET_DUMPABLE 0), so its /proc/PID/fd is root's.
NON_DUMPABLE = (
    f"import ctypes, os; os.setgid({NOBODY}); os.setuid({NOBODY}); ctypes.CDLL(None).prctl(4, 0, 0, 0, 0); "
    + SLEEPER
)


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another uid needs root")
def test_non_root_that_cannot_read_proc_refuses_fail_closed(children) -> None:
    proc = children(NON_DUMPABLE)  # nobody's own process, fds unreadable
    seen = stop_as_nobody(proc.pid)
    assert seen["result"] == "refused"
    assert "fail closed" in str(seen["message"])
    assert seen["signals"] == []
    assert proc.poll() is None
