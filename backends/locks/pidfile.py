"""What a pid-file lock says about its holder, in the formats scripts and libraries write.

Understood: a bare pid (``echo $$ > x.lock``); ``pid=N`` with an optional ``host=H``
(on one line or several); ``PID HOST`` (git's gc.pid); a JSON object with a ``pid``;
and filelock's markers — protocol 1 ``PID\\nHOST\\n[START]\\n`` (SoftFileLock) and
protocol 2 ``filelock/2\\npid=N\\nhost=H\\nmode=...``. Anything else is garbled: shown
as such, never guessed at.
"""

from __future__ import annotations

import json
import os
import re
import socket
from dataclasses import dataclass

#: Linux's largest possible pid (PID_MAX_LIMIT on 64-bit).
PID_MAX = 4_194_304

_KEY_VALUE = re.compile(r"([A-Za-z_]+)=(\S*)")
_HEX_ESCAPE = re.compile(r"\?([0-9a-fA-F]{2})")
#: filelock appends the writer's pid namespace to the hostname outside the initial one.
_PIDNS_MARK = "?pidns-"


@dataclass(frozen=True, slots=True)
class PidClaim:
    """The holder a pid file names.

    ``pid_namespace`` is the inode of the pid namespace filelock recorded, when it did;
    ``started_at``/``command`` come from formats that carry them (JSON).
    """

    pid: int
    format: str
    host: str | None = None
    pid_namespace: int | None = None
    started_at: float | None = None
    command: str | None = None


def _pid(text: object) -> int | None:
    if isinstance(text, bool):
        return None
    if isinstance(text, int):
        value = text
    elif isinstance(text, str) and text.isascii() and text.isdigit():
        value = int(text)
    else:
        return None
    return value if 1 <= value <= PID_MAX else None


def _host(text: str) -> tuple[str, int | None]:
    """A recorded hostname without filelock's escapes and pid-namespace suffix."""
    name, _, namespace = text.partition(_PIDNS_MARK)
    name = _HEX_ESCAPE.sub(lambda match: chr(int(match.group(1), 16)), name)
    return name, int(namespace) if namespace.isdigit() else None


def _claim(pid_text: object, fmt: str, host: str | None = None, **extra: object) -> PidClaim | None:
    pid = _pid(pid_text)
    if pid is None:
        return None
    name, namespace = _host(host) if host else (None, None)
    return PidClaim(pid, fmt, name or None, namespace, **extra)  # type: ignore[arg-type]


def _from_json(text: str) -> PidClaim | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return _claim(data, "bare") if isinstance(data, int) else None
    host = data.get("host", data.get("hostname"))
    started = data.get("started_at", data.get("start_time"))
    command = data.get("command", data.get("cmd"))
    if isinstance(command, list):
        command = " ".join(str(part) for part in command)
    return _claim(
        data.get("pid"),
        "json",
        host if isinstance(host, str) else None,
        started_at=float(started) if isinstance(started, int | float) and not isinstance(started, bool) else None,
        command=command if isinstance(command, str) else None,
    )


def parse_pid_file(content: str) -> PidClaim | None:
    """The claim in a pid file's text, or None when it is not one of the known formats."""
    text = content.strip()
    if not text:
        return None
    if text.startswith("{"):
        return _from_json(text)
    lines = text.splitlines()
    if lines[0] == "filelock/2":
        fields = dict(_KEY_VALUE.findall("\n".join(lines[1:])))
        return _claim(fields.get("pid"), "filelock", fields.get("host"))
    if "=" in text:
        fields = dict(_KEY_VALUE.findall(text))
        leftover = _KEY_VALUE.sub("", text).strip()
        return None if leftover else _claim(fields.get("pid"), "key=value", fields.get("host"))
    if len(lines) == 1:
        words = lines[0].split()
        if len(words) == 1:
            return _claim(words[0], "bare")
        if len(words) == 2:
            return _claim(words[0], "pid host", words[1])
        return None
    if 2 <= len(lines) <= 3 and all(line.strip() for line in lines):
        # SoftFileLock: pid, hostname, and an optional start token (not comparable here).
        return _claim(lines[0].strip(), "filelock", lines[1].strip())
    return None


def this_host() -> str:
    return socket.gethostname()


def same_host(recorded: str, here: str) -> bool:
    """Whether a recorded hostname is this host; "web-1" matches "web-1.example.com"."""
    a, b = recorded.casefold().rstrip("."), here.casefold().rstrip(".")
    if a == b:
        return True
    if "." in a and "." in b:
        return False
    return a.split(".", 1)[0] == b.split(".", 1)[0]


def own_pid_namespace() -> int | None:
    """The inode of this process's pid namespace, as filelock records it."""
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None
