"""`opsconsole free-port PORT [--grace S] [--kill] [--yes] [--dry-run]`: the Ports panel's `k`, from a shell."""

from __future__ import annotations

import argparse
from typing import Any

from console.cli_args import number_argument
from console.config import Config


def port_number(text: str) -> int:
    """argparse type: a TCP port, 1-65535; anything else is a one-line usage error."""
    try:
        port = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be a number from 1 to 65535, got {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is out of range (1-65535)")
    return port


def add_parser(commands: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "free-port",
        help="stop the processes listening on a TCP port",
        description="Stop the processes that own PORT's listening socket (never its clients): "
        "SIGTERM, wait up to the grace period, SIGKILL only with --kill. Every signal goes "
        "through a pidfd after re-checking the process's start time and socket, so a "
        "reused pid is never signalled. Then reports TIME_WAIT left and whether a server "
        "can bind with and without SO_REUSEADDR.",
    )
    parser.add_argument("port", type=port_number, metavar="PORT", help="TCP port, 1-65535")
    parser.add_argument("--grace", type=number_argument(float, 0, "grace", " seconds"), default=5.0, metavar="S",
                        help="seconds to wait after SIGTERM (default 5)")
    parser.add_argument("--kill", action="store_true", help="SIGKILL what still holds the port after the grace period")
    parser.add_argument("--yes", action="store_true", help="act without asking (required without a terminal)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and stop")
    return parser


def run(args: argparse.Namespace, config: Config) -> int:
    from backends.ports import FreePortAction
    from console.cli_actions import plan_only, run_cli_action

    action = FreePortAction(args.port, grace_s=args.grace, escalate=args.kill)
    if args.dry_run:
        return plan_only(action)
    return run_cli_action(action, config, yes=args.yes)
