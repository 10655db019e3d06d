"""The PCAP collector: shared cache first, at most one scan per host, stale-while-revalidate.

A collection reads the shared cache. If it is fresh (and XFetch does not pick this read
for an early refresh) that is the answer. Otherwise it tries the root's scan lock
without waiting: the winner re-reads the cache (someone may have just finished) and
scans; everyone else gets the cached result at once, marked with who is rebuilding it.
Only when there is no cache at all does a reader wait for the running scan, bounded by
the collection's deadline. So any number of consoles and `snapshot` calls run one scan.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backends.collector import CollectContext, Collector, Snapshot
from backends.pcap.cache import HISTORY_POINTS, CacheDoc, CacheStore
from backends.pcap.model import (
    CacheInfo,
    PcapSettings,
    PcapStats,
    Rebuilder,
    ScanInfo,
    ScanMode,
)
from backends.pcap.scan import ScanPool, totals
from backends.pcap.trend import (
    add_point,
    disk_usage,
    growth_bytes_per_hour,
    seconds_to_full,
)

#: XFetch's beta: > 1 refreshes earlier, < 1 later.
XFETCH_BETA = 1.0


def refresh_early(age_s: float, ttl_s: float, last_scan_s: float, draw: float, beta: float = XFETCH_BETA) -> bool:
    """XFetch: refresh when ``age - last_scan * beta * ln(draw)`` reaches the TTL.

    ``draw`` is uniform in (0, 1]. The longer the last scan took, the earlier some reader
    volunteers, so the cache is usually renewed before anyone meets it expired.
    """
    return age_s - last_scan_s * beta * math.log(draw) >= ttl_s


class PcapSource:
    """The collect function of the PCAP panel, with its cache store and warm worker pool."""

    def __init__(
        self,
        settings: PcapSettings,
        *,
        pool: ScanPool | None = None,
        clock: Callable[[], float] = time.time,
        draw: Callable[[], float] = lambda: 1.0 - random.random(),
    ) -> None:
        self.settings = settings
        self.root = str(settings.root)
        self.store = CacheStore(settings.cache_dir, self.root)
        self.pool = pool or ScanPool(settings.workers)
        self._clock = clock
        self._draw = draw

    def collect(self, context: CollectContext[PcapStats]) -> PcapStats:
        requested_at = self._clock()
        doc, warning = self.store.load()
        if doc is not None and not context.force and not self._due(doc, requested_at):
            return self._value(doc, warning)
        with self.store.scan_lock(timeout=0) as mine:
            if mine:
                return self._refresh_locked(context, requested_at)
        rebuilder = self.store.rebuilder()
        if doc is not None and not context.force:
            if requested_at - doc.written_at >= self.settings.ttl:
                self.store.note_stale_served()
            return self._value(doc, warning, rebuilder=rebuilder, refreshing=True)
        # Nothing to show (or a forced refresh): wait for the scan that is running.
        with self.store.scan_lock(timeout=context.remaining_s(), cancelled=context.cancelled) as mine:
            if not mine:
                raise TimeoutError(
                    f"waited {self.settings.scan_timeout:g} s for the scan by pid "
                    f"{rebuilder.pid if rebuilder else '?'}"
                )
            return self._refresh_locked(context, requested_at)

    def cached(self) -> PcapStats | None:
        """The shared cache as it stands, whatever its age, without scanning or waiting: what
        a console starting on an expired cache shows while its first collection runs."""
        doc, warning = self.store.load()
        if doc is None:
            return None
        rebuilder = self.store.rebuilder()
        return self._value(doc, warning, rebuilder=rebuilder, refreshing=rebuilder is not None)

    def _due(self, doc: CacheDoc, now: float) -> bool:
        age = now - doc.written_at
        return refresh_early(age, self.settings.ttl, doc.scan.duration_s, self._draw())

    def _refresh_locked(self, context: CollectContext[PcapStats], requested_at: float) -> PcapStats:
        """Holding the lock: use a result written since we asked, else scan and write one."""
        doc, warning = self.store.load()
        if doc is not None and doc.written_at >= requested_at:
            return self._value(doc, warning)
        if doc is not None and not context.force and not self._due(doc, self._clock()):
            return self._value(doc, warning)
        doc = self._scan(doc, context)
        self.store.write(doc)
        return self._value(doc, warning)

    def _scan(self, previous: CacheDoc | None, context: CollectContext[PcapStats]) -> CacheDoc:
        settings = self.settings
        started = self._clock()
        self.store.mark_rebuilding(started)
        full = previous is None or previous.scans_since_full + 1 >= settings.full_rescan_every
        began = time.monotonic()
        outcome = self.pool.scan(
            self.root,
            None if full else previous.records,
            patterns=settings.patterns,
            active_window_s=settings.active_window_s,
            cross_filesystems=settings.cross_filesystems,
            deadline=context.deadline,
            cancelled=context.cancelled,
        )
        duration = time.monotonic() - began
        summed = totals(outcome.records.values(), outcome.now_ns, int(settings.active_window_s * 1e9))
        written_at = self._clock()
        history = previous.history if previous is not None else ()
        return CacheDoc(
            root=self.root,
            written_at=written_at,
            scan=ScanInfo(
                mode=ScanMode.FULL if full else ScanMode.INCREMENTAL,
                dirs=len(outcome.records),
                by_pid=os.getpid(),
                started_at=started,
                duration_s=duration,
                serial=(previous.scan.serial + 1) if previous is not None else 1,
                rescanned_dirs=outcome.read,
            ),
            now_ns=outcome.now_ns,
            scans_since_full=0 if full else previous.scans_since_full + 1,  # type: ignore[union-attr]
            records=outcome.records,
            history=add_point(history, written_at, summed.bytes, HISTORY_POINTS),
        )

    def _value(
        self, doc: CacheDoc, warning: str | None, *, rebuilder: Rebuilder | None = None, refreshing: bool = False
    ) -> PcapStats:
        now = self._clock()
        summed = totals(doc.records.values(), doc.now_ns, int(self.settings.active_window_s * 1e9))
        disk = disk_usage(self.root)
        growth = growth_bytes_per_hour(doc.history, now)
        return PcapStats(
            root=self.root,
            files=summed.files,
            bytes=summed.bytes,
            allocated_bytes=summed.allocated_bytes,
            oldest=summed.oldest,
            newest=summed.newest,
            active_files=summed.active_files,
            scan=doc.scan,
            disk=disk,
            growth_bytes_per_hour=growth,
            seconds_to_full=seconds_to_full(disk, growth),
            errors=summed.errors,
            subdirs=summed.subdirs,
            history=doc.history,
            cache=CacheInfo(
                path=str(self.store.path),
                written_at=doc.written_at,
                age_s=max(0.0, now - doc.written_at),
                ttl_s=self.settings.ttl,
                last_scan_s=doc.scan.duration_s,
                refreshing=refreshing,
                rebuilder=rebuilder,
                stale_served=self.store.stale_served(),
                warning=warning,
            ),
        )

    def close(self) -> None:
        self.pool.close()


class NotConfigured(Exception):
    """``[pcap] root`` is not set: said plainly in the status line and in `snapshot --json`."""


def _not_configured(context: CollectContext[PcapStats]) -> PcapStats:
    raise NotConfigured("PCAP panel not configured: set [pcap] root in the config file")


class PcapCollector(Collector[PcapStats]):
    """The collector runtime plus the source's worker processes, which stop with it."""

    def __init__(self, source: PcapSource, *, interval_s: float, timeout_s: float) -> None:
        super().__init__("pcap", source.collect, interval_s=interval_s, timeout_s=timeout_s)
        self.source = source

    async def refresh(self, *, force: bool = False) -> Snapshot[PcapStats]:
        """Before the first collection, publish the shared cache as it is (stale-while-revalidate).

        Without this a console started on an expired cache that wins the scan lock would
        show nothing until its own scan ends (seconds on a large tree); with it the panel
        shows the last result at once, with its age, while the collection runs.
        """
        if self.snapshot.value is None and self.snapshot.taken_at is None:
            try:
                cached = await asyncio.to_thread(self.source.cached)
            except Exception:  # noqa: BLE001 - root gone, say: the collection below reports it
                cached = None
            if cached is not None and cached.cache is not None and self.snapshot.value is None:
                # The runtime's own publish: subscribers see it like any other snapshot.
                self._publish(value=cached, taken_at=cached.cache.written_at, refreshing=True,
                              generation=self.snapshot.generation + 1)
        return await super().refresh(force=force)

    async def stop(self) -> None:
        await super().stop()
        await asyncio.to_thread(self.source.close)


def pcap_collector(pcap: Any, default_cache_dir: Path) -> Collector[PcapStats]:
    """The panel's collector from the ``[pcap]`` config section (the source's collect function)."""
    if pcap.root is None:
        return Collector("pcap", _not_configured, interval_s=pcap.interval, timeout_s=pcap.scan_timeout)
    source = PcapSource(PcapSettings.of(pcap, default_cache_dir))
    return PcapCollector(source, interval_s=pcap.interval, timeout_s=pcap.scan_timeout)
