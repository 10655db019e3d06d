"""`opsconsole snapshot [--json] [--panel NAME]…`: one collection through the same collectors, as JSON or a table.

Exit 0 only when every requested panel collected; 1 otherwise (the output says which).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from backends.catalog import PANEL_NAMES
from backends.collector import CollectorGroup, Snapshot
from backends.host import HostInfo, read_host_info
from backends.jsonable import envelope, to_jsonable
from console import __version__
from console.config import Config

EXIT_OK, EXIT_FAILED = 0, 1


def add_parser(commands: Any) -> argparse.ArgumentParser:
    parser = commands.add_parser("snapshot", help="collect once and print", description="Collect once "
                                 "through the console's collectors and print a table or the JSON contract.")
    parser.add_argument("--json", action="store_true", help="print the JSON contract (see README)")
    parser.add_argument("--panel", action="append", choices=PANEL_NAMES, metavar="NAME",
                        help=f"only this panel ({', '.join(PANEL_NAMES)}); repeatable")
    parser.add_argument("--refresh", action="store_true", help="ignore cached values")
    parser.add_argument("--full", action="store_true", help="with --refresh: the PCAP scan walks the whole tree")
    parser.set_defaults(reads_captures=True)
    return parser


def run(args: argparse.Namespace, config: Config) -> int:
    from console.collectors import build_collectors  # every backend: only when used (see console.cli)

    if args.full:  # every PCAP scan of this run is a full one
        config = dataclasses.replace(config, pcap=dataclasses.replace(config.pcap, full_rescan_every=1))
    return run_snapshot(build_collectors(config), args.panel or PANEL_NAMES, as_json=args.json, force=args.refresh)


def run_snapshot(collectors: CollectorGroup, names: Sequence[str], *, as_json: bool, force: bool) -> int:
    """Collect once, print, and exit 0 only when every requested panel collected."""
    host = read_host_info()
    snapshots = asyncio.run(collect_once(collectors, list(dict.fromkeys(names)), force=force))
    now = time.time()
    if as_json:
        print(json.dumps(snapshot_document(host, snapshots, now), indent=2))
    else:
        print(render_table(host, snapshots, now))
    return EXIT_OK if all(snapshot.ok for snapshot in snapshots.values()) else EXIT_FAILED


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
