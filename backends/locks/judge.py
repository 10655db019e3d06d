"""The verdict on one lock file: held, free, stale or unknown, and why, in words.

Order of evidence, strongest first:

1. a kernel lock (flock, POSIX, OFD) on the file's device and inode: ``held``, whatever
   the file says; the kernel releases these itself when the holder dies, so they are
   never stale;
2. an `opsconsole lock` file with no kernel lock: ``free``;
3. one of git's own lock files: ``held`` while a git process works in that repository,
   ``stale`` once none does and it is older than ``stale_after``, else ``unknown``;
4. a pid file: ``held`` while its process runs and started before the file was written;
   ``stale`` when that process is gone or the pid now names a younger process;
   ``unknown`` when it names another host or pid namespace, or cannot be read or parsed;
5. an empty file: being written (``held``) for its first 2 s, then ``free`` (flock-style
   lock files are empty).
"""

from __future__ import annotations

from pathlib import Path

from backends.locks.files import READ_CAP, LockFile, git_worktree_of
from backends.locks.holders import HolderLookup, holder_from
from backends.locks.model import Holder, LockEntry, LockKind, LockVerdict
from backends.locks.pidfile import PidClaim, parse_pid_file, same_host
from backends.locks.proc import FileLocks
from backends.process_stop import ProcessGone, ProcessIdentity

#: An empty pid file younger than this is still being written.
BEING_WRITTEN_S = 2.0
#: psutil's start time derives from the boot time, which /proc gives to the second.
START_TIME_SLACK_S = 1.0
#: What `opsconsole lock` writes into its lock files, so they are recognised when free.
OPSCONSOLE_MARK = "opsconsole lock "
#: Characters of content kept for the detail view.
PREVIEW_CHARS = 200


def _preview(data: bytes | None) -> str | None:
    if data is None:
        return None
    text = data[:PREVIEW_CHARS].decode("utf-8", errors="replace")
    return "".join(ch if ch.isprintable() or ch == "\n" else "\ufffd" for ch in text)


def _entry(
    file: LockFile,
    kind: LockKind,
    verdict: LockVerdict,
    reason: str,
    *,
    now: float,
    holder: Holder | None = None,
    age_from: float | None = None,
    waiters: tuple[Holder, ...] = (),
    **extra: object,
) -> LockEntry:
    st = file.st
    return LockEntry(
        path=file.path,
        kind=kind,
        holder=holder,
        waiters=waiters,
        age_s=max(0.0, now - (st.st_mtime if age_from is None else age_from)),
        verdict=verdict,
        reason=reason,
        device=st.st_dev,
        inode=st.st_ino,
        mtime=st.st_mtime,
        size=st.st_size,
        content=_preview(file.data),
        **extra,  # type: ignore[arg-type]
    )


def judge(
    file: LockFile, kernel: FileLocks | None, lookup: HolderLookup, *, now: float, stale_after: float
) -> LockEntry:
    """Judge one lock file given the kernel locks on it (None: there are none)."""
    text = None
    if file.data is not None and not file.truncated:
        try:
            text = file.data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
    ours = text is not None and text.startswith(OPSCONSOLE_MARK)
    waiters = tuple(
        lookup.kernel_holder(lock.pid, lock.describe(), None) for lock in (kernel.waiting if kernel else ())
    )
    if kernel is not None and kernel.held:
        return _kernel_held(file, kernel, lookup, ours=ours, waiters=waiters, now=now)
    if ours:
        return _entry(file, LockKind.OPSCONSOLE, LockVerdict.FREE, "not locked", now=now, waiters=waiters)
    worktree = git_worktree_of(file.path)
    if worktree is not None:
        return _git_lock(file, worktree, lookup, now=now, stale_after=stale_after)
    if file.data is None:
        return _entry(file, LockKind.PIDFILE, LockVerdict.UNKNOWN, f"unreadable: {file.error}", now=now)
    if not file.data.strip():
        age = now - file.st.st_mtime
        if age < BEING_WRITTEN_S:
            return _entry(file, LockKind.PIDFILE, LockVerdict.HELD, "empty, being written", now=now)
        return _entry(file, LockKind.FLOCK, LockVerdict.FREE, "empty and not locked", now=now)
    if file.truncated:
        return _entry(
            file, LockKind.PIDFILE, LockVerdict.UNKNOWN,
            f"{file.st.st_size} bytes: too large for a pid file (more than {READ_CAP})", now=now,
        )
    claim = parse_pid_file(text) if text is not None else None
    if claim is None:
        return _entry(file, LockKind.PIDFILE, LockVerdict.UNKNOWN, "garbled: not a pid file format", now=now)
    return _pid_file(file, claim, lookup, now=now)


