"""The Locks panel through Pilot, on the real collector, real files and real processes."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

from backends.catalog import PANEL_NAMES, PANELS
from backends.collector import Collector, CollectorGroup
from backends.locks.collect import make_locks_collect
from console.app import make_app
from console.audit import AuditLog
from console.config import Config, LocksConfig
from console.screens.confirm import ConfirmScreen
from panels.locks.detail import LockDetailScreen
from panels.locks.panel import LocksPanel
from panels.placeholder import PlaceholderPanel
from tests.conftest import HOST, CountingCollect
from tests.locks_helpers import (
    dead_pid,
    opsconsole,
    running,
    set_mtime,
    sleeper,
    write_config,
)
from tests.test_git_hazards import GIT_ENV

STALE_AFTER = 600.0


def locks_app(tmp_path: Path, *, read_only: bool = False, repos: tuple[Path, ...] = ()):  # type: ignore[no-untyped-def]
    collects = {name: CountingCollect(f"{name}-value") for name in PANEL_NAMES}
    collects["locks"] = make_locks_collect([f"{tmp_path}/*.lock"], repos, stale_after=STALE_AFTER)  # type: ignore[assignment]
    group = CollectorGroup({name: Collector(name, collects[name], interval_s=60, timeout_s=10) for name in PANEL_NAMES})
    panels = [
        LocksPanel(spec, n) if spec.name == "locks" else PlaceholderPanel(spec, n)
        for n, spec in enumerate(PANELS, start=1)
    ]
    config = Config(read_only=read_only, locks=LocksConfig(paths=(f"{tmp_path}/*.lock",), repos=repos))
    return make_app(config, group, host=HOST, audit=AuditLog(tmp_path / "audit.log"), autostart=True,  # type: ignore[arg-type]
                    panels=panels)


async def until(pilot, condition, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.05)


def shown(panel: LocksPanel) -> dict[str, tuple[object, ...]]:
    return {str(row.key): row.values for row in panel.table.rows.rows}


async def select(pilot, panel: LocksPanel, path: Path) -> None:  # type: ignore[no-untyped-def]
    position = panel.table.rows.position(str(path))
    assert position is not None, f"{path} not shown"
    panel.table.move_cursor(position)
    await pilot.pause()


def break_enabled(app) -> bool:  # type: ignore[no-untyped-def]
    """Whether `b` is offered (not greyed out) in the footer's active bindings."""
    return any(binding.action == "break_lock" and enabled for _, binding, enabled, _ in app.active_bindings.values())


def fixtures(tmp_path: Path, holder_pid: int) -> dict[str, Path]:
    paths = {name: tmp_path / f"{name}.lock" for name in ("stale", "free", "held", "remote")}
    paths["stale"].write_text(f"{dead_pid()}\n")
    paths["free"].touch()
    set_mtime(paths["free"], 60)
    paths["held"].write_text(f"{holder_pid}\n")
    paths["remote"].write_text("pid=42 host=far-away-1\n")
    return paths


async def test_panel_shows_verdicts_greys_out_break_and_breaks_a_stale_lock(tmp_path):
    with running() as holder:
        paths = fixtures(tmp_path, holder.pid)
        app = locks_app(tmp_path)
        async with app.run_test(size=(160, 48)) as pilot:
            panel = app.query_one(LocksPanel)
            await until(pilot, lambda: len(panel.table.rows) == 4, "four locks")
            verdicts = {Path(key).stem: values[0] for key, values in shown(panel).items()}
            assert verdicts == {"stale": "stale", "free": "free", "held": "held", "remote": "unknown"}
            assert shown(panel)[str(paths["held"])][4] == f"{holder.pid} sleep 600"
            await pilot.press("4")
            for name, offered in (("free", False), ("remote", False), ("held", True), ("stale", True)):
                await select(pilot, panel, paths[name])
                assert break_enabled(app) is offered, name
            await pilot.press("b")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen) and app.screen.focused, "confirm")
            await pilot.press("y")
            await app.workers.wait_for_complete()
            await until(pilot, lambda: str(paths["stale"]) not in shown(panel), "the broken lock to go")
    assert not paths["stale"].exists() and paths["held"].exists() and paths["remote"].exists()
    audit = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
    assert [(line["action"], line["outcome"]["result"]) for line in audit] == [("locks.break_lock", "removed")]


async def test_b_on_a_held_lock_stops_its_holder_through_safe_signalling(tmp_path):
    holder = sleeper()
    try:
        path = tmp_path / "hung.lock"
        path.write_text(f"{holder.pid}\n")
        app = locks_app(tmp_path)
        async with app.run_test(size=(160, 48)) as pilot:
            panel = app.query_one(LocksPanel)
            await until(pilot, lambda: len(panel.table.rows) == 1, "the lock")
            await pilot.press("4")
            await select(pilot, panel, path)
            await pilot.press("b")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen) and app.screen.focused, "confirm")
            assert f"pid {holder.pid}" in app.screen.plan.text() and "SIGTERM" in app.screen.plan.text()
            await pilot.press("y")
            await app.workers.wait_for_complete()
        assert holder.wait(5) == -15  # SIGTERM, through the pidfd
        audit = json.loads((tmp_path / "audit.log").read_text())
        assert audit["action"] == "locks.stop_holder" and audit["outcome"]["processes"][0]["result"] == "exited"
    finally:
        holder.kill()
        holder.wait()


