"""The action protocol from a terminal: --yes, no terminal, read-only, dry run, Ctrl+C."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

from console.cli_actions import EXIT_FAILED, EXIT_OK, EXIT_USAGE, plan_only, run_cli_action
from console.config import Config
from tests.conftest import FileAction


def config_for(tmp_path: Path, **changes) -> Config:
    return replace(Config(), audit_log=tmp_path / "audit.log", **changes)


def audit_lines(tmp_path: Path) -> list[dict]:
    path = tmp_path / "audit.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_yes_acts_and_audits(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("x")
    out, err = io.StringIO(), io.StringIO()
    code = run_cli_action(FileAction(victim), config_for(tmp_path), yes=True, out=out, err=err)
    assert code == EXIT_OK
    assert not victim.exists()
    assert out.getvalue().startswith("Delete victim\ninode ")
    assert "deleted victim" in out.getvalue()
    (line,) = audit_lines(tmp_path)
    assert line["action"] == "test.delete" and line["outcome"]["ok"] is True


def test_without_yes_and_without_a_terminal_nothing_happens(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))  # piped input is not a confirmation
    victim = tmp_path / "victim"
    victim.write_text("x")
    err = io.StringIO()
    code = run_cli_action(FileAction(victim), config_for(tmp_path), yes=False, out=io.StringIO(), err=err)
    assert code == EXIT_USAGE
    assert victim.exists()
    assert err.getvalue() == "opsconsole: test.delete: not confirmed: pass --yes to act without a terminal\n"
    assert audit_lines(tmp_path) == []


def test_read_only_refuses_even_with_yes(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("x")
    err = io.StringIO()
    code = run_cli_action(FileAction(victim), config_for(tmp_path, read_only=True), yes=True, out=io.StringIO(), err=err)
    assert code == EXIT_FAILED
    assert victim.exists()
    assert err.getvalue() == "opsconsole: read-only mode: test.delete refused\n"


def test_failed_action_exits_1_with_its_message(tmp_path: Path) -> None:
    err = io.StringIO()
    code = run_cli_action(FileAction(tmp_path / "missing"), config_for(tmp_path), yes=True, out=io.StringIO(), err=err)
    assert code == EXIT_FAILED
    assert err.getvalue().startswith("opsconsole: test.delete: could not plan: [Errno 2] No such file or directory")


def test_dry_run_prints_the_plan_and_touches_nothing(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("x")
    out = io.StringIO()
    assert plan_only(FileAction(victim), out=out) == EXIT_OK
    assert out.getvalue() == f"Delete victim\ninode {victim.stat().st_ino}\n"
    assert victim.exists()
    assert audit_lines(tmp_path) == []


def test_ctrl_c_mid_action_stops_it_and_still_audits(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("x")
    script = textwrap.dedent(
        f"""
        import sys, threading
        from pathlib import Path
        from dataclasses import replace
        from console.cli_actions import run_cli_action
        from console.config import Config
        from tests.conftest import FileAction
        started = threading.Event()
        class Announcing(threading.Event):
            def set(self):
                super().set(); print("STARTED", flush=True)
        action = FileAction(Path({str(victim)!r}), block=Announcing())
        config = replace(Config(), audit_log=Path({str(tmp_path / "audit.log")!r}))
        sys.exit(run_cli_action(action, config, yes=True))
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=Path(__file__).resolve().parent.parent)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == "STARTED":
            break
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "test.delete interrupted: stopped between steps, audit line written" in err
    assert victim.exists()
    (line,) = audit_lines(tmp_path)
    assert line["outcome"]["cancelled"] is True and line["outcome"]["ok"] is False
