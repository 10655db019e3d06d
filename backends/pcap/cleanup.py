"""Retention cleanup as an action: plan, then delete file by file with every check redone.

Deleting goes through directory descriptors opened beneath root with ``O_NOFOLLOW``
and ``unlink(name, dir_fd=...)``, so no symlink (planted before or during the run) can
point it elsewhere. Right before each unlink the file is looked at again: same device,
inode, size and mtime as planned, a regular file with one link, outside the active
window, not open in any process, not locked. The rules are re-evaluated before every
file (free space measured again), so the run stops as soon as they all hold.
"""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from backends.actions import Outcome, Plan, Progress
from backends.human import human_bytes, is_utf8, local_time, shown_path
from backends.pcap.inuse import InUse, sweep
from backends.pcap.model import PcapSettings
from backends.pcap.retention import Candidate, CleanupPlan, Rule, Skip, plan_cleanup
from backends.pcap.trend import disk_usage
from backends.pcap.walk import DIR_FLAGS, open_beneath

#: Where the deleted paths go: this file name, in the audit log's directory.
DELETED_LOG_NAME = "pcap-cleanup-deleted.jsonl"


def deleted_log_path(audit_log: Path) -> Path:
    return audit_log.parent / DELETED_LOG_NAME


def plan_lines(plan: CleanupPlan) -> tuple[str, ...]:
    """What the confirm dialog and `cleanup --dry-run` show under the title."""
    lines = []
    if plan.files:
        first, last = plan.files[0], plan.files[-1]
        lines.append(f"oldest: {shown_path(first.path)} ({local_time(first.mtime_ns / 1e9)})")
        lines.append(f"newest: {shown_path(last.path)} ({local_time(last.mtime_ns / 1e9)})")
    lines.append("driven by: " + (", ".join(_why(rule, plan) for rule in plan.drivers) or "no rule"))
    if plan.unmet:
        lines.append("still unmet afterwards (too little is deletable): " + ", ".join(plan.unmet))
    skipped = ", ".join(f"{count} {reason}" for reason, count in sorted(plan.skipped.items()) if count)
    lines.append(f"skipped: {skipped or 'nothing'}; the newest {plan.settings.keep_newest} are always kept")
    if plan.uninspectable:
        lines.append(f"note: {plan.uninspectable} processes of other users could not be checked for open files")
    lines.append("each file is re-checked (same inode, size, mtime; not open, not locked) right before it goes")
    return tuple(lines)


def _why(rule: Rule, plan: CleanupPlan) -> str:
    s = plan.settings
    if rule is Rule.MAX_AGE:
        return f"max_age_days = {s.max_age_days:g}"
    if rule is Rule.MAX_TOTAL:
        return f"max_total_bytes = {human_bytes(s.max_total_bytes or 0)} ({human_bytes(plan.needs.apparent)} over)"
    return f"min_free_percent = {s.min_free_percent:g} ({plan.disk.free_percent:.1f}% free now)"


@dataclass(frozen=True, slots=True)
class _Tally:
    deleted: int
    freed: int
    skipped: dict[str, int]
    stopped: str


class PcapCleanup:
    """The `pcap.cleanup` action (key ``c`` in the panel, `opsconsole cleanup` from a shell)."""

    name = "pcap.cleanup"
    panel = "pcap"

    def __init__(self, settings: PcapSettings, deleted_log: Path) -> None:
        self.settings = settings
        self.deleted_log = deleted_log
        #: The plan last computed, so `cleanup --dry-run` can list its files after the summary.
        self.last_plan: CleanupPlan | None = None

    def plan(self) -> Plan:
        if not any(v is not None for v in (self.settings.max_age_days, self.settings.max_total_bytes,
                                           self.settings.min_free_percent)):
            return Plan(self.name, str(self.settings.root), "cleanup: no retention rule is set in [pcap.retention]",
                        nothing_to_do=True)
        cleanup = self.last_plan = plan_cleanup(self.settings, sweep())
        title = (
            f"Delete {len(cleanup.files):,} capture files, {human_bytes(cleanup.bytes)}, under {cleanup.root}"
            if cleanup.files else f"cleanup: nothing to delete under {cleanup.root}: every retention rule holds"
        )
        if not cleanup.files and cleanup.unmet:
            title = f"cleanup: nothing deletable under {cleanup.root}, yet {', '.join(cleanup.unmet)} is not met"
        return Plan(
            action=self.name,
            target=cleanup.root,
            title=title,
            lines=plan_lines(cleanup),
            audit={
                "files": len(cleanup.files),
                "bytes": cleanup.bytes,
                "drivers": list(cleanup.drivers),
                "skipped": cleanup.skipped,
                "oldest": shown_path(cleanup.files[0].path) if cleanup.files else None,
                "newest": shown_path(cleanup.files[-1].path) if cleanup.files else None,
            },
            nothing_to_do=not cleanup.files,
            payload=cleanup,
        )

    def execute(self, plan: Plan, progress: Progress, cancelled: threading.Event) -> Outcome:
        cleanup: CleanupPlan = plan.payload
        progress.start(len(cleanup.files), "files")
        run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        tally = _delete(cleanup, sweep(), progress, cancelled, self.deleted_log, run_id)
        message = (
            f"cleanup: deleted {tally.deleted:,} files, freed {human_bytes(tally.freed)}"
            + (f", skipped {sum(tally.skipped.values())}" if tally.skipped else "")
            + f" ({tally.stopped})"
        )
        return Outcome(
            ok=tally.stopped != "cancelled",
            message=message,
            details={
                "run": run_id,
                "deleted": tally.deleted,
                "bytes_freed": tally.freed,
                "skipped": tally.skipped,
                "stopped": tally.stopped,
                "deleted_paths": str(self.deleted_log),
            },
        )


