"""Which processes hold a listening socket: the /proc/*/fd inode walk, and caches.

Owners are looked up only for listening sockets, so the cost follows the number of
open fds on the host, never the number of connections. Walking every process's fds
is still the expensive part (psutil.net_connections does it on every call), so the
collector walks only when a listening socket is new or lost a holder, or every
``FULL_WALK_EVERY_S``; in between it re-reads just the fd links it found (one
readlink per holder). Process details (name, user, command line) are cached by
(pid, start time): a reused pid has a new start time and so a new entry.
"""

from __future__ import annotations

import os
import pwd
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field

from backends.ports.model import Listener, ListenSocket
from backends.process_stop import (
    ProcessGone,
    ProcessIdentity,
    ProcessUnreadable,
    identify,
)

PROC = "/proc"
OWNER_HIDDEN = "owner hidden (needs root)"
OWNER_NOT_FOUND = "owner not found (it exited, or lives in another namespace)"
OWNER_UNREADABLE = "owner hidden: some processes' fds cannot be read here"


def _socket_inode(link: str) -> int | None:
    if link.startswith("socket:["):
        return int(link[8:-1])
    return None


#: How often the collector walks every process's fds even when nothing looks changed
#: (a worker forked with an inherited listening socket shows up within this time).
FULL_WALK_EVERY_S = 30.0


@dataclass(frozen=True, slots=True)
class Holders:
    """inode -> pids that have it open, and how many processes' fds could not be read.

    ``links`` keeps, per (pid, inode), the fd that holds it, so a later refresh can
    re-check just that link.
    """

    pids: dict[int, list[int]]
    unreadable: int = 0
    links: dict[tuple[int, int], str] = field(default_factory=dict)


def socket_holders(inodes: Collection[int]) -> Holders:
    """Find the holders of socket ``inodes``, walking every readable /proc/PID/fd.

    Processes whose fds we may not read (other users' when not root; some even as
    root, e.g. under a sandbox) are counted; their sockets end up with no holder.
    """
    holders: dict[int, list[int]] = {}
    links: dict[tuple[int, int], str] = {}
    unreadable = 0
    if not inodes:
        return Holders(holders)
    wanted = set(inodes)
    for entry in os.scandir(PROC):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        fd_dir = f"{PROC}/{entry.name}/fd"
        try:
            fds = os.listdir(fd_dir)
        except PermissionError:
            unreadable += 1
            continue
        except OSError:  # gone meanwhile
            continue
        denied = False
        for fd in fds:
            try:
                inode = _socket_inode(os.readlink(f"{fd_dir}/{fd}"))
            except PermissionError:
                denied = True
                continue
            except OSError:
                continue
            if inode in wanted:
                pids = holders.setdefault(inode, [])
                if pid not in pids:
                    pids.append(pid)
                    links[(pid, inode)] = fd
        unreadable += denied
    return Holders(holders, unreadable, links)


class HolderCache:
    """Socket holders between refreshes: a full walk only when something looks changed."""

    def __init__(self, full_walk_every_s: float = FULL_WALK_EVERY_S, clock: Callable[[], float] = time.monotonic):
        self.full_walk_every_s = full_walk_every_s
        self.clock = clock
        self.walks = 0  # full walks done: lets tests see the cache work
        self._last: Holders | None = None
        self._inodes: frozenset[int] = frozenset()
        self._walked_at = 0.0

    def holders(self, inodes: Collection[int]) -> Holders:
        wanted = frozenset(inodes)
        if self._last is not None and wanted <= self._inodes and self.clock() - self._walked_at < self.full_walk_every_s:
            checked = self._recheck(self._last, wanted)
            if checked is not None:
                return checked
        self._last, self._inodes, self._walked_at = socket_holders(wanted), wanted, self.clock()
        self.walks += 1
        return self._last

    @staticmethod
    def _recheck(last: Holders, wanted: frozenset[int]) -> Holders | None:
        """The last walk's holders whose fd still links the socket; None when one lost them all."""
        pids: dict[int, list[int]] = {}
        for inode in wanted:
            before = last.pids.get(inode, [])
            still = [pid for pid in before if _links_to(pid, last.links[(pid, inode)], inode)]
            if before and not still:
                return None
            if still:
                pids[inode] = still
        return Holders(pids, last.unreadable, last.links)



def _links_to(pid: int, fd: str, inode: int) -> bool:
    try:
        return os.readlink(f"{PROC}/{pid}/fd/{fd}") == f"socket:[{inode}]"
    except OSError:
        return False


def holds_socket(pid: int, inodes: Collection[int]) -> bool:
    """True when ``pid`` has one of the socket ``inodes`` open.

    Raises:
        PermissionError: its fds cannot be read (callers fail closed).
    """
    fd_dir = f"{PROC}/{pid}/fd"
    try:
        fds = os.listdir(fd_dir)
    except FileNotFoundError:
        return False
    for fd in fds:
        try:
            if _socket_inode(os.readlink(f"{fd_dir}/{fd}")) in inodes:
                return True
        except FileNotFoundError:
            continue
    return False


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22)."""
    try:
        with open(f"{PROC}/{pid}/stat", "rb") as stat:
            return int(stat.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def masters_first(identities: Iterable[ProcessIdentity]) -> list[ProcessIdentity]:
    """Order holders so a parent comes before its children (a prefork master first)."""
    by_pid = {identity.pid: identity for identity in identities}

    def depth(identity: ProcessIdentity) -> int:
        steps, parent = 0, identity.ppid
        while parent in by_pid and steps < len(by_pid):
            steps, parent = steps + 1, by_pid[parent].ppid
        return steps

    return sorted(by_pid.values(), key=lambda identity: (depth(identity), identity.pid))


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


class OwnerCache:
    """Process identities by (pid, start ticks), kept only while the process still holds a socket."""

    def __init__(self) -> None:
        self._known: dict[tuple[int, int], ProcessIdentity] = {}
        self._seen: dict[tuple[int, int], ProcessIdentity] = {}

    def identity(self, pid: int) -> ProcessIdentity | None:
        ticks = start_ticks(pid)
        if ticks is None:
            return None
        key = (pid, ticks)
        found = self._known.get(key)
        if found is None:
            try:
                found = identify(pid)
            except (ProcessGone, ProcessUnreadable):
                return None
        self._seen[key] = found
        return found

    def end_refresh(self) -> None:
        """Forget processes not seen in this refresh."""
        self._known, self._seen = self._seen, {}

    def listeners(self, sockets: Iterable[ListenSocket], holders: Holders) -> list[Listener]:
        """The owners of one port's listening sockets, masters first, each process once."""
        identities: list[ProcessIdentity] = []
        unresolved: list[ListenSocket] = []
        for sock in sockets:
            found = [ident for pid in holders.pids.get(sock.inode, ()) if (ident := self.identity(pid)) is not None]
            identities.extend(found)
            if not found:
                unresolved.append(sock)
        owners = [
            Listener(pid=i.pid, name=i.name, user=i.user, cmdline=i.cmdline, started_at=i.create_time, ppid=i.ppid)
            for i in masters_first(identities)
        ]
        euid = os.geteuid()
        for uid in dict.fromkeys(sock.uid for sock in unresolved):
            if euid != 0 and uid != euid:
                note = OWNER_HIDDEN
            else:
                note = OWNER_UNREADABLE if holders.unreadable else OWNER_NOT_FOUND
            owners.append(Listener(pid=None, name=None, user=user_name(uid), cmdline=(), started_at=None, note=note))
        return owners
