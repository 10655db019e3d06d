"""Free-port and the bind test on real servers: plan, TERM/KILL, races, refusals, the CLI."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from backends.actions import Progress
from backends.ports.bind import bind_test
from backends.ports.free import FreePortAction, FreePortRefused
from tests.nobody import as_nobody
from tests.ports_helpers import (
    connect_and_wait_for_close,
    listener,
    make_time_wait,
    server,
)
from tests.test_process_stop import RecordingProgress, reuse_pid

ROOT = Path(__file__).resolve().parent.parent


def run(action: FreePortAction):  # type: ignore[no-untyped-def]
    plan = action.plan()
    return plan, action.execute(plan, Progress(), threading.Event())


# -- the bind test ---------------------------------------------------------------------


def test_bind_test_on_a_port_held_only_by_time_wait() -> None:
    """The incident: SO_REUSEADDR gets through TIME_WAIT, a plain bind does not."""
    server_sock = listener("127.0.0.1", reuseaddr=True)
    port = server_sock.getsockname()[1]
    make_time_wait(server_sock, 2)
    server_sock.close()
    result = bind_test(port)
    assert (result.plain.ok, result.plain.error) == (False, "Address already in use")
    assert (result.reuseaddr.ok, result.reuseaddr.error) == (True, None)
    assert result.text() == (f"bind tcp/0.0.0.0:{port} without SO_REUSEADDR: fails (Address already in use); "
                             "with SO_REUSEADDR: binds")


def test_bind_test_on_a_listening_port_fails_both_ways_and_a_free_port_binds() -> None:
    with server("term") as child:
        held = bind_test(child.port)
        assert not held.plain.ok and not held.reuseaddr.ok
    free = bind_test(child.port)
    assert free.plain.ok and free.reuseaddr.ok


def test_bind_test_leaves_nothing_bound() -> None:
    with server("term") as child:
        port = child.port
    bind_test(port)
    assert bind_test(port).plain.ok  # the first test closed its sockets at once


# -- free-port -------------------------------------------------------------------------


def test_plan_lists_the_owner_and_the_signal_plan_not_clients() -> None:
    with server("term") as child:
        client = socket.create_connection(("127.0.0.1", child.port))
        try:
            plan = FreePortAction(child.port, grace_s=3).plan()
        finally:
            client.close()
        assert [t.pid for t in plan.payload.targets] == [child.pid]  # not this (client) process
        text = plan.text()
        assert f"pid {child.pid}  root  up " in text if os.geteuid() == 0 else f"pid {child.pid}" in text
        assert "SIGTERM, wait up to 3 s (countdown), then stop; no SIGKILL (escalation not chosen)" in text
        assert plan.audit["targets"][0]["pid"] == child.pid
        assert child.proc.poll() is None  # planning signals nothing


def test_frees_a_server_that_exits_on_sigterm() -> None:
    with server("term") as child:
        _, outcome = run(FreePortAction(child.port, grace_s=5))
        assert child.proc.wait(timeout=5) == -signal.SIGTERM
    assert outcome.ok
    assert outcome.message.splitlines()[0] == f"port {child.port} is free"
    assert "without SO_REUSEADDR: binds" in outcome.message
    (step,) = outcome.details["processes"]
    assert (step["pid"], step["result"], step["signals"]) == (child.pid, "exited", ["SIGTERM"])
    assert outcome.details["binds_without_reuseaddr"] is True


def test_time_wait_left_after_the_free_is_reported_with_both_bind_outcomes() -> None:
    with server("closer") as child:
        connect_and_wait_for_close(child.port, 3)
        _, outcome = run(FreePortAction(child.port, grace_s=5))
    assert outcome.ok
    summary, bind, stopped = outcome.message.splitlines()
    assert summary.startswith(f"port {child.port}: listener gone; 3 TIME_WAIT for about ")
    assert bind == (f"bind tcp/0.0.0.0:{child.port} without SO_REUSEADDR: fails (Address already in use); "
                    "with SO_REUSEADDR: binds")
    assert stopped.startswith(f"pid {child.pid} (") and stopped.endswith("): exited after SIGTERM")
    assert outcome.details["time_wait"] == 3
    assert 0 < outcome.details["time_wait_expires_in_s"] <= 60
    assert (outcome.details["binds_without_reuseaddr"], outcome.details["binds_with_reuseaddr"]) == (False, True)


def test_ignored_sigterm_without_kill_is_left_running() -> None:
    with server("ignore") as child:
        action = FreePortAction(child.port, grace_s=0.5, escalate=False)
        plan = action.plan()
        progress = RecordingProgress()
        outcome = action.execute(plan, progress, threading.Event())
        assert child.proc.poll() is None
    assert not outcome.ok
    assert outcome.message.splitlines()[0] == f"port {child.port} still has a listener (1 socket)"
    assert "not killed (escalation not chosen)" in outcome.message
    assert outcome.details["processes"][0]["signals"] == ["SIGTERM"]
    assert any("after SIGTERM" in note for note in progress.notes)  # the countdown
    # Its holder still runs, so the listener cannot go: no wait for it before the report.
    assert not any("listener to close" in note for note in progress.notes)


def test_ignored_sigterm_with_kill_is_killed() -> None:
    with server("ignore") as child:
        _, outcome = run(FreePortAction(child.port, grace_s=0.5, escalate=True))
        assert child.proc.wait(timeout=5) == -signal.SIGKILL
    assert outcome.ok
    assert "killed with SIGKILL" in outcome.message
    assert outcome.details["processes"][0]["signals"] == ["SIGTERM", "SIGKILL"]


def test_prefork_master_first_and_all_holders_go() -> None:
    with server("prefork") as child:
        plan, outcome = run(FreePortAction(child.port, grace_s=5))
        assert [t.pid for t in plan.payload.targets] == [child.pid, child.worker]
        assert child.proc.wait(timeout=5) == 0
    assert outcome.ok
    results = {p["pid"]: p["result"] for p in outcome.details["processes"]}
    assert results[child.pid] == "exited"
    assert results[child.worker] in ("exited", "already_gone")  # the master may take it down first


def test_pid_reused_between_plan_and_act_is_not_signalled() -> None:
    with server("term") as child:
        action = FreePortAction(child.port, grace_s=1, listener_wait_s=0.2)
        plan = action.plan()
        child.proc.kill()
        child.proc.wait()
        stranger = reuse_pid(child.pid, "import sys; print('ready', flush=True); import time; time.sleep(60)")
        if stranger is None:
            pytest.skip("cannot steer pid allocation here (needs root and a writable ns_last_pid)")
        try:
            outcome = action.execute(plan, Progress(), threading.Event())
            assert stranger.poll() is None  # the new owner of the pid got no signal
        finally:
            stranger.kill()
            stranger.wait()
    assert "the pid now belongs to another process" in outcome.message
    assert "NO signal sent" in outcome.message
    assert outcome.details["processes"][0] == {"pid": child.pid, "name": plan.payload.targets[0].name,
                                               "result": "identity_changed", "signals": []}


def test_owner_that_closed_the_socket_after_the_plan_is_left_alone() -> None:
    with server("term") as child:
        action = FreePortAction(child.port, grace_s=1, listener_wait_s=0.2)
        plan = action.plan()
        # As if the owner had closed the planned socket (and opened another) after the plan.
        plan = dataclasses.replace(plan, payload=dataclasses.replace(plan.payload, inodes=frozenset({1})))
        outcome = action.execute(plan, Progress(), threading.Event())
        assert child.proc.poll() is None
    assert "no longer holds it; left alone, nothing sent" in outcome.message


def test_nothing_to_do_on_a_port_without_listener() -> None:
    server_sock = listener()
    port = server_sock.getsockname()[1]
    make_time_wait(server_sock, 2)
    server_sock.close()
    plan = FreePortAction(port).plan()
    assert plan.nothing_to_do
    assert plan.title.startswith(f"port {port}/tcp has no listener: nothing to stop (2 TIME_WAIT for about ")


def test_refuses_when_the_console_itself_holds_the_port() -> None:
    own = listener()
    try:
        with pytest.raises(FreePortRefused, match=f"refused: pid {os.getpid()} is this console itself"):
            FreePortAction(own.getsockname()[1]).plan()
    finally:
        own.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another uid needs root")
def test_plan_on_another_users_port_without_root_is_permission_denied() -> None:
    with server("term") as child:  # root's server, planned by nobody

        def plan_as_nobody() -> dict[str, object]:
            try:
                FreePortAction(child.port).plan()
            except FreePortRefused as exc:
                return {"refused": str(exc)}
            return {"refused": None}

        seen = as_nobody(plan_as_nobody)
        assert child.proc.poll() is None
    assert seen == {"refused": f"permission denied: port {child.port} is held by a process of root "
                               "(owner hidden (needs root))"}


@pytest.mark.parametrize("port", [0, 65536, -1])
def test_out_of_range_ports_are_rejected(port: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        FreePortAction(port)


# -- the command line ------------------------------------------------------------------


def cli(*args: str, tmp_path: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "opsconsole.toml"
    config.write_text(f'audit_log = "{tmp_path / "audit.log"}"\n')
    return subprocess.run([sys.executable, "-m", "console", "--config", str(config), *args],
                          capture_output=True, text=True, cwd=ROOT, input=stdin, timeout=60, check=False)


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("abc", "port must be a number from 1 to 65535, got 'abc'"),
        ("5000x", "port must be a number from 1 to 65535, got '5000x'"),
        ("0", "port 0 is out of range (1-65535)"),
        ("65536", "port 65536 is out of range (1-65535)"),
        ("-3", "port -3 is out of range (1-65535)"),
    ],
)
def test_cli_bad_ports_are_one_line_usage_errors(arg: str, message: str, tmp_path: Path) -> None:
    result = cli("free-port", "--", arg, tmp_path=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert message in result.stderr


def test_cli_bad_grace_is_a_usage_error(tmp_path: Path) -> None:
    result = cli("free-port", "5000", "--grace", "soon", tmp_path=tmp_path)
    assert result.returncode == 2
    assert "grace must be a number of seconds, got 'soon'" in result.stderr


def test_cli_without_yes_and_without_terminal_does_nothing(tmp_path: Path) -> None:
    with server("term") as child:
        result = cli("free-port", str(child.port), tmp_path=tmp_path, stdin="")
        assert result.returncode == 2
        assert "pass --yes" in result.stderr
        assert child.proc.poll() is None


def test_cli_frees_the_port_and_writes_one_audit_line(tmp_path: Path) -> None:
    with server("term") as child:
        result = cli("free-port", str(child.port), "--yes", "--grace", "3", tmp_path=tmp_path)
        assert child.proc.wait(timeout=5) == -signal.SIGTERM
    assert result.returncode == 0, result.stderr
    assert f"Free port {child.port}/tcp: stop 1 process" in result.stdout
    assert f"port {child.port} is free" in result.stdout
    (line,) = (tmp_path / "audit.log").read_text().splitlines()
    audit = json.loads(line)
    assert audit["action"] == "ports.free_port" and audit["target"] == str(child.port)
    assert audit["plan"]["targets"][0]["pid"] == child.pid
    assert audit["outcome"]["ok"] is True


def test_cli_ignored_term_without_kill_fails_and_says_so(tmp_path: Path) -> None:
    with server("ignore") as child:
        result = cli("free-port", str(child.port), "--yes", "--grace", "0.3", tmp_path=tmp_path)
        assert child.proc.poll() is None
    assert result.returncode == 1
    assert "not killed (escalation not chosen)" in result.stderr


def test_cli_dry_run_prints_the_plan_only(tmp_path: Path) -> None:
    with server("term") as child:
        result = cli("free-port", str(child.port), "--dry-run", "--kill", tmp_path=tmp_path)
        assert child.proc.poll() is None
    assert result.returncode == 0
    assert "then SIGKILL whatever still holds the port" in result.stdout
    assert not (tmp_path / "audit.log").exists()
