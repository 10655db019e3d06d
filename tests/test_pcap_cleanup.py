"""Retention cleanup on real trees: what it deletes, what it never deletes, and its protocol."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from backends.actions import Progress
from backends.pcap.cleanup import PcapCleanup
from backends.pcap.inuse import locked_file_ids, open_file_ids
from backends.pcap.retention import Rule, Skip
from console.action_runner import ActionStatus, run_action
from console.audit import AuditLog
from console.cli import main
from tests.pcap_helpers import OLD, make_file, settings_for

DAY = 86400.0


def aged_tree(root: Path, count: int = 20) -> list[Path]:
    """``count`` 1000-byte files, one a day apart, the oldest first (days 100 .. 100-count+1 old)."""
    now = time.time()
    return [make_file(root / f"d{i:02}" / f"f{i:02}.pcap", 1000, now - (100 - i) * DAY) for i in range(count)]


def action(tmp_path: Path, **retention: object) -> PcapCleanup:
    settings = settings_for(tmp_path / "pcap", tmp_path / "cache", **retention)
    return PcapCleanup(settings, tmp_path / "state" / "pcap-cleanup-deleted.jsonl")


def run(cleanup: PcapCleanup, cancelled: threading.Event | None = None, progress: Progress | None = None):
    plan = cleanup.plan()
    outcome = cleanup.execute(plan, progress or Progress(), cancelled or threading.Event())
    return plan, outcome


def deleted_paths(cleanup: PcapCleanup) -> list[str]:
    if not cleanup.deleted_log.exists():
        return []
    return [json.loads(line)["path"] for line in cleanup.deleted_log.read_text().splitlines()]


def test_max_age_deletes_exactly_the_old_files_oldest_first(tmp_path: Path) -> None:
    files = aged_tree(tmp_path / "pcap")
    cleanup = action(tmp_path, max_age_days=90.5, keep_newest=0)  # days 100..91 old go
    plan, outcome = run(cleanup)
    assert plan.payload.drivers == (Rule.MAX_AGE,)
    assert [p.exists() for p in files] == [False] * 10 + [True] * 10
    assert deleted_paths(cleanup) == [f"d{i:02}/f{i:02}.pcap" for i in range(10)]
    assert outcome.ok and outcome.details["deleted"] == 10 and outcome.details["bytes_freed"] == 10_000


def test_max_total_bytes_deletes_oldest_until_it_holds_and_keeps_newest(tmp_path: Path) -> None:
    files = aged_tree(tmp_path / "pcap")
    plan, _ = run(action(tmp_path, max_total_bytes=15_500, keep_newest=3))
    assert len(plan.payload.files) == 5  # 20000 -> 15000 <= 15500
    assert [p.exists() for p in files] == [False] * 5 + [True] * 15
    # asking for everything still keeps the newest three
    plan, _ = run(action(tmp_path, max_total_bytes=1, keep_newest=3))
    assert plan.payload.unmet == (Rule.MAX_TOTAL,)
    assert [p.name for p in (tmp_path / "pcap").rglob("*.pcap")] and all(p.exists() for p in files[-3:])
    assert sum(p.exists() for p in files) == 3


def test_min_free_percent_that_cannot_be_met_deletes_all_eligible_and_says_so(tmp_path: Path) -> None:
    files = aged_tree(tmp_path / "pcap", 5)
    plan, _ = run(action(tmp_path, min_free_percent=100, keep_newest=1))
    assert plan.payload.unmet == (Rule.MIN_FREE,) and Rule.MIN_FREE in plan.payload.drivers
    assert [p.exists() for p in files] == [False] * 4 + [True]
    assert "min_free_percent" in plan.text()


def test_nothing_to_do_when_rules_hold_or_none_is_set(tmp_path: Path) -> None:
    aged_tree(tmp_path / "pcap", 3)
    assert action(tmp_path).plan().nothing_to_do
    assert action(tmp_path, max_age_days=1000).plan().nothing_to_do


def test_never_deletes_active_open_locked_or_hardlinked_files(tmp_path: Path) -> None:
    root = tmp_path / "pcap"
    old = aged_tree(root, 4)
    active = make_file(root / "live" / "now.pcap", 1000, None)
    held_open = make_file(root / "x" / "open.pcap", 1000, OLD)
    flocked = make_file(root / "x" / "locked.pcap", 1000, OLD)
    linked = make_file(root / "x" / "linked.pcap", 1000, OLD)
    os.link(linked, tmp_path / "other-name.pcap")
    holder = subprocess.Popen([sys.executable, "-c", "import sys,time; f=open(sys.argv[1]); print(1, flush=True); time.sleep(60)",
                               str(held_open)], stdout=subprocess.PIPE)
    lock_fd = os.open(flocked, os.O_RDONLY)
    try:
        assert holder.stdout is not None and holder.stdout.readline()
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        cleanup = action(tmp_path, max_total_bytes=1, keep_newest=0)
        plan, _ = run(cleanup)
        skipped = plan.payload.skipped
        assert (skipped[Skip.ACTIVE], skipped[Skip.OPEN], skipped[Skip.LOCKED], skipped[Skip.HARDLINKED]) == (1, 1, 1, 1)
        assert not any(p.exists() for p in old)
        assert all(p.exists() for p in (active, held_open, flocked, linked))
        text = plan.text()
        assert "1 active window" in text and "1 open by a process" in text
    finally:
        os.close(lock_fd)
        holder.kill()
        holder.wait()


def test_file_opened_between_plan_and_delete_is_skipped(tmp_path: Path) -> None:
    files = aged_tree(tmp_path / "pcap", 3)
    cleanup = action(tmp_path, max_age_days=1, keep_newest=0)
    plan = cleanup.plan()
    with open(files[1], "rb"):
        outcome = cleanup.execute(plan, Progress(), threading.Event())
    assert outcome.details["skipped"] == {Skip.OPEN: 1}
    assert [p.exists() for p in files] == [False, True, False]


def test_file_replaced_between_plan_and_delete_is_skipped(tmp_path: Path) -> None:
    files = aged_tree(tmp_path / "pcap", 3)
    cleanup = action(tmp_path, max_age_days=1, keep_newest=0)
    plan = cleanup.plan()
    replacement = make_file(tmp_path / "new.pcap", 1000, files[0].stat().st_mtime)
    os.replace(replacement, files[0])  # same name, size and mtime: another inode
    with open(files[2], "ab") as grown:  # same inode, another size
        grown.write(b"more")
    os.utime(files[2], (OLD, OLD))
    outcome = cleanup.execute(plan, Progress(), threading.Event())
    assert outcome.details["skipped"] == {Skip.CHANGED: 2}
    assert [p.exists() for p in files] == [True, False, True]


def test_nothing_outside_root_is_deleted_even_through_a_swapped_directory(tmp_path: Path) -> None:
    root = tmp_path / "pcap"
    outside = tmp_path / "outside"
    victim = make_file(outside / "d00" / "f00.pcap", 1000, time.time() - 100 * DAY)
    os.symlink(outside / "d00", root / "link-dir", target_is_directory=True) if root.exists() else None
    files = aged_tree(root, 2)
    os.symlink(victim, root / "d01" / "alias.pcap")
    cleanup = action(tmp_path, max_age_days=1, keep_newest=0)
    plan = cleanup.plan()
    assert [c.path for c in plan.payload.files] == [b"d00/f00.pcap", b"d01/f01.pcap"]
    # between plan and delete, d00 becomes a symlink to the outside directory holding a look-alike
    (root / "d00" / "f00.pcap").unlink()
    (root / "d00").rmdir()
    os.symlink(outside / "d00", root / "d00", target_is_directory=True)
    outcome = cleanup.execute(plan, Progress(), threading.Event())
    assert victim.exists()
    assert outcome.details["deleted"] == 1 and not files[1].exists()


def test_names_that_are_not_utf8_are_deleted_and_escaped_in_the_log(tmp_path: Path) -> None:
    root = tmp_path / "pcap"
    root.mkdir()
    raw = os.path.join(os.fsencode(root), b"caf\xe9-\xff.pcap")
    with open(raw, "wb") as file:
        file.write(b"x" * 10)
    os.utime(raw, (OLD, OLD))
    cleanup = action(tmp_path, max_age_days=1, keep_newest=0)
    plan, outcome = run(cleanup)
    assert outcome.details["deleted"] == 1 and not os.path.exists(raw)
    entry = json.loads(cleanup.deleted_log.read_text())
    assert entry["path"] == "caf\\xe9-\\xff.pcap" and entry["path_escaped"] is True
    assert "caf\\xe9-\\xff.pcap" in plan.text()


def test_cancel_stops_between_files(tmp_path: Path) -> None:
    files = aged_tree(tmp_path / "pcap", 10)
    cancelled = threading.Event()

    class CancelAfterThree(Progress):
        def advance(self, steps: int = 1, note: str | None = None) -> None:
            super().advance(steps, note)
            if self.read().done == 3:
                cancelled.set()

    _, outcome = run(action(tmp_path, max_age_days=1, keep_newest=0), cancelled, CancelAfterThree())
    assert not outcome.ok and outcome.details["stopped"] == "cancelled"
    assert outcome.details["deleted"] == 3
    assert sum(p.exists() for p in files) == 7


def test_stops_as_soon_as_every_rule_holds(tmp_path: Path) -> None:
    """Free space is measured again before each file: space freed by others ends the run early.

    The margins (40 MB freed by others against a 10 MB need) absorb other writers on the
    same filesystem.
    """
    root = tmp_path / "pcap"
    ballast = tmp_path / "ballast.bin"
    with open(ballast, "wb") as file:
        file.write(b"\1" * 50 * 2**20)
        os.fsync(file.fileno())
    now = time.time()
    files = [make_file(root / f"f{i:02}.pcap", 2**20, now - (100 - i) * DAY) for i in range(30)]
    st = os.statvfs(tmp_path)
    target = 100.0 * (st.f_bavail * st.f_frsize + 10 * 2**20) / (st.f_blocks * st.f_frsize)
    cleanup = action(tmp_path, min_free_percent=target, keep_newest=0)
    plan = cleanup.plan()
    assert 5 <= len(plan.payload.files) <= 20
    ballast.unlink()
    outcome = cleanup.execute(plan, Progress(), threading.Event())
    assert outcome.details["stopped"] == "every rule holds"
    assert outcome.details["deleted"] == 0 and all(p.exists() for p in files)


async def test_protocol_audits_one_line_and_read_only_refuses(tmp_path: Path) -> None:
    aged_tree(tmp_path / "pcap", 4)
    audit = AuditLog(tmp_path / "state" / "audit.log")
    refreshed: list[str] = []

    class Yes:
        async def confirm(self, plan) -> bool:
            return True

        def progress_started(self, plan, progress, cancelled) -> None:
            pass

        def progress_finished(self) -> None:
            pass

    async def refresh(name: str) -> None:
        refreshed.append(name)

    cleanup = action(tmp_path, max_age_days=1, keep_newest=1)
    refused = await run_action(cleanup, ui=Yes(), audit=audit, read_only=True, refresh=refresh)
    assert refused.status is ActionStatus.REFUSED and not audit.path.exists()
    done = await run_action(cleanup, ui=Yes(), audit=audit, read_only=False, refresh=refresh)
    assert done.status is ActionStatus.DONE and refreshed == ["pcap"]
    [line] = audit.path.read_text().splitlines()
    entry = json.loads(line)
    assert entry["action"] == "pcap.cleanup" and entry["plan"]["files"] == 3
    assert entry["outcome"]["deleted"] == 3 and entry["outcome"]["bytes_freed"] == 3000
    assert len(deleted_paths(cleanup)) == 3


def write_config(tmp_path: Path, retention: str) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        f'audit_log = "{tmp_path}/state/audit.log"\n[pcap]\nroot = "{tmp_path}/pcap"\ncache_dir = "{tmp_path}/cache"\n'
        f"[pcap.retention]\n{retention}\n"
    )
    return config


def test_cli_dry_run_lists_exactly_what_yes_deletes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    aged_tree(tmp_path / "pcap", 12)
    config = write_config(tmp_path, "max_total_bytes = 7000\nkeep_newest = 2")
    assert main(["--config", str(config), "cleanup", "--dry-run"]) == 0
    listed = [line for line in capsys.readouterr().out.splitlines() if line.endswith(".pcap") and ":" not in line]
    assert len(listed) == 5 and all((tmp_path / "pcap" / p).exists() for p in listed)
    assert main(["--config", str(config), "cleanup", "--yes"]) == 0
    deleted = [json.loads(x)["path"] for x in (tmp_path / "state" / "pcap-cleanup-deleted.jsonl").read_text().splitlines()]
    assert deleted == listed


def test_cli_refusals_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    aged_tree(tmp_path / "pcap", 3)
    config = write_config(tmp_path, "max_age_days = 1")
    assert main(["--config", str(config), "--read-only", "cleanup", "--yes"]) == 1
    assert "read-only" in capsys.readouterr().err
    assert all(p.exists() for p in (tmp_path / "pcap").rglob("*.pcap"))
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    assert main(["--config", str(empty), "cleanup", "--dry-run"]) == 2
    assert capsys.readouterr().err.strip() == "opsconsole: cleanup: set [pcap] root in the config file"
    with pytest.raises(SystemExit) as exit_info:
        main(["--config", str(config), "cleanup", "--dry-run", "--yes"])
    assert exit_info.value.code == 2


def test_proc_sweeps_see_open_and_locked_files(tmp_path: Path) -> None:
    path = make_file(tmp_path / "a.pcap", 1)
    st = path.stat()
    with open(path, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_SH)
        opened, _ = open_file_ids()
        assert (st.st_dev, st.st_ino) in opened
        assert (st.st_dev, st.st_ino) in locked_file_ids()
