"""`opsconsole sessions simulate` and the demo world's session activity, as real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backends.sessions import Registry, SessionState
from console.demo.world import DemoWorld
from tests.sessions_helpers import check_consistency, url_fixture

url = url_fixture  # pytest finds the fixture here

ROOT = Path(__file__).parent.parent


def opsconsole(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "console", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "OPSCONSOLE_CONFIG": "/nonexistent/opsconsole.toml"}, timeout=120,
                          check=False)


def test_simulate_drives_legal_transitions_from_several_processes(url: str):
    result = opsconsole("sessions", "simulate", "--url", url, "--workers", "3", "--rate", "60", "--duration", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("3 worker(s), ") and " transitions (" in result.stdout
    with Registry.open(url) as registry:
        snapshot = registry.snapshot()
        assert snapshot.counts[SessionState.ACTIVE] > 0 and snapshot.cursor > 20
        assert {e.actor.split(" pid ")[0] for e in registry.events_since(0)} <= {
            "simulate worker 0", "simulate worker 1", "simulate worker 2"}
        assert check_consistency(registry) == []


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (("--workers", "0"), 2, "--workers must be at least 1, got '0'"),
        (("--rate", "fast"), 2, "--rate must be a number, got 'fast'"),
        (("--duration", "-1"), 2, "--duration must be at least 0.001"),
        ((), 2, "no registry: give --url or set [sessions] url"),
        (("--url", "https://app.example/api"), 2, "is not a registry URL"),
        (("--url", "sqlite:////no/such/dir/s.db"), 1, "cannot open sqlite:////no/such/dir/s.db: directory /no/such/dir does not exist"),
    ],
)
def test_simulate_bad_input_is_one_line(args, status, message):
    result = opsconsole("sessions", "simulate", *args)
    assert result.returncode == status
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_the_demo_world_has_live_sessions_in_every_state():
    with DemoWorld() as world:
        assert "sessions" in world.helpers
        db = world.path / "sessions.db"
        deadline = time.monotonic() + 20
        while not db.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        with Registry.open(world.sessions_url) as registry:
            while registry.cursor() < 30 and time.monotonic() < deadline:
                time.sleep(0.2)
            first = registry.cursor()
            counts = registry.snapshot().counts
            assert all(counts[state] >= 1 for state in SessionState), counts
            time.sleep(1.5)
            assert registry.cursor() > first  # still moving
