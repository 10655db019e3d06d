"""The Locks panel's typed values: one entry per lock, one per watched repository.

These are the shapes behind the ``locks`` section of ``snapshot --json`` (DESIGN.md):
``locks[]`` with path, kind, holder, waiters, age_s, verdict, and ``repos[]`` with
stashes, unmerged, in_progress, ahead, behind. Fields beyond those are additions the
contract allows (keys may be added, never renamed).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import StrEnum


class LockKind(StrEnum):
    """How the lock is taken: by the kernel, by a file's existence, by git, or by `opsconsole lock`."""

    FLOCK = "flock"
    POSIX = "posix"
    PIDFILE = "pidfile"
    GIT = "git"
    OPSCONSOLE = "opsconsole"


class LockVerdict(StrEnum):
    HELD = "held"
    FREE = "free"
    STALE = "stale"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds (or claims to hold) a lock.

    ``alive`` is None when it cannot be checked here (a pid file of another host).
    ``same_process`` is False when the pid now belongs to a process started after the
    lock file was written (a recycled pid). ``host`` is the host a pid file names.
    """

    pid: int | None
    alive: bool | None
    name: str | None = None
    cmdline: tuple[str, ...] | None = None
    user: str | None = None
    started_at: float | None = None
    same_process: bool | None = None
    host: str | None = None
    mode: str | None = None
    command: str | None = None

    def label(self) -> str:
        """"pid 4711 (git push)" for tables and messages."""
        if self.pid is None:
            return "unknown holder"
        what = self.command or (" ".join(self.cmdline) if self.cmdline else None) or self.name
        where = f"@{self.host}" if self.host else ""
        return f"pid {self.pid}{where}" + (f" ({what})" if what else "")


@dataclass(frozen=True, slots=True)
class LockEntry:
    """One lock file and the kernel locks on it, judged.

    ``device``/``inode``/``mtime``/``size`` identify the exact file that was judged, so a
    break can check that it is still acting on that file. ``reason`` says in words why
    the verdict is what it is.
    """

    path: str
    kind: LockKind
    holder: Holder | None
    waiters: tuple[Holder, ...]
    age_s: float | None
    verdict: LockVerdict
    reason: str
    also_held_by: tuple[Holder, ...] = ()
    kernel_lock: str | None = None
    device: int | None = None
    inode: int | None = None
    mtime: float | None = None
    size: int | None = None
    content: str | None = None


@dataclass(frozen=True, slots=True)
class StashEntry:
    """One stash: each is an update somebody set aside and may never have restored."""

    ref: str
    message: str
    created_at: float | None


@dataclass(frozen=True, slots=True)
class RepoHazards:
    """What can lose updates in a repository that jobs sync through.

    ``ahead``/``behind`` are against the upstream as last fetched (nothing is fetched);
    None when the branch has no upstream. ``error`` is set when git could not answer.
    """

    path: str
    stashes: int
    unmerged: int
    in_progress: str | None
    ahead: int | None
    behind: int | None
    branch: str | None = None
    upstream: str | None = None
    stash_entries: tuple[StashEntry, ...] = ()
    error: str | None = None

    @property
    def hazards(self) -> tuple[str, ...]:
        """The hazards in words, most urgent first; empty when the repository is clean."""
        found: list[str] = []
        if self.error:
            found.append(f"error: {self.error}")
        if self.in_progress:
            found.append(f"{self.in_progress} in progress")
        if self.unmerged:
            found.append(f"{self.unmerged} unmerged")
        if self.stashes:
            found.append(f"{self.stashes} stash{'es' if self.stashes != 1 else ''}")
        if self.behind:
            found.append(f"behind {self.behind}")
        if self.ahead:
            found.append(f"ahead {self.ahead}")
        return tuple(found)


@dataclass(frozen=True, slots=True)
class LocksValue:
    """The Locks collector's value: every lock found, and every watched repository.

    ``stale_after`` is the threshold the verdicts were judged with, so an action started
    from this value re-judges by the same rule.
    """

    locks: tuple[LockEntry, ...]
    repos: tuple[RepoHazards, ...]
    stale_after: float

    def summary(self) -> str:
        """One line for `opsconsole snapshot` without --json."""
        counts = Counter(entry.verdict for entry in self.locks)
        parts = [f"{len(self.locks)} locks"] + [
            f"{counts[verdict]} {verdict}" for verdict in LockVerdict if counts[verdict]
        ]
        text = ", ".join(parts)
        troubled = [repo for repo in self.repos if repo.hazards]
        if self.repos:
            text += f" · {len(self.repos)} repos"
            if troubled:
                text += ": " + "; ".join(f"{repo.path}: {', '.join(repo.hazards)}" for repo in troubled)
        return text