async def test_lock_retaken_while_the_operator_reads_the_plan_is_kept_and_the_operator_is_told(tmp_path):
    stale = tmp_path / "sync.lock"
    stale.write_text(f"{dead_pid()}\n")
    app = locks_app(tmp_path)
    with running() as job:
        async with app.run_test(size=(120, 40)) as pilot:
            panel = app.query_one(LocksPanel)
            await until(pilot, lambda: len(panel.table.rows) == 1, "the lock")
            await pilot.press("4")
            await select(pilot, panel, stale)
            await pilot.press("b")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen) and app.screen.focused, "confirm")
            # Meanwhile another job breaks it the incident's way and takes it anew.
            stale.unlink()
            stale.write_text(f"{job.pid}\n")
            await pilot.press("y")
            await app.workers.wait_for_complete()
            await until(pilot, lambda: any("not broken" in n.message for n in app._notifications), "the outcome")
            told = next(n.message for n in app._notifications if "not broken" in n.message)
            assert f"re-taken by pid {job.pid}" in told
            await until(pilot, lambda: shown(panel).get(str(stale), ("",))[0] == "held", "the new holder")
        assert stale.read_text() == f"{job.pid}\n"
    audit = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
    assert [(line["action"], line["outcome"]["result"]) for line in audit] == [("locks.break_lock", "retaken")]


async def test_read_only_refuses_and_keeps_the_lock(tmp_path):
    stale = tmp_path / "stale.lock"
    stale.write_text(f"{dead_pid()}\n")
    app = locks_app(tmp_path, read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        panel = app.query_one(LocksPanel)
        await pilot.press("4")  # at 80 columns a panel draws its rows once its tab is shown
        await until(pilot, lambda: len(panel.table.rows) == 1, "the lock")
        await select(pilot, panel, stale)
        await pilot.press("b")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert any("read-only mode: locks.break_lock refused" in n.message for n in app._notifications)
    assert stale.exists() and not (tmp_path / "audit.log").exists()


def repo_with_stashes(tmp_path: Path, *messages: str) -> Path:
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=GIT_ENV)
    (repo / "a").write_text("1\n")
    subprocess.run(["git", "-C", str(repo), "add", "a"], check=True, env=GIT_ENV)
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "-m", "a"], check=True, env=GIT_ENV)
    for number, message in enumerate(messages, start=2):
        (repo / "a").write_text(f"{number}\n")
        subprocess.run(["git", "-C", str(repo), "stash", "push", "-q", "-m", message], check=True, env=GIT_ENV)
    return repo


async def test_enter_opens_the_detail_with_holder_and_waiters_and_repos_show_below(tmp_path):
    repo = repo_with_stashes(tmp_path, "lost update", "set aside on conflict")
    with running() as holder:
        path = tmp_path / "job.lock"
        path.write_text(json.dumps({"pid": holder.pid, "command": "nightly-sync"}))
        app = locks_app(tmp_path, repos=(repo,))
        async with app.run_test(size=(120, 40)) as pilot:
            panel = app.query_one(LocksPanel)
            await until(pilot, lambda: len(panel.table.rows) == 1, "the lock")
            repos_text = str(panel.query_one("#locks-repos").render())
            # Every stash is a possible lost update: each is shown, with its message and age.
            assert "2 stashes" in repos_text
            assert re.search(r"stash@\{0\} · \d+s ago · On \w+: set aside on conflict", repos_text)
            assert re.search(r"stash@\{1\} · \d+s ago · On \w+: lost update", repos_text)
            await pilot.press("4")
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, LockDetailScreen), "the detail view")
            text = str(app.screen.query_one("#lock-detail-body Static").render())
            assert f"pid {holder.pid} · running" in text and "nightly-sync" in text and "Waiters" in text
            await pilot.press("escape")
            await until(pilot, lambda: not isinstance(app.screen, LockDetailScreen), "the detail to close")


def test_snapshot_json_locks_section_follows_the_contract(tmp_path):
    (tmp_path / "stale.lock").write_text(f"{dead_pid()}\n")
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=GIT_ENV)
    config = write_config(tmp_path, [f"{tmp_path}/*.lock"], [repo])
    result = opsconsole("--config", str(config), "snapshot", "--json", "--panel", "locks")
    assert result.returncode == 0, result.stderr
    section = json.loads(result.stdout)["locks"]
    assert section["ok"] is True and section["error"] is None
    lock, = section["value"]["locks"]
    assert {"path", "kind", "holder", "waiters", "age_s", "verdict"} <= set(lock)
    assert {"pid", "alive", "name", "cmdline"} <= set(lock["holder"])
    assert (lock["kind"], lock["verdict"], lock["holder"]["alive"]) == ("pidfile", "stale", False)
    assert lock["waiters"] == [] and isinstance(lock["age_s"], float)
    repo_value, = section["value"]["repos"]
    assert {"path", "stashes", "unmerged", "in_progress", "ahead", "behind"} <= set(repo_value)
    assert (repo_value["path"], repo_value["stashes"], repo_value["in_progress"]) == (str(repo), 0, None)
