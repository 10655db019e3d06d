"""The scan cache shared by every console and `snapshot` on the host, one JSON file per root.

Written atomically (temp file, fsync, ``os.replace``) by whoever holds the root's flock
(``filelock``), so readers see the old file or the new one, never half of either, and a
scanner killed with SIGKILL leaves its lock released by the kernel and at most a temp
file that the next writer removes. Beside it: who holds the lock and since when, and a
counter of readers served an expired result (one appended byte each: O_APPEND makes
concurrent increments safe without a lock).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import filelock

from backends.pcap.model import DirRecord, Rebuilder, RecentFile, ScanInfo, ScanMode

log = logging.getLogger(__name__)

FORMAT = "opsconsole-pcap-cache"
VERSION = 1
#: Keep this many (time, bytes) points for the trend: a day at the default TTL.
HISTORY_POINTS = 288


class CacheCorrupt(Exception):
    """The file is not a cache this version wrote for this root; it is discarded."""


@dataclass(frozen=True, slots=True)
class CacheDoc:
    """One scan's result as stored: directory records plus the bookkeeping around them."""

    root: str
    written_at: float
    scan: ScanInfo
    now_ns: int
    scans_since_full: int
    records: dict[str, DirRecord]
    history: tuple[tuple[float, int], ...]


def _encode_record(r: DirRecord) -> list[Any]:
    return [
        r.path, r.dev, r.ino, r.mtime_ns, r.files, r.bytes, r.allocated,
        list(r.oldest) if r.oldest else None, list(r.newest) if r.newest else None,
        [[f.name, f.size, f.mtime_ns] for f in r.recent], list(r.subdirs), r.racy, r.error,
    ]


def _decode_record(raw: list[Any]) -> DirRecord:
    path, dev, ino, mtime_ns, files, total, allocated, oldest, newest, recent, subdirs, racy, error = raw
    return DirRecord(
        path=str(path), dev=int(dev), ino=int(ino), mtime_ns=int(mtime_ns), files=int(files),
        bytes=int(total), allocated=int(allocated),
        oldest=(str(oldest[0]), int(oldest[1])) if oldest else None,
        newest=(str(newest[0]), int(newest[1])) if newest else None,
        recent=tuple(RecentFile(str(n), int(s), int(m)) for n, s, m in recent),
        subdirs=tuple(str(s) for s in subdirs), racy=bool(racy), error=None if error is None else str(error),
    )


def encode(doc: CacheDoc) -> bytes:
    # ensure_ascii keeps names that are not UTF-8 (lone surrogates from scandir) round-trippable.
    body = {
        "format": FORMAT, "version": VERSION, "root": doc.root, "written_at": doc.written_at,
        "scan": {
            "mode": doc.scan.mode.value, "dirs": doc.scan.dirs, "by_pid": doc.scan.by_pid,
            "started_at": doc.scan.started_at, "duration_s": doc.scan.duration_s,
            "serial": doc.scan.serial, "rescanned_dirs": doc.scan.rescanned_dirs,
        },
        "now_ns": doc.now_ns, "scans_since_full": doc.scans_since_full,
        "history": [list(point) for point in doc.history],
        "dirs": [_encode_record(r) for r in doc.records.values()],
    }
    return json.dumps(body, ensure_ascii=True, separators=(",", ":")).encode()


