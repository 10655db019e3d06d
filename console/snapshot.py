"""`opsconsole snapshot`: one collection through the same collectors, as JSON or a table."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from backends.collector import CollectorGroup, Snapshot
from backends.host import HostInfo
from backends.jsonable import envelope, to_jsonable
from console import __version__


async def collect_once(
    collectors: CollectorGroup, names: Sequence[str], *, force: bool
) -> dict[str, Snapshot[Any]]:
    """Refresh the named collectors concurrently, then stop them all."""
    try:
        results = await asyncio.gather(*(collectors[name].refresh(force=force) for name in names))
    finally:
        await collectors.stop()
    return dict(zip(names, results, strict=True))


def snapshot_document(host: HostInfo, snapshots: Mapping[str, Snapshot[Any]], now: float) -> dict[str, Any]:
    """The `snapshot --json` object of DESIGN.md: host, taken_at, version, one envelope per panel."""
    document: dict[str, Any] = {
        "host": host.hostname,
        "taken_at": datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="seconds"),
        "version": __version__,
    }
    for name, snapshot in snapshots.items():
        document[name] = envelope(snapshot, now)
    return document


def summarize(value: Any, width: int = 100) -> str:
    """A value's one-line summary: its own ``summary()`` if it has one, else compact JSON."""
    summary = getattr(value, "summary", None)
    text = summary() if callable(summary) else json.dumps(to_jsonable(value), separators=(",", ":"))
    return text if len(text) <= width else text[: width - 1] + "…"


def render_table(host: HostInfo, snapshots: Mapping[str, Snapshot[Any]], now: float) -> str:
    """A readable table for a person at a terminal."""
    stamp = datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="seconds")
    lines = [f"opsconsole {__version__} · {host.hostname} · {stamp}", ""]
    lines.append(f"{'panel':<10}{'status':<8}{'took':>9}  detail")
    for name, snapshot in snapshots.items():
        took = "-" if snapshot.duration_s is None else f"{snapshot.duration_s * 1000:.0f} ms"
        status = "ok" if snapshot.ok else "error"
        detail = summarize(snapshot.value) if snapshot.ok else (snapshot.error or "no data")
        lines.append(f"{name:<10}{status:<8}{took:>9}  {detail}")
    return "\n".join(lines)
