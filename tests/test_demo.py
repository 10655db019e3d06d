"""The demo world: real helper processes, sockets, files and signals.

Waits are bounded polls on behaviour (a file appears, a process is gone), not sleeps
standing in for "long enough"; the one fixed wait shows a negative (no restart past
the limit) by letting supervisor passes happen.
"""

from __future__ import annotations

import fcntl
import os
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import psutil
import pytest

from console.demo import ports as demo_ports
from console.demo import world as demo
from console.demo.helper import LOCK_NAME, MARKER, remove_world
from console.demo.world import DemoError, DemoWorld, HelperSpec, default_helpers

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")

# A console stand-in for the tests that kill the console: enters a world, reports it,
# and waits to be signalled. "exit-on-signal" installs the handler the CLI must install.
CONSOLE_SCRIPT = """
import signal, sys, threading
from console.demo.world import DemoWorld
if sys.argv[1] == "exit-on-signal":
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda signum, frame: sys.exit(128 + signum))
with DemoWorld() as world:
    print(world.path, world.helpers["activity"].pid, flush=True)
    threading.Event().wait(60)
"""


def wait_for(check: Callable[[], T], what: str, timeout_s: float = 10.0) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` if it never does."""
    deadline = time.monotonic() + timeout_s
    while not (result := check()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.05)
    return result


def is_gone(proc: psutil.Process) -> bool:
    """True once the process has exited (a zombie nobody reaped yet counts as gone)."""
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def can_connect(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
    except OSError:
        return False
    return True


def pcap_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*.pcap"))


@pytest.fixture
def world() -> Iterator[DemoWorld]:
    with DemoWorld() as entered:
        yield entered


@dataclass(frozen=True, slots=True)
class ConsoleRun:
    """A console stand-in process, the world it entered and that world's helper."""

    proc: subprocess.Popen[str]
    world: Path
    helper: psutil.Process


@pytest.fixture
def start_console(tmp_path: Path) -> Iterator[Callable[[str], ConsoleRun]]:
    """Start console stand-ins in a given mode; kills and cleans up whatever is left after."""
    started: list[ConsoleRun] = []
    errors = tmp_path / "console.err"

    def start(mode: str) -> ConsoleRun:
        with open(errors, "w") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-c", CONSOLE_SCRIPT, mode],
                cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True,
            )
        assert proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            ready = selector.select(10.0)
        line = proc.stdout.readline() if ready else ""
        if not line:
            proc.kill()
            proc.wait()
            pytest.fail(f"the console did not report its world: {errors.read_text()}")
        world, pid = line.split()
        started.append(ConsoleRun(proc, Path(world), psutil.Process(int(pid))))
        return started[-1]

    yield start
    for run in started:
        run.proc.kill()
        run.proc.wait()
        if not is_gone(run.helper):
            run.helper.kill()
        remove_world(run.world, run.proc.pid)


def test_enter_creates_marked_world_with_live_helper(world: DemoWorld) -> None:
    assert world.path.is_dir()
    assert world.path.name.startswith("opsconsole-demo-")
    assert (world.path / MARKER).read_text().strip() == str(os.getpid())
    for sub in (world.pcap_root, world.locks_dir, world.cache_dir):
        assert sub.is_dir()
    assert world.sessions_url == f"sqlite:///{world.path}/sessions.db"
    assert {"activity", "ports"} <= set(world.helpers)  # each panel's issue adds its helper
    assert world.helpers["activity"].poll() is None
    assert set(world.restarts.values()) == {0}


def test_listener_accepts_connections(world: DemoWorld) -> None:
    with socket.create_connection(("127.0.0.1", world.port), timeout=5.0) as conn:
        # The helper accepts and closes: we read end-of-stream.
        assert conn.recv(1) == b""


def test_live_capture_appears_and_grows(world: DemoWorld) -> None:
    first = wait_for(lambda: next(world.pcap_root.rglob("live-*.pcap"), None), "a capture file")
    assert first.name.startswith("live-")
    header = struct.unpack("<IHHiIII", first.read_bytes()[:24])
    # magic, version 2.4, thiszone, sigfigs, snaplen, linktype Ethernet
    assert header == (0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    before = pcap_bytes(world.pcap_root)
    wait_for(lambda: pcap_bytes(world.pcap_root) > before, "the live capture to grow")


def test_lock_file_holds_helper_pid_and_is_flocked(world: DemoWorld) -> None:
    lock = world.locks_dir / LOCK_NAME
    assert lock.read_text().strip() == str(world.helpers["activity"].pid)
    fd = os.open(lock, os.O_RDONLY)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)


def test_exit_removes_world_and_stops_helper() -> None:
    with DemoWorld() as world:
        path = world.path
        helper = psutil.Process(world.helpers["activity"].pid)
    assert not path.exists()
    assert is_gone(helper)


def test_a_world_is_entered_once(world: DemoWorld) -> None:
    with pytest.raises(DemoError):
        world.__enter__()
    world.__exit__(None, None, None)
    with pytest.raises(DemoError):
        world.__enter__()


def test_keyboard_interrupt_inside_with_still_cleans_up() -> None:
    with pytest.raises(KeyboardInterrupt), DemoWorld() as world:
        path = world.path
        helper = psutil.Process(world.helpers["activity"].pid)
        raise KeyboardInterrupt
    assert not path.exists()
    assert is_gone(helper)


def test_supervisor_restarts_killed_helper_on_same_port(world: DemoWorld) -> None:
    old = world.helpers["activity"]
    port = world.port
    os.kill(old.pid, signal.SIGKILL)
    new = wait_for(
        lambda: (proc := world.helpers["activity"]).pid != old.pid and proc, "a restarted helper"
    )
    assert world.restarts["activity"] == 1
    lock = world.locks_dir / LOCK_NAME
    wait_for(lambda: lock.read_text().strip() == str(new.pid), "the new helper to take the lock")
    wait_for(lambda: can_connect(port), "the restarted listener on the same port")
    assert world.port == port


def test_supervisor_gives_up_after_max_restarts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "MAX_RESTARTS", 1)
    monkeypatch.setattr(demo, "SUPERVISE_EVERY_S", 0.05)
    with DemoWorld() as world:
        first = world.helpers["activity"]
        first.kill()
        second = wait_for(
            lambda: (proc := world.helpers["activity"]).pid != first.pid and proc, "a restart"
        )
        second.kill()
        second.wait(timeout=10)
        # Twenty supervisor passes: a negative can only be shown by letting them happen.
        time.sleep(20 * demo.SUPERVISE_EVERY_S)
        assert world.helpers["activity"] is second
        assert world.restarts["activity"] == 1


def test_helper_sigterm_with_console_alive_leaves_world(world: DemoWorld) -> None:
    helper = world.helpers["activity"]
    helper.terminate()
    assert helper.wait(timeout=10) == 0
    assert (world.path / MARKER).exists()
    assert (world.path / "port").exists()


def test_helper_removes_world_when_console_is_sigkilled(
    start_console: Callable[[str], ConsoleRun],
) -> None:
    run = start_console("plain")
    assert (run.world / MARKER).read_text().strip() == str(run.proc.pid)
    run.proc.kill()
    run.proc.wait(timeout=10)
    wait_for(lambda: is_gone(run.helper), "the orphaned helper to exit")
    wait_for(lambda: not run.world.exists(), f"the orphaned helper to remove {run.world}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_signal_handler_raising_systemexit_cleans_up(
    start_console: Callable[[str], ConsoleRun], signum: signal.Signals
) -> None:
    run = start_console("exit-on-signal")
    run.proc.send_signal(signum)
    assert run.proc.wait(timeout=10) == 128 + signum
    assert not run.world.exists()
    assert is_gone(run.helper)


def test_apply_points_config_at_world(world: DemoWorld) -> None:
    if not (ROOT / "console" / "config.py").exists():
        pytest.skip("console/config.py is not written yet")
    from console.config import Config

    base = Config()
    config = world.apply(base)
    assert config.pcap.root == world.pcap_root
    assert config.pcap.cache_dir == world.cache_dir
    assert config.sessions.url == world.sessions_url
    assert config.ports.watch == (world.port, *demo_ports.watched_ports(world.path))
    assert config.locks.paths == (f"{world.locks_dir}/*", f"{world.path}/repo/.git/*.lock")
    assert config.locks.repos == (world.path / "repo",)
    assert (config.read_only, config.audit_log, config.keys) == (
        base.read_only, base.audit_log, base.keys
    )


def test_world_without_marker_is_not_deleted() -> None:
    with DemoWorld() as world:
        path = world.path
        helper = psutil.Process(world.helpers["activity"].pid)
        (path / MARKER).unlink()
    try:
        assert path.is_dir()
        assert is_gone(helper)
    finally:
        shutil.rmtree(path)


def test_remove_world_needs_a_marker_naming_the_owner(tmp_path: Path) -> None:
    world = tmp_path / "world"
    (world / "pcap").mkdir(parents=True)
    (world / MARKER).write_text(f"{os.getpid()}\n")
    assert not remove_world(world, os.getpid() + 1)
    assert (world / "pcap").is_dir()
    assert remove_world(world, os.getpid())
    assert not world.exists()


def test_default_helpers_run_this_codebase_with_the_console_as_parent(tmp_path: Path) -> None:
    specs = {spec.name: spec for spec in default_helpers(tmp_path)}
    common = ("--dir", str(tmp_path), "--parent", str(os.getpid()))
    assert specs["activity"] == HelperSpec(
        "activity", (sys.executable, "-m", "console.demo.helper", "activity", *common)
    )
    assert specs["ports"] == HelperSpec("ports", (sys.executable, "-m", "console.demo.ports", *common))
    assert specs["locks"] == HelperSpec("locks", (sys.executable, "-m", "console.demo.locks", *common))


def test_demo_modules_do_not_import_textual() -> None:
    code = "import sys, console.demo.world, console.demo.helper; print('textual' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
