"""An incremental rescan equals a full scan after any mutation of the tree.

Directories start with old mtimes, so only those a mutation touched are re-read (the
tests check that, too: an "incremental" rescan that re-reads everything would pass the
equality trivially). Appends go to files in the active window, the ones a capture daemon
writes; an append to an old file in an untouched directory is the drift that
``full_rescan_every`` corrects (README).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backends.pcap import scan as pcap_scan
from backends.pcap.scan import ScanPool, totals
from tests.pcap_helpers import OLD, age_dirs, make_file, walk_totals


def build_tree(root: Path) -> None:
    for day in range(4):
        for hour in range(3):
            for n in range(4):
                make_file(root / f"day{day}" / f"h{hour}" / f"f{n}.pcap", 100 + n, OLD + day * 3600 + n)
    make_file(root / "day3" / "h2" / "live.pcap", 10, None)  # being written: in the active window
    make_file(root / "top.pcap", 5, OLD)
    age_dirs(root)


def append(path: Path, count: int) -> None:
    with open(path, "ab") as file:
        file.write(b"x" * count)


def assert_same(root: Path, previous) -> int:
    """Incremental and full agree (records and totals); returns how many dirs the incremental read."""
    now_ns = time.time_ns()
    incremental, inc_totals, read = walk_totals(root, previous, now_ns=now_ns)
    full, full_totals, _ = walk_totals(root, now_ns=now_ns)
    assert inc_totals == full_totals
    assert incremental.keys() == full.keys()
    assert all(incremental[path].same_content(full[path]) for path in full)
    return read


def test_unchanged_tree_reads_no_directory(tmp_path: Path) -> None:
    build_tree(tmp_path)
    records, _, _ = walk_totals(tmp_path)
    assert assert_same(tmp_path, records) == 0


def test_each_kind_of_mutation(tmp_path: Path) -> None:
    build_tree(tmp_path)
    records, _, _ = walk_totals(tmp_path)
    mutations = [
        lambda: make_file(tmp_path / "day1" / "h0" / "new.pcap", 77, None),  # file added
        lambda: (tmp_path / "day0" / "h1" / "f2.pcap").unlink(),  # file removed
        lambda: append(tmp_path / "day3" / "h2" / "live.pcap", 500),  # appended
        lambda: make_file(tmp_path / "day9" / "n" / "a.pcap", 3, None),  # directory added
        lambda: shutil.rmtree(tmp_path / "day2" / "h0"),  # directory removed
        lambda: (tmp_path / "day1" / "h2").rename(tmp_path / "day0" / "moved"),  # renamed into another
    ]
    for mutate in mutations:
        mutate()
        read = assert_same(tmp_path, records)
        assert 0 < read < 10  # only the touched directories were read again
        age_dirs(tmp_path)
        records, _, _ = walk_totals(tmp_path)


@pytest.mark.parametrize("inline_budget", [64, 0])  # in this process; and falling back to the workers
def test_incremental_through_the_worker_pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, inline_budget: int) -> None:
    monkeypatch.setattr(pcap_scan, "INLINE_READ_BUDGET", inline_budget)
    build_tree(tmp_path)
    pool = ScanPool(2)
    try:
        def scan(previous=None):
            return pool.scan(str(tmp_path), previous, patterns=("*.pcap",), active_window_s=120,
                             cross_filesystems=False, deadline=time.monotonic() + 60, cancelled=threading.Event())

        first = scan()
        make_file(tmp_path / "day2" / "h1" / "added.pcap", 1000, None)
        (tmp_path / "day0").rename(tmp_path / "day0-renamed")
        again = scan(first.records)
        full = scan()
        window = 120 * 10**9
        assert totals(again.records.values(), again.now_ns, window) == totals(full.records.values(), again.now_ns, window)
        assert again.read < full.read
    finally:
        pool.close()


MUTATION = st.sampled_from(["add", "remove", "append", "mkdir", "rmdir", "rename"])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(st.tuples(MUTATION, st.integers(0, 10_000)), min_size=1, max_size=6))
def test_random_mutations(steps: list[tuple[str, int]]) -> None:
    root = Path(tempfile.mkdtemp())
    try:
        build_tree(root)
        records, _, _ = walk_totals(root)
        for kind, pick in steps:
            dirs = sorted(p for p in root.rglob("*") if p.is_dir())
            files = sorted(p for p in root.rglob("*.pcap"))
            live = [p for p in files if p.stat().st_mtime > time.time() - 60]
            if kind == "add" and dirs:
                make_file(dirs[pick % len(dirs)] / f"n{pick}.pcap", pick % 500, None)
            elif kind == "remove" and files:
                files[pick % len(files)].unlink()
            elif kind == "append" and live:
                append(live[pick % len(live)], pick % 300 + 1)
            elif kind == "mkdir" and dirs:
                make_file(dirs[pick % len(dirs)] / f"sub{pick}" / "a.pcap", 9, None)
            elif kind == "rmdir" and dirs:
                shutil.rmtree(dirs[pick % len(dirs)])
            elif kind == "rename" and len(dirs) > 1:
                source = dirs[pick % len(dirs)]
                target = root / f"renamed{pick}"
                if not target.exists():
                    source.rename(target)
        assert_same(root, records)
    finally:
        shutil.rmtree(root)