def decode(data: bytes, root: str) -> CacheDoc:
    """Parse and check a cache file; CacheCorrupt says why in one line."""
    try:
        body = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CacheCorrupt(f"not valid JSON ({exc.msg if isinstance(exc, json.JSONDecodeError) else exc.reason})") from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise CacheCorrupt("not an opsconsole PCAP cache")
    if body.get("version") != VERSION:
        raise CacheCorrupt(f"cache version {body.get('version')!r}, this opsconsole reads {VERSION}")
    if body.get("root") != root:
        raise CacheCorrupt(f"cache is for root {body.get('root')!r}")
    try:
        scan = body["scan"]
        records = [_decode_record(raw) for raw in body["dirs"]]
        return CacheDoc(
            root=root,
            written_at=float(body["written_at"]),
            scan=ScanInfo(
                mode=ScanMode(scan["mode"]), dirs=int(scan["dirs"]), by_pid=int(scan["by_pid"]),
                started_at=float(scan["started_at"]), duration_s=float(scan["duration_s"]),
                serial=int(scan["serial"]), rescanned_dirs=int(scan["rescanned_dirs"]),
            ),
            now_ns=int(body["now_ns"]),
            scans_since_full=int(body["scans_since_full"]),
            records={r.path: r for r in records},
            history=tuple((float(t), int(b)) for t, b in body["history"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CacheCorrupt(f"malformed cache ({type(exc).__name__}: {exc})") from None


class CacheStore:
    """The cache file of one root, its lock, and its two small companion files."""

    def __init__(self, cache_dir: Path, root: str) -> None:
        self.root = root
        self.cache_dir = cache_dir
        stem = "pcap-" + hashlib.sha256(root.encode(errors="surrogateescape")).hexdigest()[:16]
        self.path = cache_dir / f"{stem}.json"
        self.lock_path = cache_dir / f"{stem}.lock"
        self.rebuilder_path = cache_dir / f"{stem}.scanning"
        self.stale_path = cache_dir / f"{stem}.stale"
        self._memo: tuple[tuple[int, int, int], CacheDoc] | None = None
        self._memo_lock = threading.Lock()

    # -- reading --------------------------------------------------------------------

    def load(self) -> tuple[CacheDoc | None, str | None]:
        """The cached scan, or None; plus a warning when a bad file was discarded.

        Parsed again only when the file changed (inode, mtime, size), so a console
        polling every few seconds reads a large cache once per scan.
        """
        try:
            with open(self.path, "rb") as file:
                st = os.fstat(file.fileno())
                key = (st.st_ino, st.st_mtime_ns, st.st_size)
                with self._memo_lock:
                    if self._memo is not None and self._memo[0] == key:
                        return self._memo[1], None
                data = file.read()
        except FileNotFoundError:
            return None, None
        except OSError as exc:
            return None, f"cache {self.path} unreadable: {exc.strerror}"
        try:
            doc = decode(data, self.root)
        except CacheCorrupt as exc:
            warning = f"cache {self.path} discarded: {exc}"
            log.warning("%s", warning)
            return None, warning
        with self._memo_lock:
            self._memo = (key, doc)
        return doc, None

    # -- writing (only while holding the lock) -----------------------------------------

    def write(self, doc: CacheDoc) -> None:
        """Atomically replace the cache, then reset the stale-served counter for the new result."""
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._remove_orphaned_temps()
        temp = self.cache_dir / f"{self.path.name}.tmp.{os.getpid()}"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            with os.fdopen(fd, "wb", closefd=False) as file:
                file.write(encode(doc))
                file.flush()
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, self.path)
        dir_fd = os.open(self.cache_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        with contextlib.suppress(FileNotFoundError):
            os.truncate(self.stale_path, 0)

    def _remove_orphaned_temps(self) -> None:
        """Temp files of writers that died (SIGKILL between create and rename)."""
        for temp in self.cache_dir.glob(f"{self.path.name}.tmp.*"):
            pid = temp.name.rsplit(".", 1)[-1]
            if pid.isdigit() and not pid_alive(int(pid)):
                temp.unlink(missing_ok=True)

    # -- the scan lock -------------------------------------------------------------------

    @contextlib.contextmanager
    def scan_lock(self, timeout: float, cancelled: threading.Event | None = None) -> Iterator[bool]:
        """Hold the root's scan lock (yields True), or yield False if it stayed busy for ``timeout`` s.

        An flock: the kernel drops it when its holder dies, however it dies.
        """
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(
            self.lock_path, thread_local=False, preserve_lock_file=True, fallback_to_soft=False
        )
        try:
            lock.acquire(timeout=timeout, poll_interval=0.02,
                         cancel_check=(cancelled.is_set if cancelled is not None else None))
        except filelock.Timeout:
            yield False
            return
        try:
            yield True
        finally:
            with contextlib.suppress(FileNotFoundError):
                self.rebuilder_path.unlink()
            lock.release()

    def mark_rebuilding(self, since: float) -> None:
        """Say who holds the lock (call only while holding it)."""
        temp = self.rebuilder_path.with_name(f"{self.rebuilder_path.name}.{os.getpid()}")
        temp.write_text(json.dumps({"pid": os.getpid(), "since": since}))
        os.replace(temp, self.rebuilder_path)

    def rebuilder(self) -> Rebuilder | None:
        """Who is scanning, if the lock holder said so and is alive."""
        try:
            body = json.loads(self.rebuilder_path.read_text())
            rebuilder = Rebuilder(int(body["pid"]), float(body["since"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return rebuilder if pid_alive(rebuilder.pid) else None

    # -- stale reads -----------------------------------------------------------------

    def note_stale_served(self) -> None:
        with contextlib.suppress(OSError):
            fd = os.open(self.stale_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                os.write(fd, b".")
            finally:
                os.close(fd)

    def stale_served(self) -> int:
        try:
            return os.stat(self.stale_path).st_size
        except OSError:
            return 0


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