def _kernel_held(
    file: LockFile, kernel: FileLocks, lookup: HolderLookup, *, ours: bool, waiters: tuple[Holder, ...], now: float
) -> LockEntry:
    holders = []
    started: list[float] = []
    for lock in kernel.held:
        sidecar = lookup.sidecar(file.path, lock.pid) if ours else None
        if sidecar is not None:
            started.append(sidecar.started_at)
        holders.append(lookup.kernel_holder(lock.pid, lock.describe(), sidecar))
    first = kernel.held[0]
    kind = LockKind.OPSCONSOLE if ours else (LockKind.FLOCK if first.type == "FLOCK" else LockKind.POSIX)
    who = holders[0].label()
    more = f" and {len(holders) - 1} more" if len(holders) > 1 else ""
    return _entry(
        file, kind, LockVerdict.HELD, f"{first.describe()} held by {who}{more}", now=now,
        holder=holders[0], also_held_by=tuple(holders[1:]), waiters=waiters,
        kernel_lock=first.describe(), age_from=min(started) if started else None,
    )


def _git_lock(file: LockFile, worktree: Path, lookup: HolderLookup, *, now: float, stale_after: float) -> LockEntry:
    processes = lookup.git_processes()
    pid = processes.working_in(worktree)
    age = now - file.st.st_mtime
    if pid is not None:
        found = lookup.identity(pid)
        holder = holder_from(found) if isinstance(found, ProcessIdentity) else Holder(pid=pid, alive=None)
        return _entry(file, LockKind.GIT, LockVerdict.HELD, f"git (pid {pid}) is working in {worktree}",
                      now=now, holder=holder)
    if processes.unreadable:
        return _entry(file, LockKind.GIT, LockVerdict.UNKNOWN,
                      f"{processes.unreadable} git process(es) of other users could be working here", now=now)
    if age < stale_after:
        return _entry(file, LockKind.GIT, LockVerdict.UNKNOWN,
                      f"no git process in {worktree}, but younger than stale_after ({stale_after:g} s)", now=now)
    return _entry(file, LockKind.GIT, LockVerdict.STALE,
                  f"no git process in {worktree}; unchanged for {age:.0f} s", now=now)


def _pid_file(file: LockFile, claim: PidClaim, lookup: HolderLookup, *, now: float) -> LockEntry:
    pid = claim.pid
    if claim.host is not None and not same_host(claim.host, lookup.host):
        holder = Holder(pid=pid, alive=None, host=claim.host, command=claim.command)
        return _entry(file, LockKind.PIDFILE, LockVerdict.UNKNOWN,
                      f"names host {claim.host}: cannot be checked from {lookup.host}", now=now, holder=holder)
    if claim.pid_namespace is not None and lookup.pid_namespace not in (None, claim.pid_namespace):
        holder = Holder(pid=pid, alive=None, host=claim.host)
        return _entry(file, LockKind.PIDFILE, LockVerdict.UNKNOWN,
                      "written in another pid namespace (a container): pid cannot be checked here",
                      now=now, holder=holder)
    found = lookup.identity(pid)
    if isinstance(found, ProcessGone):
        holder = Holder(pid=pid, alive=False, host=claim.host, command=claim.command)
        return _entry(file, LockKind.PIDFILE, LockVerdict.STALE, f"pid {pid} is not running", now=now, holder=holder)
    if not isinstance(found, ProcessIdentity):
        holder = Holder(pid=pid, alive=True, host=claim.host, command=claim.command)
        return _entry(file, LockKind.PIDFILE, LockVerdict.UNKNOWN, f"pid {pid}: {found}", now=now, holder=holder)
    written = file.st.st_mtime
    recycled = found.create_time > written + START_TIME_SLACK_S or (
        claim.started_at is not None and abs(found.create_time - claim.started_at) > START_TIME_SLACK_S
    )
    holder = holder_from(found, same_process=not recycled, host=claim.host, command=claim.command)
    if recycled:
        return _entry(file, LockKind.PIDFILE, LockVerdict.STALE,
                      f"pid {pid} was reused: {found.name} started after the lock was written",
                      now=now, holder=holder)
    return _entry(file, LockKind.PIDFILE, LockVerdict.HELD, f"pid {pid} ({found.name}) is running",
                  now=now, holder=holder)
