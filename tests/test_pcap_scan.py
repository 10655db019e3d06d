"""The scanner on real trees: totals, symlinks, unreadable and vanishing entries, timeouts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.pcap.scan import RootUnusable, ScanPool, ScanTimeout, totals, worker_priority
from tests.nobody import as_nobody
from tests.pcap_helpers import OLD, make_file, walk_totals

PATTERNS = ("*.pcap", "*.pcapng", "*.cap", "*.pcap.gz", "*.pcap.zst", "*.cap.lz4")


@pytest.fixture(scope="module")
def pool() -> Iterator[ScanPool]:
    pool = ScanPool(2)
    yield pool
    pool.close()


def scan(pool: ScanPool, root: Path, previous=None, *, window_s: float = 120.0, deadline_s: float = 60.0,
         cancelled: threading.Event | None = None):
    return pool.scan(str(root), previous, patterns=PATTERNS, active_window_s=window_s, cross_filesystems=False,
                     deadline=time.monotonic() + deadline_s, cancelled=cancelled or threading.Event())


def test_known_totals(tmp_path: Path, pool: ScanPool) -> None:
    root = tmp_path / "pcap"
    make_file(root / "2026-11-01" / "a.pcap", 1000, OLD)
    make_file(root / "2026-11-01" / "b.pcapng", 2000, OLD + 60)
    make_file(root / "2026-11-01" / "deep" / "c.pcap.gz", 300, OLD + 120)
    make_file(root / "2026-11-02" / "d.cap.lz4", 4000, OLD + 180)
    make_file(root / "2026-11-02" / "live.pcap", 50, None)  # written just now: active
    make_file(root / "2026-11-02" / "notes.txt", 999, OLD)  # not a capture
    make_file(root / "2026-11-02" / "x.pcap.bak", 999, OLD)
    make_file(root / "top.pcap", 7, OLD - 60)
    with open(root / "2026-11-01" / "sparse.pcap", "wb") as sparse:
        sparse.truncate(10_000_000)
    os.utime(root / "2026-11-01" / "sparse.pcap", (OLD + 30, OLD + 30))

    outcome = scan(pool, root)
    summed = totals(outcome.records.values(), outcome.now_ns, 120 * 10**9)

    assert summed.files == 7
    assert summed.bytes == 1000 + 2000 + 300 + 4000 + 50 + 7 + 10_000_000
    assert summed.allocated_bytes < summed.bytes  # the sparse file takes (almost) no blocks
    assert summed.active_files == 1
    assert summed.oldest is not None and summed.oldest.path == "top.pcap"
    assert summed.newest is not None and summed.newest.path == "2026-11-02/live.pcap"
    by_name = {s.name: (s.files, s.bytes) for s in summed.subdirs}
    assert by_name == {".": (1, 7), "2026-11-01": (4, 10_003_300), "2026-11-02": (2, 4050)}
    assert summed.errors == ()
    assert set(outcome.records) == {"", "2026-11-01", "2026-11-01/deep", "2026-11-02"}


def test_parallel_scan_equals_in_process_walk(tmp_path: Path, pool: ScanPool) -> None:
    root = tmp_path / "pcap"
    for day in range(12):
        for hour in range(3):
            for n in range(5):
                make_file(root / f"d{day:02}" / f"h{hour}" / f"f{n}.pcap", day * 100 + hour * 10 + n, OLD + day)
    outcome = scan(pool, root)
    records, summed, _ = walk_totals(root, now_ns=outcome.now_ns)
    assert totals(outcome.records.values(), outcome.now_ns, 120 * 10**9) == summed
    assert all(outcome.records[p].same_content(r) for p, r in records.items())
    assert summed.files == 180


def test_symlink_loop_and_symlink_outside_root_are_not_followed(tmp_path: Path, pool: ScanPool) -> None:
    root = tmp_path / "pcap"
    outside = tmp_path / "outside"
    make_file(outside / "secret.pcap", 5000)
    make_file(root / "day" / "a.pcap", 10)
    os.symlink(root, root / "day" / "loop")  # a directory symlink back up: a loop if followed
    os.symlink(outside, root / "escape")
    os.symlink(outside / "secret.pcap", root / "day" / "link.pcap")
    os.symlink(root / "self.pcap", root / "self.pcap")  # a symlink to itself

    summed = totals(scan(pool, root).records.values(), time.time_ns(), 120 * 10**9)

    assert (summed.files, summed.bytes, summed.errors) == (1, 10, ())


def test_missing_root_is_a_clear_error(tmp_path: Path, pool: ScanPool) -> None:
    with pytest.raises(RootUnusable, match="No such file or directory"):
        scan(pool, tmp_path / "nope")


def test_files_deleted_while_the_scan_runs(tmp_path: Path, pool: ScanPool) -> None:
    """A deleter races the scan; the scan never fails and counts only files that existed."""
    root = tmp_path / "pcap"
    paths = [make_file(root / f"d{d}" / f"f{n}.pcap", 100) for d in range(20) for n in range(150)]
    stop = threading.Event()

    def delete() -> None:
        for path in paths[::2]:
            if stop.is_set():
                return
            path.unlink()
        shutil.rmtree(root / "d7")

    deleter = threading.Thread(target=delete)
    deleter.start()
    try:
        results = [totals(scan(pool, root).records.values(), time.time_ns(), 0) for _ in range(5)]
    finally:
        stop.set()
        deleter.join()
    for summed in results:
        assert summed.errors == ()
        assert 1400 <= summed.files <= 3000
        assert summed.bytes == summed.files * 100


def test_scan_past_its_deadline_raises_timeout(tmp_path: Path, pool: ScanPool) -> None:
    make_file(tmp_path / "pcap" / "a" / "x.pcap", 1)
    with pytest.raises(ScanTimeout):
        scan(pool, tmp_path / "pcap", deadline_s=-1)
    # the pool is still usable afterwards
    assert totals(scan(pool, tmp_path / "pcap").records.values(), time.time_ns(), 0).files == 1


def _walk_as_nobody(root: Path) -> tuple[int, list[tuple[str, str]]]:
    """The walk as uid/gid 65534; returns (files, errors)."""

    def walk() -> dict[str, object]:
        _, summed, _ = walk_totals(root)
        return {"files": summed.files, "errors": [[e.path, e.error] for e in summed.errors]}

    seen = as_nobody(walk)
    return seen["files"], [tuple(pair) for pair in seen["errors"]]  # type: ignore[misc]


def test_unreadable_directory_is_counted_and_named() -> None:
    """chmod 000 on one day; as root the walk runs in a child that drops to uid 65534."""
    folder = Path(tempfile.mkdtemp())
    try:
        folder.chmod(0o755)
        root = folder / "pcap"
        make_file(root / "open" / "a.pcap", 10)
        make_file(root / "closed" / "b.pcap", 10)
        for path in (root, root / "open", root / "closed"):
            path.chmod(0o755)
        (root / "open" / "a.pcap").chmod(0o644)
        (root / "closed").chmod(0)
        if os.geteuid() == 0:
            files, errors = _walk_as_nobody(root)
        else:
            _, summed, _ = walk_totals(root)
            files, errors = summed.files, [(e.path, e.error) for e in summed.errors]
        assert files == 1
        assert errors == [("closed", "Permission denied")]
    finally:
        (folder / "pcap" / "closed").chmod(0o755)
        shutil.rmtree(folder)


def test_other_filesystems_are_skipped_unless_cross_filesystems(tmp_path: Path, pool: ScanPool) -> None:
    root = tmp_path / "pcap"
    make_file(root / "local" / "a.pcap", 10)
    mount_point = root / "mounted"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "none", str(mount_point)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN): {mounted.stderr.strip()}")
    try:
        make_file(mount_point / "b.pcap", 20)
        kwargs = {"patterns": PATTERNS, "active_window_s": 120, "deadline": time.monotonic() + 60,
                  "cancelled": threading.Event()}
        staying = pool.scan(str(root), None, cross_filesystems=False, **kwargs)
        crossing = pool.scan(str(root), None, cross_filesystems=True, **kwargs)
        assert totals(staying.records.values(), time.time_ns(), 0).files == 1
        assert totals(crossing.records.values(), time.time_ns(), 0).files == 2
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


#: A program whose scan workers record the priority they import its main module at.
NICE_RECORDER = """
import os, sys, threading, time
from pathlib import Path
if __name__ == "__mp_main__":  # a spawned worker importing this script before its initializer
    Path(sys.argv[2], str(os.getpid())).write_text(str(os.getpriority(os.PRIO_PROCESS, 0)))
