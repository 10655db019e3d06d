"""Run a piece of a test as uid/gid 65534 ("nobody"): the real non-root view of files and /proc."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

NOBODY = 65534


def as_nobody(work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``work()`` in a forked child that dropped to nobody (groups too); its JSON-able result.

    Forked, not exec'd: nobody may not be able to run this interpreter. An exception in the
    child comes back as ``{"error": "Type: message"}``.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            try:
                payload = work()
            except BaseException as exc:  # noqa: BLE001 - reported to the parent
                payload = {"error": f"{type(exc).__name__}: {exc}"}
            os.write(write_end, json.dumps(payload).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    with os.fdopen(read_end) as pipe:
        return json.loads(pipe.read())
