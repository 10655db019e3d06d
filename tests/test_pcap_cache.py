"""The shared cache across real processes: one scan per host, stale-while-revalidate, damage."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from backends.collector import Collector
from backends.pcap.cache import CacheStore
from backends.pcap.scan import ScanTimeout
from backends.pcap.source import PcapCollector, PcapSource, refresh_early
from tests.pcap_helpers import context, make_file, settings_for

ROOT = Path(__file__).resolve().parent.parent

#: A reader in its own process: waits for the start file, collects once, prints serial and refreshing.
READER = """
import os, sys, time
from pathlib import Path
from backends.pcap.source import PcapSource
from tests.pcap_helpers import context, settings_for
root, cache, go = map(Path, sys.argv[1:4])
source = PcapSource(settings_for(root, cache))
(go.parent / f"ready-{os.getpid()}").touch()
while not go.exists():
    time.sleep(0.001)
value = source.collect(context())
print(value.scan.serial, value.cache.refreshing, value.files, flush=True)
source.close()
"""

#: A scanner that announces it started, then scans (and gets SIGKILLed by the test).
SCANNER = """
import sys
from pathlib import Path
from backends.pcap.source import PcapSource
from tests.pcap_helpers import context, settings_for
source = PcapSource(settings_for(Path(sys.argv[1]), Path(sys.argv[2])))
source.collect(context())
"""


def tree(root: Path, dirs: int = 30, per_dir: int = 100) -> Path:
    for d in range(dirs):
        for n in range(per_dir):
            make_file(root / f"d{d:03}" / f"f{n}.pcap", 10)
    return root


@pytest.fixture
def source(tmp_path: Path) -> Iterator[PcapSource]:
    source = PcapSource(settings_for(tree(tmp_path / "pcap", 5, 10), tmp_path / "cache"))
    yield source
    source.close()


def expire(store: CacheStore) -> int:
    """Make the cache look old; returns its scan serial."""
    doc, _ = store.load()
    assert doc is not None
    store.write(replace(doc, written_at=doc.written_at - 100_000))
    return doc.scan.serial


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_xfetch_refreshes_early_in_proportion_to_scan_time() -> None:
    assert not refresh_early(age_s=100, ttl_s=300, last_scan_s=10, draw=0.5)  # 100 + 6.9 < 300
    assert refresh_early(age_s=295, ttl_s=300, last_scan_s=10, draw=0.5)  # 295 + 6.9 >= 300
    assert not refresh_early(age_s=295, ttl_s=300, last_scan_s=0.1, draw=0.5)  # quick scans wait longer
    assert refresh_early(age_s=300, ttl_s=300, last_scan_s=0, draw=1.0)  # expired is always due
    assert refresh_early(age_s=1, ttl_s=300, last_scan_s=10, draw=1e-20)  # a rare early volunteer


def test_fresh_cache_is_served_without_scanning(source: PcapSource) -> None:
    first = source.collect(context())
    second = source.collect(context())
    assert (first.scan.serial, second.scan.serial) == (1, 1)
    assert second.files == 50 and second.cache is not None and not second.cache.refreshing


def test_eight_processes_on_an_expired_cache_run_one_scan(tmp_path: Path) -> None:
    root, cache, go = tree(tmp_path / "pcap"), tmp_path / "cache", tmp_path / "go"
    source = PcapSource(settings_for(root, cache))
    source.collect(context())
    source.close()
    serial = expire(source.store)
    readers = [
        subprocess.Popen([sys.executable, "-c", READER, str(root), str(cache), str(go)],
                         stdout=subprocess.PIPE, text=True, env=child_env())
        for _ in range(8)
    ]
    while len(list(tmp_path.glob("ready-*"))) < 8:  # all at the start line, then all at once
        time.sleep(0.01)
    go.touch()
    outputs = [reader.communicate(timeout=60)[0].split() for reader in readers]
    assert all(reader.returncode == 0 for reader in readers)
    doc, _ = source.store.load()
    assert doc is not None and doc.scan.serial == serial + 1  # exactly one scan
    for out_serial, refreshing, files in outputs:
        assert files == "3000"
        # everyone got an answer: the new result, or the old one marked as being refreshed
        assert (int(out_serial), refreshing) in ((serial + 1, "False"), (serial, "True"))


def test_reader_during_another_process_scan_gets_stale_value_at_once(source: PcapSource) -> None:
    source.collect(context())
    expire(source.store)
    with source.store.scan_lock(timeout=0) as mine:  # another "process" is scanning
        assert mine
        source.store.mark_rebuilding(1234.5)
        value = source.collect(context())
        again = source.collect(context())
    assert value.cache is not None and again.cache is not None
    assert value.cache.refreshing and value.cache.rebuilder is not None
    assert (value.cache.rebuilder.pid, value.cache.rebuilder.since) == (os.getpid(), 1234.5)
    assert (value.cache.stale_served, again.cache.stale_served) == (1, 2)
    assert value.scan.serial == 1
    fresh = source.collect(context())  # the lock is free again: this reader scans
    assert fresh.scan.serial == 2 and fresh.cache is not None and fresh.cache.stale_served == 0


async def test_a_console_starting_on_an_expired_cache_shows_it_while_it_rescans(source: PcapSource) -> None:
    """Stale-while-revalidate from the first collection: the console that wins the scan lock
    publishes the cached result (with its age) before its own scan, not "waiting" for seconds."""
    source.collect(context())
    serial = expire(source.store)
    collector = PcapCollector(source, interval_s=60, timeout_s=60)
    seen = []
    collector.subscribe(seen.append)
    final = await collector.refresh()
    await collector.stop()
    first = next(snap for snap in seen if snap.value is not None)
    assert first.refreshing and first.value.scan.serial == serial
    assert first.value.cache is not None and first.value.cache.age_s > 99_000
    assert first.taken_at == first.value.cache.written_at  # the status line shows the cache's age
    assert final.value is not None and final.value.scan.serial == serial + 1 and not final.refreshing


async def test_a_console_starting_with_its_root_gone_reports_it_and_does_not_raise(source: PcapSource) -> None:
    source.collect(context())
    shutil.rmtree(source.settings.root)
    collector = PcapCollector(source, interval_s=60, timeout_s=60)
    snap = await collector.refresh()
    await collector.stop()
    assert snap.error is not None and "No such file or directory" in snap.error


def test_without_cache_a_reader_waits_for_the_running_scan(source: PcapSource, tmp_path: Path) -> None:
    other = PcapSource(source.settings)
    release = threading.Event()

    def other_process_scans() -> None:
        with other.store.scan_lock(timeout=0):
            release.set()
            other._refresh_locked(context(), time.time())

    thread = threading.Thread(target=other_process_scans)
    thread.start()
    release.wait()
    value = source.collect(context())
    thread.join()
    other.close()
    assert value.scan.serial == 1 and value.files == 50  # its result, not a second scan


def test_corrupt_truncated_and_foreign_caches_are_discarded_with_a_warning(source: PcapSource) -> None:
    source.collect(context())
    good = source.store.path.read_bytes()
    for damage in (b"{not json", good[: len(good) // 2], good.replace(b'"version":1', b'"version":99'),
                   json.dumps({"format": "something else"}).encode()):
        source.store.path.write_bytes(damage)
        doc, warning = source.store.load()
        assert doc is None and warning is not None and "discarded" in warning
        value = source.collect(context())
        assert value.cache is not None and value.cache.warning == warning
        assert value.files == 50  # rescanned and rewritten
        assert source.store.load()[0] is not None


async def test_scan_timeout_keeps_previous_value_and_records_error(source: PcapSource) -> None:
    collector = Collector("pcap", source.collect, interval_s=60, timeout_s=60)
    first = await collector.refresh()
    collector.timeout_s = 1e-6  # the next scan cannot finish in time
    late = await collector.refresh(force=True)
    await collector.stop()  # lets the abandoned scan notice and unwind
    assert late.error is not None and "timed out" in late.error
    assert late.value is first.value and first.value is not None
    with source.store.scan_lock(timeout=0) as mine:
        assert mine  # the abandoned scan released the lock
    assert not source.store.rebuilder_path.exists()
    doc, _ = source.store.load()
    assert doc is not None and doc.scan.serial == 1  # the cache still holds the good scan
    with pytest.raises(ScanTimeout):
        source.collect(context(timeout_s=-1, force=True))


def test_sigkill_mid_scan_leaves_no_lock_and_no_partial_cache(tmp_path: Path) -> None:
    root, cache = tree(tmp_path / "pcap", 40, 200), tmp_path / "cache"
    store = CacheStore(cache, str(root))
    scanner = subprocess.Popen([sys.executable, "-c", SCANNER, str(root), str(cache)], env=child_env())
    try:
        while not store.rebuilder_path.exists():
            assert scanner.poll() is None, "scanner ended before it was killed"
            time.sleep(0.001)
        scanner.send_signal(signal.SIGKILL)
        scanner.wait()
    finally:
        if scanner.poll() is None:
            scanner.kill()
    # The kernel released the dead scanner's flock. Within a moment, not at once: a worker
    # being spawned at the kill holds a copy of the descriptor until its exec closes it.
    with store.scan_lock(timeout=2) as mine:
        assert mine
    assert not store.path.exists()  # no partial cache
    assert store.load() == (None, None)
    assert store.rebuilder() is None  # the marker names a dead pid: nobody is scanning
    source = PcapSource(settings_for(root, cache))
    try:
        assert source.collect(context()).files == 8000
    finally:
        source.close()


def cmdline(pid: int) -> str:
    """The process's command line; empty once it is gone (or a zombie)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return ""


