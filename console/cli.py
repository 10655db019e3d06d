"""The `opsconsole` command: global options, then the TUI or a subcommand.

User errors exit 2 with one line on stderr; "could not collect / could not act" exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import importlib
import json
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import NoReturn

from backends.catalog import PANEL_NAMES
from backends.collector import CollectorGroup
from backends.host import read_host_info
from console import __version__
from console.audit import AuditLog
from console.config import Config, ConfigError, describe_config, load_config, render_default_config
from console.demo import DemoError, DemoWorld
from console.paths import default_audit_log

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

#: Subcommands that live in modules of their own. Each module defines
#: ``add_parser(commands) -> argparse.ArgumentParser`` (``commands`` is the subparsers
#: object; it returns the parser it added) and ``run(args, config) -> int`` (called with
#: the effective config, inside the demo world under ``--demo``; returns the exit status).
#: Keep their heavy imports inside ``run`` so ``--help`` stays instant; this module, too,
#: imports the backends (every panel's, a database driver among them) only when used.
COMMAND_MODULES: tuple[str, ...] = (
    "console.cmd_cleanup",
    "console.cmd_free_port",
    "console.cmd_break_lock",
    "console.cmd_lock",
    "console.cmd_sessions",
)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see --help)\n")


def build_parser() -> OneLineParser:
    parser = OneLineParser(
        prog="opsconsole",
        description="Live view of the PCAP cache, session registry, ports and lock files, "
        "with safe fixes from the keyboard. With no command, opens the console.",
    )
    parser.add_argument("--config", type=Path, metavar="FILE", help="config file (TOML)")
    parser.add_argument("--read-only", action="store_true", help="refuse every action")
    parser.add_argument("--demo", action="store_true", help="run on a temporary demo world")
    parser.add_argument("--version", action="version", version=f"opsconsole {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    snapshot = commands.add_parser("snapshot", help="collect once and print", description="Collect once "
                                   "through the console's collectors and print a table or the JSON contract.")
    snapshot.add_argument("--json", action="store_true", help="print the JSON contract (see README)")
    snapshot.add_argument("--panel", action="append", choices=PANEL_NAMES, metavar="NAME",
                          help=f"only this panel ({', '.join(PANEL_NAMES)}); repeatable")
    snapshot.add_argument("--refresh", action="store_true", help="ignore cached values")
    snapshot.add_argument("--full", action="store_true", help="with --refresh: the PCAP scan walks the whole tree")

    config = commands.add_parser("config", help="show or print the configuration",
                                 description="Show the effective configuration and where it came from.")
    config.add_argument("--print-default", action="store_true", help="print a commented config with every key")

    for module_name in COMMAND_MODULES:
        module = importlib.import_module(module_name)
        module.add_parser(commands).set_defaults(run_command=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "config" and args.print_default:
            sys.stdout.write(render_default_config())
            return EXIT_OK
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"opsconsole: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.read_only:
        config = dataclasses.replace(config, read_only=True)
    if args.command == "config":
        print(describe_config(config))
        return EXIT_OK
    if args.command == "snapshot" and args.full:  # every PCAP scan of this run is a full one
        config = dataclasses.replace(config, pcap=dataclasses.replace(config.pcap, full_rescan_every=1))
    try:
        reads_captures = args.command in ("snapshot", "cleanup")
        with _terminating_signals_exit(), _world(args.demo, config, reads_captures=reads_captures,
                                                 hand_off=args.command is None) as config:
            if (run_command := getattr(args, "run_command", None)) is not None:
                return int(run_command(args, config))
            if args.command == "snapshot":
                from console.collectors import build_collectors  # every backend: only when used (see COMMAND_MODULES)

                names = args.panel or list(PANEL_NAMES)
                return run_snapshot(build_collectors(config), names, as_json=args.json, force=args.refresh)
            return run_tui(config)
    except DemoError as exc:
        print(f"opsconsole: demo world: {exc}", file=sys.stderr)
        return EXIT_FAILED


def run_snapshot(collectors: CollectorGroup, names: Sequence[str], *, as_json: bool, force: bool) -> int:
    """Collect once, print, and exit 0 only when every requested panel collected."""
    from console.snapshot import collect_once, render_table, snapshot_document

    host = read_host_info()
    snapshots = asyncio.run(collect_once(collectors, list(dict.fromkeys(names)), force=force))
    now = time.time()
    if as_json:
        print(json.dumps(snapshot_document(host, snapshots, now), indent=2))
    else:
        print(render_table(host, snapshots, now))
    return EXIT_OK if all(snapshot.ok for snapshot in snapshots.values()) else EXIT_FAILED


def run_tui(config: Config) -> int:
    from console.app import make_app
    from console.collectors import build_collectors

    lag_log = os.environ.get("OPSCONSOLE_LAG_LOG")
    app = make_app(
        config,
        build_collectors(config),
        host=read_host_info(),
        audit=AuditLog(config.audit_log or default_audit_log()),
        owns_process=True,
        lag_log=Path(lag_log) if lag_log else None,
    )
    app.run()
    return app.return_code or EXIT_OK


@contextlib.contextmanager
def _world(demo: bool, config: Config, *, reads_captures: bool, hand_off: bool) -> Iterator[Config]:
    """The config as given, or pointed at a demo world that exists only inside the block
    (for a one-shot command that reads the capture tree, once that tree is complete).
    ``hand_off``: the console's quit leaves the world's removal to its helpers (DemoWorld)."""
    if not demo:
        yield config
        return
    with DemoWorld(hand_off=hand_off) as world:
        if reads_captures:
            world.wait_seeded()
        yield world.apply(config)


@contextlib.contextmanager
def _terminating_signals_exit() -> Iterator[None]:
    """SIGTERM and SIGHUP (a dropped SSH session) unwind like Ctrl+C, so cleanup runs."""

    def leave(signum: int, frame: FrameType | None) -> NoReturn:
        raise SystemExit(128 + signum)

    previous = {signum: signal.signal(signum, leave) for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


if __name__ == "__main__":
    sys.exit(main())