def _rules_hold(cleanup: CleanupPlan, next_file: Candidate, freed: int) -> bool:
    needs = cleanup.needs
    if needs.age_cutoff_ns is not None and next_file.mtime_ns < needs.age_cutoff_ns:
        return False
    s = cleanup.settings
    if s.max_total_bytes is not None and needs.total_bytes - freed > s.max_total_bytes:
        return False
    return s.min_free_percent is None or disk_usage(cleanup.root).free_percent >= s.min_free_percent


def _recheck(fd: int, name: bytes, planned: Candidate, in_use: InUse, active_since: int) -> Skip | None:
    try:
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return Skip.VANISHED
    if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) != (
        planned.dev, planned.ino, planned.size, planned.mtime_ns
    ):
        return Skip.CHANGED
    if st.st_mtime_ns >= active_since:
        return Skip.ACTIVE
    if st.st_nlink > 1:
        return Skip.HARDLINKED
    held = in_use.reason((st.st_dev, st.st_ino))
    return None if held is None else (Skip.OPEN if held == "open" else Skip.LOCKED)


def _delete(
    cleanup: CleanupPlan, in_use: InUse, progress: Progress, cancelled: threading.Event, log_path: Path, run_id: str
) -> _Tally:
    settings = cleanup.settings
    deleted = freed = gone = 0  # gone: planned files someone else removed meanwhile
    skipped: Counter[str] = Counter()
    stopped = "plan done"
    root_fd = os.open(cleanup.root, DIR_FLAGS & ~os.O_NOFOLLOW)
    root_dev = os.fstat(root_fd).st_dev
    dir_fd, dir_path = -1, b""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")  # noqa: SIM115 - closed in the finally below, with the descriptors
    try:
        for candidate in cleanup.files:
            if cancelled.is_set():
                stopped = "cancelled"
                break
            if _rules_hold(cleanup, candidate, freed + gone):
                stopped = "every rule holds"
                break
            parent, _, name = candidate.path.rpartition(b"/")
            if dir_fd < 0 or parent != dir_path:
                if dir_fd >= 0:
                    os.close(dir_fd)
                    dir_fd = -1
                try:
                    dir_fd = open_beneath(root_fd, os.fsdecode(parent))
                except OSError:
                    skipped[Skip.VANISHED] += 1
                    gone += candidate.size
                    progress.advance(1)
                    continue
                dir_path = parent
                if not settings.cross_filesystems and os.fstat(dir_fd).st_dev != root_dev:
                    skipped[Skip.CHANGED] += 1
                    progress.advance(1)
                    continue
            active_since = time.time_ns() - int(settings.active_window_s * 1e9)
            reason = _recheck(dir_fd, name, candidate, in_use, active_since)
            if reason is None:
                try:
                    os.unlink(name, dir_fd=dir_fd)
                except FileNotFoundError:
                    reason = Skip.VANISHED
            if reason is not None:
                skipped[reason] += 1
                gone += candidate.size if reason is Skip.VANISHED else 0
                progress.advance(1)
                continue
            deleted += 1
            freed += candidate.size
            log.write(_log_line(run_id, candidate))
            log.flush()
            progress.advance(1, f"freed {human_bytes(freed)}")
    finally:
        log.close()
        if dir_fd >= 0:
            os.close(dir_fd)
        os.close(root_fd)
    return _Tally(deleted, freed, dict(skipped), stopped)


def _log_line(run_id: str, candidate: Candidate) -> bytes:
    entry = {
        "run": run_id,
        "path": shown_path(candidate.path),
        "bytes": candidate.size,
        "mtime": candidate.mtime_ns / 1e9,
    }
    if not is_utf8(candidate.path):
        entry["path_escaped"] = True
    return (json.dumps(entry, ensure_ascii=False) + "\n").encode()