def test_scan_workers_exit_when_their_console_is_sigkilled(tmp_path: Path) -> None:
    root, cache = tree(tmp_path / "pcap", 3, 3), tmp_path / "cache"
    holder = subprocess.Popen(
        [sys.executable, "-c", SCANNER + "import multiprocessing, time\n"
         "print(*[p.pid for p in multiprocessing.active_children()], flush=True)\ntime.sleep(60)\n",
         str(root), str(cache)], stdout=subprocess.PIPE, text=True, env=child_env())
    assert holder.stdout is not None
    workers = [int(pid) for pid in holder.stdout.readline().split()]
    assert workers
    holder.kill()
    holder.wait()
    deadline = time.monotonic() + 20
    while any("spawn_main" in cmdline(pid) for pid in workers):
        assert time.monotonic() < deadline, f"scan workers {workers} outlived their console"
        time.sleep(0.1)


def test_growth_and_time_to_full_from_the_history_of_scans(tmp_path: Path) -> None:
    """Two scans half an hour apart (a test clock) with 1 MB written between them: 2 MB/h."""
    from backends.pcap.trend import growth_bytes_per_hour, seconds_to_full

    root = tmp_path / "pcap"
    make_file(root / "d" / "a.pcap", 1000)
    now = [1_800_000_000.0]
    source = PcapSource(settings_for(root, tmp_path / "cache"), clock=lambda: now[0])
    try:
        first = source.collect(context())
        assert first.growth_bytes_per_hour is None and first.seconds_to_full is None  # one point: no trend
        make_file(root / "d" / "b.pcap", 2**20)
        now[0] += 1800
        second = source.collect(context(force=True))
    finally:
        source.close()
    assert [b for _, b in second.history] == [1000, 1000 + 2**20]
    assert second.growth_bytes_per_hour == pytest.approx(2 * 2**20)
    st = os.statvfs(root)
    assert second.disk.total == st.f_blocks * st.f_frsize
    assert abs(second.disk.free - st.f_bavail * st.f_frsize) < 64 * 2**20  # other writers on this filesystem
    assert second.seconds_to_full == pytest.approx(second.disk.free / (2 * 2**20 / 3600))
    # shrinking or flat captures never "fill the disk"
    assert growth_bytes_per_hour([(0.0, 5000), (3600.0, 4000)], 3600.0) == pytest.approx(-1000)
    assert seconds_to_full(second.disk, -1000.0) is None and seconds_to_full(second.disk, 0.0) is None
    # only the last 6 h count, and points a moment apart say nothing
    assert growth_bytes_per_hour([(0.0, 0), (30.0, 10**9)], 30.0) is None
    assert growth_bytes_per_hour([(0.0, 10**12), (7 * 3600.0, 0), (8 * 3600.0, 3600)], 8 * 3600.0) == pytest.approx(3600)
