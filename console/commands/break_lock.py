"""`opsconsole break-lock PATH [--stop-holder] [--yes] [--dry-run]`: the Locks panel's `b`, from a shell."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from console.config import Config

EXIT_FAILED, EXIT_USAGE = 1, 2


def add_parser(commands: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "break-lock",
        help="remove a stale lock file, safely",
        description="Remove PATH only if it is a stale lock (its pid file's process is gone or "
        "was recycled, or a git lock with no git working in the repository). At the moment of "
        "acting the verdict is checked again, the file is renamed aside, checked to be the same "
        "file (inode and content) and unlocked, put back if not, and only then removed. "
        "One audit line per run.",
    )
    parser.add_argument("path", metavar="PATH", help="the lock file")
    parser.add_argument("--stop-holder", action="store_true",
                        help="on a held lock: stop its holder instead (SIGTERM, 5 s grace, SIGKILL if it still "
                        "holds the lock; pid-reuse safe)")
    parser.add_argument("--yes", action="store_true", help="act without asking (required without a terminal)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and stop")
    return parser


def run(args: argparse.Namespace, config: Config) -> int:
    from backends.actions import Action
    from backends.locks import BreakLock, LockVerdict, StopLockHolder, judge_path
    from console.cli_actions import plan_only, run_cli_action

    path = os.path.abspath(args.path)
    try:
        entry = judge_path(path, stale_after=config.locks.stale_after)
    except OSError as exc:
        print(f"opsconsole: break-lock: cannot judge {path}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    if entry is None:
        print(f"opsconsole: break-lock: {path}: no such lock file (missing, or not a regular file)", file=sys.stderr)
        return EXIT_USAGE
    action: Action
    if args.stop_holder and entry.verdict is LockVerdict.HELD:
        action = StopLockHolder(path, stale_after=config.locks.stale_after)
    elif entry.verdict is LockVerdict.STALE and not args.stop_holder:
        action = BreakLock(path, stale_after=config.locks.stale_after)
    else:
        held = entry.verdict is LockVerdict.HELD
        wanted = "held" if args.stop_holder else "stale"
        hint = "; --stop-holder stops its holder" if held and not args.stop_holder else ""
        print(
            f"opsconsole: break-lock: {path} is {entry.verdict}, not {wanted}: {entry.reason}; nothing done{hint}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.dry_run:
        return plan_only(action)
    return run_cli_action(action, config, yes=args.yes)
