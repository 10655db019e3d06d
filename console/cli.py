"""The `opsconsole` command: global options, then the TUI or a subcommand.

User errors exit 2 with one line on stderr; "could not collect / could not act" exits 1.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import NoReturn

from backends.host import read_host_info
from console import __version__
from console.audit import AuditLog
from console.config import Config, ConfigError, load_config
from console.demo.world import DemoError, DemoWorld
from console.paths import default_audit_log

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

#: One module per subcommand (console/commands/). Each defines
#: ``add_parser(commands) -> argparse.ArgumentParser`` (``commands`` is the subparsers
#: object; it returns the parser it added) and ``run(args, config) -> int`` (called with
#: the effective config, inside the demo world under ``--demo``; returns the exit status).
#: A parser may set defaults: ``needs_config=False`` (run gets None and loads the config
#: itself), ``reads_captures=True`` (under ``--demo``, run waits for the seeded capture tree).
#: Keep their heavy imports inside ``run`` so ``--help`` stays instant; this module, too,
#: imports the backends (every panel's, a database driver among them) only when used.
COMMAND_MODULES: tuple[str, ...] = (
    "console.commands.snapshot",
    "console.commands.config",
    "console.commands.cleanup",
    "console.commands.free_port",
    "console.commands.break_lock",
    "console.commands.lock",
    "console.commands.sessions",
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
    parser.set_defaults(run_command=None, needs_config=True, reads_captures=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        module = importlib.import_module(module_name)
        module.add_parser(commands).set_defaults(run_command=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.needs_config:
        return int(args.run_command(args, None))
    try:
        config = load_config(args.config, read_only=args.read_only)
    except ConfigError as exc:
        print(f"opsconsole: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        with _terminating_signals_exit(), _world(args.demo, config, reads_captures=args.reads_captures,
                                                 hand_off=args.run_command is None) as config:
            return int(args.run_command(args, config)) if args.run_command else run_tui(config)
    except DemoError as exc:
        print(f"opsconsole: demo world: {exc}", file=sys.stderr)
        return EXIT_FAILED


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
