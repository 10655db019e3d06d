"""The file index behind the PCAP panel's file view: every capture file, built in the background.

The view opens at once and shows :class:`IndexProgress` while :func:`build_index` walks
the tree in a worker thread; an index still building is never presented as empty.
Files are kept as compact tuples (path, size, mtime) — the index is the one place that
holds the file list, and only while the view is open.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

from backends.pcap.model import PcapSettings
from backends.pcap.walk import DIR_FLAGS, WalkOptions, iter_files, join

IndexedFile = tuple[str, int, float]  # path relative to root, bytes, mtime


@dataclass(frozen=True, slots=True)
class IndexState:
    files: int
    dirs: int
    done: bool
    error: str | None


class IndexProgress:
    """Counters the builder thread bumps and the screen polls (a lock, not a message per file)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = IndexState(0, 0, False, None)

    def update(self, files: int, dirs: int) -> None:
        with self._lock:
            self._state = IndexState(files, dirs, False, None)

    def finish(self, error: str | None = None) -> None:
        with self._lock:
            state = self._state
            self._state = IndexState(state.files, state.dirs, True, error)

    def read(self) -> IndexState:
        with self._lock:
            return self._state


def build_index(
    settings: PcapSettings, progress: IndexProgress, cancelled: threading.Event | None = None
) -> list[IndexedFile]:
    """Every matching file under root; progress is published every directory."""
    files: list[IndexedFile] = []
    dirs = 0
    last_dir: str | None = None
    try:
        root_fd = os.open(str(settings.root), DIR_FLAGS & ~os.O_NOFOLLOW)
    except OSError as exc:
        progress.finish(f"{settings.root}: {exc.strerror}")
        return files
    try:
        options = WalkOptions(settings.patterns, os.fstat(root_fd).st_dev, settings.cross_filesystems,
                              time.time_ns(), int(settings.active_window_s * 1e9))
        for rel, name, st in iter_files(root_fd, options, cancelled):
            if rel != last_dir:
                last_dir, dirs = rel, dirs + 1
                progress.update(len(files), dirs)
                time.sleep(0)  # hand the GIL to the event loop between directories
            files.append((join(rel, name), st.st_size, st.st_mtime))
    finally:
        os.close(root_fd)
    progress.update(len(files), dirs)
    progress.finish()
    return files