if __name__ == "__main__":
    from backends.pcap.scan import ScanPool, worker_priority
    pool = ScanPool(2)
    pool.scan(sys.argv[1], None, patterns=("*.pcap",), active_window_s=120, cross_filesystems=False,
              deadline=time.monotonic() + 60, cancelled=threading.Event())
    pool.close()
    print(worker_priority())
"""


def test_workers_start_at_their_low_priority(tmp_path: Path) -> None:
    """The workers' start-up (re-importing the program's main module) already runs niced,
    so it does not compete with the console's event loop; and they stay niced."""
    make_file(tmp_path / "pcap" / "a" / "x.pcap", 1)
    script, seen = tmp_path / "recorder.py", tmp_path / "seen"
    script.write_text(NICE_RECORDER)
    seen.mkdir()
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "pcap"), str(seen)], capture_output=True,
                          text=True, check=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    expected = int(done.stdout)
    recorded = [int(path.read_text()) for path in seen.iterdir()]
    assert expected == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 10)
    assert recorded and all(nice == expected for nice in recorded)


def test_pool_workers_keep_their_priority(tmp_path: Path, pool: ScanPool) -> None:
    import multiprocessing

    make_file(tmp_path / "pcap" / "a" / "x.pcap", 1)
    scan(pool, tmp_path / "pcap")
    workers = [child.pid for child in multiprocessing.active_children() if child.pid is not None]
    assert workers and all(os.getpriority(os.PRIO_PROCESS, pid) == worker_priority() for pid in workers)
