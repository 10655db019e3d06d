"""The audit log: one JSON line per action, appended, never rewritten."""

from __future__ import annotations

import getpass
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from backends.jsonable import to_jsonable


class AuditUnavailable(Exception):
    """The audit log cannot be written; actions are refused rather than left unrecorded."""


def ssh_client(env: Mapping[str, str] = os.environ) -> str | None:
    """The operator's SSH client as "address port", from SSH_CONNECTION, or None."""
    parts = env.get("SSH_CONNECTION", "").split()
    return f"{parts[0]} {parts[1]}" if len(parts) >= 2 else None


def _make_private_dirs(directory: Path) -> None:
    """``mkdir -p`` where every directory created is 0700; existing ones are left as they are.

    ``Path.mkdir(mode=0o700, parents=True)`` applies the mode to the last directory only:
    the intermediate ones it creates get the default (typically 0755).
    """
    if directory.is_dir():
        return
    _make_private_dirs(directory.parent)
    try:
        directory.mkdir(mode=0o700)
    except FileExistsError:
        if not directory.is_dir():  # a regular file in the way; a directory means another console won
            raise


@dataclass(frozen=True, slots=True)
class AuditLog:
    """Appends to ``path`` with O_APPEND in one write per line, so concurrent consoles interleave whole lines."""

    path: Path

    def check_writable(self) -> None:
        """Create the log (0600, parents 0700) if needed; raise AuditUnavailable if it cannot be written."""
        try:
            _make_private_dirs(self.path.parent)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.close(fd)
        except OSError as exc:
            raise AuditUnavailable(f"audit log {self.path} not writable: {exc.strerror or exc}") from None

    def record(
        self,
        *,
        action: str,
        target: str,
        plan: Mapping[str, Any],
        outcome: Mapping[str, Any],
        env: Mapping[str, str] = os.environ,
    ) -> dict[str, Any]:
        """Append one line and return what was written."""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = str(os.getuid())
        entry = {
            "time": datetime.fromtimestamp(time.time(), timezone.utc).isoformat(),
            "user": user,
            "uid": os.getuid(),
            "ssh_client": ssh_client(env),
            "action": action,
            "target": target,
            "plan": to_jsonable(plan),
            "outcome": to_jsonable(outcome),
        }
        line = (json.dumps(entry, ensure_ascii=True, separators=(",", ":")) + "\n").encode()
        self.check_writable()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
        return entry
