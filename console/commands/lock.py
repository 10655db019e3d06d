"""`opsconsole lock NAME [--wait S] [--shared] -- COMMAND ...`: run a command under a named lock.

Exit status: COMMAND's own (128+N when a signal N ended it), 75 when ``--wait`` ran out
with the lock still busy, 126/127 when COMMAND cannot run, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, NoReturn

from console.cli_args import number_argument
from console.config import Config

EXIT_FAILED, EXIT_USAGE = 1, 2


class _OptionsParser(argparse.ArgumentParser):
    """Parses what comes between ``lock`` and ``--``; a mistake is a one-line usage error."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


class UsageError(Exception):
    pass


def _add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wait", type=number_argument(float, 0, "--wait", " seconds"), metavar="S",
                        help="if the lock is still busy after S seconds, exit 75 (default: wait until free)")
    parser.add_argument("--shared", action="store_true", help="a shared lock: excludes only exclusive holders")
    parser.add_argument("--dir", type=Path, metavar="DIR",
                        help="keep NAME.lock in DIR instead of the console's lock directory")


def add_parser(commands: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "lock",
        help="run a command while holding a named lock",
        usage="opsconsole lock NAME [--wait S] [--shared] [--dir DIR] -- COMMAND ...",
        description="Run COMMAND while holding the lock NAME (an flock on NAME.lock in the "
        "console's lock directory, the one filelock.FileLock and flock(1) take too), with a "
        "sidecar recording pid, host, user, command and start time for the Locks panel. The "
        "kernel releases the lock however the holder ends, so it never goes stale; COMMAND "
        "gets SIGTERM if the wrapper is killed.",
    )
    # Options may come before or after NAME, so everything up to "--" is parsed in run().
    _add_options(parser)
    parser.add_argument("words", nargs=argparse.REMAINDER, metavar="NAME [options] -- COMMAND ...")
    return parser


def split_arguments(args: argparse.Namespace) -> tuple[argparse.Namespace, list[str]]:
    """NAME and the options (wherever they stand before ``--``), and COMMAND."""
    words = list(args.words)
    if "--" not in words:
        raise UsageError("put -- before COMMAND (opsconsole lock NAME [--wait S] -- COMMAND ...)")
    at = words.index("--")
    head, command = words[:at], words[at + 1 :]
    parser = _OptionsParser(prog="opsconsole lock", add_help=False)
    _add_options(parser)
    parser.add_argument("name", metavar="NAME")
    options = parser.parse_args(head, namespace=argparse.Namespace(wait=args.wait, shared=args.shared, dir=args.dir))
    if not command:
        raise UsageError("no COMMAND given after --")
    return options, command


def busy_message(name: str, path: Path, stale_after: float) -> str:
    """``lock NAME busy: held by pid N (COMMAND) for 2m``, from the same judgement the panel shows."""
    from backends.locks import judge_path
    from panels.status import format_age

    entry = judge_path(str(path), stale_after=stale_after)
    holder = None if entry is None else entry.holder
    if holder is None or holder.pid is None:
        return f"lock {name} busy"
    what = holder.command or (" ".join(holder.cmdline) if holder.cmdline else holder.name) or "?"
    held_for = "" if entry is None or entry.age_s is None else f" for {format_age(entry.age_s)}"
    return f"lock {name} busy: held by pid {holder.pid} ({what}){held_for}"


def run(args: argparse.Namespace, config: Config) -> int:
    from backends.locks import (
        EXIT_BUSY,
        EXIT_NOT_EXECUTABLE,
        EXIT_NOT_FOUND,
        LockBusy,
        LockNameError,
        ensure_directory,
        holding,
        lock_file,
        run_command,
    )
    from console.paths import lock_dir

    try:
        args, command = split_arguments(args)
    except UsageError as exc:
        print(f"opsconsole lock: {exc} (see --help)", file=sys.stderr)
        return EXIT_USAGE
    directory = args.dir or lock_dir()
    try:
        path = lock_file(directory, args.name)
        ensure_directory(directory)
    except LockNameError as exc:
        print(f"opsconsole: lock: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"opsconsole: lock: cannot create {directory}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    try:
        with holding(path, command, shared=args.shared, wait_s=args.wait):
            try:
                return run_command(command)
            except FileNotFoundError:
                print(f"opsconsole: lock: {command[0]}: command not found", file=sys.stderr)
                return EXIT_NOT_FOUND
            except PermissionError:
                print(f"opsconsole: lock: {command[0]}: permission denied", file=sys.stderr)
                return EXIT_NOT_EXECUTABLE
    except LockBusy:
        print(f"opsconsole: {busy_message(args.name, path, config.locks.stale_after)}", file=sys.stderr)
        return EXIT_BUSY
    except OSError as exc:
        print(f"opsconsole: lock: {path}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
