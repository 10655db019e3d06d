"""The demo world's lock activity (issue 6, item 6), through the real collector."""

from __future__ import annotations

from backends.collector import Collector
from backends.locks.collect import make_locks_collect
from backends.locks.model import LockKind, LockVerdict
from console.config import Config
from console.demo.world import DemoWorld


async def test_demo_world_has_a_held_lock_with_a_waiter_stale_locks_and_a_hazardous_repo():
    with DemoWorld() as world:
        config = world.apply(Config())
        collect = make_locks_collect(config.locks.paths, config.locks.repos, stale_after=config.locks.stale_after)
        collector = Collector("locks", collect, interval_s=60, timeout_s=30)
        try:
            snapshot = await collector.refresh()
        finally:
            await collector.stop()
    assert snapshot.ok, snapshot.error
    by_name = {entry.path.rsplit("/", 1)[-1]: entry for entry in snapshot.value.locks}
    sync = by_name["status-sync.lock"]
    assert (sync.kind, sync.verdict, len(sync.waiters)) == (LockKind.OPSCONSOLE, LockVerdict.HELD, 1)
    assert sync.holder.command == "scripts/slurm_dashboard_sync.sh --push"
    pid_lock = by_name["dashboard_sync.lock"]
    assert (pid_lock.kind, pid_lock.verdict, pid_lock.holder.alive) == (LockKind.PIDFILE, LockVerdict.STALE, False)
    index = by_name["index.lock"]
    assert (index.kind, index.verdict) == (LockKind.GIT, LockVerdict.STALE)
    repo, = snapshot.value.repos
    assert (repo.stashes, repo.in_progress, repo.unmerged, repo.ahead, repo.behind) == (2, "rebase", 1, 1, 1)
    assert repo.error is None
