"""Shared fixtures: an app wired to real collectors over test-controlled collect functions."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from backends.actions import Outcome, Plan, Progress
from backends.catalog import PANEL_NAMES, PANELS
from backends.collector import CollectContext, Collector, CollectorGroup
from backends.host import HostInfo
from console.app import OpsConsoleApp, make_app
from console.audit import AuditLog
from console.config import Config
from panels.placeholder import PlaceholderPanel

#: 2026-11-23 10:00:00 UTC: a fixed clock keeps screenshots stable.
FIXED_NOW = 1795428000.0
HOST = HostInfo(hostname="web-1", user="oncall", uid=1000, boot_time=FIXED_NOW - 3 * 86400 - 4 * 3600)


class CountingCollect:
    """A collect function that counts its calls and returns (or raises) what it is told."""

    def __init__(self, value: Any = "ok") -> None:
        self.calls = 0
        self.value = value

    def __call__(self, context: CollectContext[Any]) -> Any:
        self.calls += 1
        if isinstance(self.value, BaseException):
            raise self.value
        return self.value


def group_of(collects: dict[str, Callable[[CollectContext[Any]], Any]], interval_s: float = 60.0) -> CollectorGroup:
    return CollectorGroup(
        {name: Collector(name, collects[name], interval_s=interval_s, timeout_s=5.0) for name in PANEL_NAMES}
    )


@pytest.fixture
def collects() -> dict[str, CountingCollect]:
    return {name: CountingCollect(value=f"{name}-value") for name in PANEL_NAMES}


@pytest.fixture
def audit_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "audit.log"


@pytest.fixture
def build_app(collects: dict[str, CountingCollect], audit_path: Path) -> Callable[..., OpsConsoleApp]:
    def build(*, read_only: bool = False, autostart: bool = False, clock: Callable[[], float] | None = None,
              lag_log: Path | None = None, config: Config | None = None) -> OpsConsoleApp:
        config = replace(config or Config(), read_only=read_only)
        return make_app(
            config,
            group_of(collects),  # type: ignore[arg-type]
            host=HOST,
            audit=AuditLog(audit_path),
            clock=clock or time.time,
            autostart=autostart,
            lag_log=lag_log,
            # The shell's tests feed test values, not panel data: plain panels render them.
            panels=[PlaceholderPanel(spec, n, clock or time.time) for n, spec in enumerate(PANELS, start=1)],
        )

    return build


@dataclass
class FileAction:
    """A real destructive action for tests: deletes one file, re-checking its inode first."""

    path: Path
    name: str = "test.delete"
    panel: str = "locks"
    block: threading.Event | None = None

    def plan(self) -> Plan:
        inode = self.path.stat().st_ino
        return Plan(action=self.name, target=str(self.path), title=f"Delete {self.path.name}",
                    lines=(f"inode {inode}",), audit={"inode": inode}, payload=inode)

    def execute(self, plan: Plan, progress: Progress, cancelled: threading.Event) -> Outcome:
        progress.start(1, "files")
        if self.block is not None:
            self.block.set()
            cancelled.wait(30)
        if cancelled.is_set():
            return Outcome(ok=False, message="cancelled before deleting", details={"deleted": 0})
        if self.path.stat().st_ino != plan.payload:
            return Outcome(ok=False, message="file was replaced; not deleted", details={"deleted": 0})
        self.path.unlink()
        progress.advance()
        return Outcome(ok=True, message=f"deleted {self.path.name}", details={"deleted": 1})
