"""Who the processes named by locks are: identities, git processes, sidecars, cached per pass.

Process identity comes from backends.process_stop.identify, the same reading the stop
action re-checks before it signals, so the panel and the action never disagree about
who a pid is. One :class:`HolderLookup` lives for one collection: a pid holding a
thousand locks is read once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import psutil

from backends.locks.model import Holder
from backends.locks.pidfile import own_pid_namespace, this_host
from backends.locks.sidecar import SidecarRecord, read_sidecar, sidecars_in
from backends.process_stop import (
    ProcessGone,
    ProcessIdentity,
    ProcessUnreadable,
    identify,
)


@dataclass(frozen=True, slots=True)
class GitProcesses:
    """Running git processes by working directory; ``unreadable`` counts ones we could not see into."""

    cwds: tuple[tuple[int, str], ...]
    unreadable: int

    def working_in(self, worktree: Path) -> int | None:
        """A git pid whose working directory is in ``worktree`` (or its git directory)."""
        root = str(worktree)
        for pid, cwd in self.cwds:
            if cwd == root or cwd.startswith(root + os.sep):
                return pid
        return None


#: The option every git this console runs carries; such a git, run by us, never takes index.lock.
OUR_GIT_FLAG = "--no-optional-locks"


def find_git_processes() -> GitProcesses:
    """Every git process but this console's own read-only ones and the gits they run.

    Ours are the children of this process that carry OUR_GIT_FLAG, and their own git
    children (``git stash list`` runs a ``git log`` of its own, without the flag).
    """
    found: list[tuple[int, int, bool, psutil.Process]] = []
    me = os.getpid()
    for process in psutil.process_iter(["name", "ppid", "cmdline"]):
        name = process.info.get("name") or ""
        if name != "git" and not name.startswith("git-"):
            continue
        parent = process.info.get("ppid")
        found.append((process.pid, parent, parent == me and OUR_GIT_FLAG in (process.info.get("cmdline") or ()), process))
    ours = {pid for pid, _, flagged, _ in found if flagged}
    while more := {pid for pid, parent, _, _ in found if parent in ours} - ours:  # their git children, however deep
        ours |= more
    cwds: list[tuple[int, str]] = []
    unreadable = 0
    for pid, _, _, process in found:
        if pid in ours:
            continue
        try:
            cwds.append((pid, process.cwd()))
        except psutil.AccessDenied:
            unreadable += 1
        except psutil.Error:
            continue
    return GitProcesses(tuple(cwds), unreadable)


def holder_from(identity: ProcessIdentity, **extra: object) -> Holder:
    return Holder(
        pid=identity.pid,
        alive=True,
        name=identity.name,
        cmdline=identity.cmdline,
        user=identity.user,
        started_at=identity.create_time,
        **extra,  # type: ignore[arg-type]
    )


class HolderLookup:
    """Per-collection caches of everything a verdict asks about processes."""

    def __init__(self) -> None:
        self.host = this_host()
        self.pid_namespace = own_pid_namespace()
        self._identities: dict[int, ProcessIdentity | Exception] = {}
        self._git: GitProcesses | None = None
        self._sidecars: dict[str, dict[str, dict[int, Path]]] = {}

    def identity(self, pid: int) -> ProcessIdentity | ProcessGone | ProcessUnreadable:
        """The process now, or the reason it cannot be read (gone, unreadable)."""
        if pid not in self._identities:
            try:
                self._identities[pid] = identify(pid)
            except (ProcessGone, ProcessUnreadable) as exc:
                self._identities[pid] = exc
        return self._identities[pid]  # type: ignore[return-value]

    def kernel_holder(self, pid: int | None, mode: str, sidecar: SidecarRecord | None) -> Holder:
        """The holder /proc/locks names, with its sidecar's words when it has one."""
        extra: dict[str, object] = {"mode": mode}
        if sidecar is not None:
            extra["command"] = sidecar.command_text()
        if pid is None:
            return Holder(pid=None, alive=None, **extra)  # type: ignore[arg-type]
        found = self.identity(pid)
        if isinstance(found, ProcessIdentity):
            return holder_from(found, **extra)
        return Holder(pid=pid, alive=not isinstance(found, ProcessGone), **extra)  # type: ignore[arg-type]

    def git_processes(self) -> GitProcesses:
        if self._git is None:
            self._git = find_git_processes()
        return self._git

    def sidecar(self, lock_path: str, pid: int | None) -> SidecarRecord | None:
        """The sidecar of ``lock_path`` written by ``pid``, if there is one."""
        found = None if pid is None else self._sidecars_of(lock_path).get(pid)
        return None if found is None else read_sidecar(found)

    def has_sidecars(self, lock_path: str) -> bool:
        """Whether ``lock_path`` is an `opsconsole lock` lock (it has had a holder's sidecar)."""
        return bool(self._sidecars_of(lock_path))

    def _sidecars_of(self, lock_path: str) -> dict[int, Path]:
        path = Path(lock_path)
        directory = str(path.parent)
        if directory not in self._sidecars:
            self._sidecars[directory] = sidecars_in(path.parent)
        return self._sidecars[directory].get(path.name, {})
