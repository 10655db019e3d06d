"""The sidecar of an `opsconsole lock` lock: who holds it, in words the kernel does not keep.

The kernel knows only the pid that holds a flock. ``opsconsole lock NAME`` also writes
``.NAME.lock.PID.json`` beside ``NAME.lock`` with pid, host, user, command and start
time, one per holder (a shared lock has several). The leading dot keeps sidecars out of
``*`` globs, so they are never listed as locks themselves. A sidecar is believed only
while its pid holds the kernel lock: one left behind by a killed wrapper is ignored.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

SUFFIX = ".json"


@dataclass(frozen=True, slots=True)
class SidecarRecord:
    pid: int
    host: str
    user: str
    command: tuple[str, ...]
    started_at: float
    mode: str

    def command_text(self) -> str:
        return " ".join(self.command)


def sidecar_path(lock_path: Path, pid: int) -> Path:
    return lock_path.with_name(f".{lock_path.name}.{pid}{SUFFIX}")


def write_sidecar(lock_path: Path, record: SidecarRecord) -> Path:
    """Write atomically (temp file, then rename), so a reader never sees half a record."""
    target = sidecar_path(lock_path, record.pid)
    temp = target.with_name(f"{target.name}.tmp")
    data = json.dumps({**asdict(record), "command": list(record.command)}).encode()
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(temp, target)
    return target


def read_sidecar(path: Path) -> SidecarRecord | None:
    """The record, or None when the file is gone or not a sidecar this version wrote."""
    try:
        data = json.loads(path.read_bytes())
        command = data["command"]
        return SidecarRecord(
            pid=int(data["pid"]),
            host=str(data["host"]),
            user=str(data["user"]),
            command=tuple(str(part) for part in command) if isinstance(command, list) else (str(command),),
            started_at=float(data["started_at"]),
            mode=str(data.get("mode", "exclusive")),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def sidecars_in(directory: Path) -> dict[str, dict[int, Path]]:
    """Sidecar paths in one directory, by lock file name, then pid (one directory listing)."""
    found: dict[str, dict[int, Path]] = {}
    try:
        entries = os.scandir(directory)
    except OSError:
        return found
    with entries:
        for entry in entries:
            name = entry.name
            if not (name.startswith(".") and name.endswith(SUFFIX)):
                continue
            lock_name, _, pid_text = name[1 : -len(SUFFIX)].rpartition(".")
            if lock_name and pid_text.isdigit():
                found.setdefault(lock_name, {})[int(pid_text)] = Path(entry.path)
    return found
