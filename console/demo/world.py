"""The demo world behind ``opsconsole --demo``: a throwaway directory with live activity.

The console creates the world, keeps its helper processes alive and removes it on exit.
Removal is layered because an operator's SSH session can end any way at all: ``__exit__``
covers normal exit, Ctrl+C and (with the CLI's handlers) SIGTERM/SIGHUP; the helpers
themselves remove the world when the console is SIGKILLed. Nothing is deleted from a
directory whose marker does not name this console.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING

from console.demo import locks as demo_locks
from console.demo import pcap as demo_pcap
from console.demo import ports as demo_ports
from console.demo.helper import MARKER, PORT_FILE, remove_world

if TYPE_CHECKING:
    from console.config import Config

#: How often the supervisor looks for dead helpers.
SUPERVISE_EVERY_S = 1.0
#: Restarts per helper before the supervisor gives up on it (a crash loop is a bug).
MAX_RESTARTS = 5
#: How long ``__enter__`` waits for the activity helper to report its port.
PORT_TIMEOUT_S = 5.0
#: How long a one-shot command under ``--demo`` waits for the capture tree to be seeded.
SEED_TIMEOUT_S = 60.0
#: Total time helpers get to exit after SIGTERM before they are SIGKILLed.
STOP_GRACE_S = 2.0

# The directory that holds the ``console`` package, so helpers import this very code.
_IMPORT_ROOT = Path(__file__).resolve().parent.parent


class DemoError(RuntimeError):
    """The demo world could not be set up; the message says why in one line."""


@dataclass(frozen=True, slots=True)
class HelperSpec:
    """One process the world keeps running (and restarts when it dies)."""

    name: str
    argv: tuple[str, ...]


def default_helpers(world_dir: Path) -> list[HelperSpec]:
    """The helpers of a demo world; each issue that adds demo activity adds one here."""
    common = ("--dir", str(world_dir), "--parent", str(os.getpid()))
    return [
        HelperSpec("activity", (sys.executable, "-m", "console.demo.helper", "activity", *common)),
        HelperSpec("pcap", (sys.executable, "-m", "console.demo.pcap", *common)),
        HelperSpec("ports", (sys.executable, "-m", "console.demo.ports", *common)),
        HelperSpec("locks", (sys.executable, "-m", "console.demo.locks", *common)),
        HelperSpec("sessions", (sys.executable, "-m", "console.demo.sessions", *common)),
    ]


class DemoWorld:
    """A temporary world for the console to watch; use as a context manager.

    ``with DemoWorld() as world: config = world.apply(config)``. Helpers run in their own
    session so a Ctrl+C at the terminal reaches only the console, which then stops them
    in order; a supervisor thread restarts any that die. Enter it from the thread that
    outlives the world (the main thread): Linux's parent-death signal follows the thread
    that spawned a helper.

    With ``hand_off`` the exit does not wait: while a helper runs, it is left to remove
    the world once this process has ended, as it does when the console is SIGKILLed.
    The console's ``q`` then returns to the shell at once; use it only where the process
    ends right after the block.
    """

    def __init__(self, *, hand_off: bool = False) -> None:
        self._hand_off = hand_off
        self._path: Path | None = None
        self._specs: dict[str, HelperSpec] = {}
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._restarts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._supervisor: threading.Thread | None = None

    def __enter__(self) -> DemoWorld:
        if self._path is not None or self._stop.is_set():
            raise DemoError("a DemoWorld is entered once; make a new one")
        path = self._path = Path(tempfile.mkdtemp(prefix="opsconsole-demo-"))
        try:
            (path / MARKER).write_text(f"{os.getpid()}\n")
            for sub in ("pcap", "locks", "cache", "logs"):
                (path / sub).mkdir()
            for spec in default_helpers(path):
                self._specs[spec.name] = spec
                self._restarts[spec.name] = 0
                self._procs[spec.name] = self._spawn(spec)
            self._wait_for_port()
            self._supervisor = threading.Thread(
                target=self._supervise, name="demo-supervisor", daemon=True
            )
            self._supervisor.start()
        except BaseException:
            self._shut_down()
            raise
        return self

    def wait_seeded(self, timeout_s: float = SEED_TIMEOUT_S) -> None:
        """For one-shot commands (`snapshot`, `cleanup`): their counts and plans must not
        depend on how far the helper got with the capture tree. The console needs no wait:
        it shows the tree growing."""
        if not demo_pcap.wait_seeded(self.path, timeout_s):
            raise DemoError(f"the capture tree was not ready within {timeout_s:g} s (see {self.path / 'logs'})")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._shut_down()

    @property
    def path(self) -> Path:
        if self._path is None:
            raise DemoError("the demo world is not running")
        return self._path

    @property
    def pcap_root(self) -> Path:
        return self.path / "pcap"

    @property
    def locks_dir(self) -> Path:
        return self.path / "locks"

    @property
    def cache_dir(self) -> Path:
        return self.path / "cache"

    @property
    def sessions_url(self) -> str:
        """Where the demo session registry lives (the file is created by whoever writes it).

        ``sqlite:///`` + an absolute path: four slashes, which every URL reader takes as
        absolute (SQLAlchemy's rule; ``urlparse`` gives ``//tmp/...``, the same file).
        """
        return f"sqlite:///{self.path}/sessions.db"

    @property
    def port(self) -> int:
        """The demo listener's port, as its helper last recorded it."""
        return int((self.path / PORT_FILE).read_text())

    @property
    def helpers(self) -> Mapping[str, subprocess.Popen[bytes]]:
        """The current process of each helper (a restart replaces the entry)."""
        with self._lock:
            return MappingProxyType(dict(self._procs))

    @property
    def restarts(self) -> Mapping[str, int]:
        with self._lock:
            return MappingProxyType(dict(self._restarts))

    def apply(self, config: Config) -> Config:
        """Return ``config`` pointed at this world; everything else is kept."""
        return dataclasses.replace(
            config,
            pcap=dataclasses.replace(
                config.pcap, root=self.pcap_root, cache_dir=self.cache_dir, ttl=demo_pcap.DEMO_TTL_S,
                retention=dataclasses.replace(config.pcap.retention, max_age_days=demo_pcap.RETENTION_DAYS),
            ),
            sessions=dataclasses.replace(config.sessions, url=self.sessions_url),
            ports=dataclasses.replace(config.ports, watch=(self.port, *demo_ports.watched_ports(self.path))),
            locks=dataclasses.replace(
                config.locks, paths=demo_locks.lock_globs(self.path), repos=demo_locks.ready_repos(self.path)
            ),
        )

    def _spawn(self, spec: HelperSpec) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(_IMPORT_ROOT), env.get("PYTHONPATH")) if p
        )
        with open(self.path / "logs" / f"{spec.name}.log", "ab") as log:
            return subprocess.Popen(
                spec.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.path,  # never keep the operator's directory busy
                env=env,
                start_new_session=True,
            )

    def _wait_for_port(self) -> None:
        deadline = time.monotonic() + PORT_TIMEOUT_S
        while not (self.path / PORT_FILE).exists():
            for name, proc in self._procs.items():
                if (code := proc.poll()) is not None:
                    tail = self._log_tail(name)
                    raise DemoError(f"demo helper {name!r} exited with {code}: {tail}")
            if time.monotonic() > deadline:
                raise DemoError(
                    f"demo listener did not report its port within {PORT_TIMEOUT_S:g} s"
                )
            time.sleep(0.02)

    def _log_tail(self, name: str) -> str:
        try:
            lines = (self.path / "logs" / f"{name}.log").read_text(errors="replace").splitlines()
        except OSError:
            return "no log"
        return lines[-1] if lines else "no output"

    def _supervise(self) -> None:
        while not self._stop.wait(SUPERVISE_EVERY_S):
            for name, spec in self._specs.items():
                with self._lock:
                    if self._procs[name].poll() is None or self._restarts[name] >= MAX_RESTARTS:
                        continue
                    self._restarts[name] += 1
                    self._procs[name] = self._spawn(spec)

    def _shut_down(self) -> None:
        """Stop the supervisor, then the helpers, then remove the world if it is ours.

        Each step sits in a ``finally`` so a second Ctrl+C during cleanup still kills the
        helpers and removes the directory.
        """
        path = self._path
        handed_off = False
        try:
            self._stop.set()
            if self._supervisor is not None:
                self._supervisor.join()
            with self._lock:
                handed_off = self._hand_off and any(proc.poll() is None for proc in self._procs.values())
            if not handed_off:
                self._stop_helpers()
        finally:
            if path is not None and not handed_off:
                remove_world(path, os.getpid())
            self._path = None

    def _stop_helpers(self) -> None:
        procs = list(self._procs.values())
        try:
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE_S
            for proc in procs:
                try:
                    proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
