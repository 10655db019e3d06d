"""`opsconsole sessions simulate`: worker processes driving a registry through random legal moves.

It feeds the demo world and the benchmark, and shows an app's developers what the
registry does under concurrent writers.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any
from urllib.parse import urlsplit

from console.cli_args import number_argument
from console.config import Config

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_parser(commands: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "sessions", help="work with a session registry", description="Work with a session registry."
    )
    actions = parser.add_subparsers(dest="sessions_command", metavar="ACTION", required=True)
    simulate = actions.add_parser(
        "simulate",
        help="drive sessions through random legal transitions from several processes",
        description="Start N worker processes that start, progress, complete, stop, fail and "
        "expire sessions at random (only legal moves) against the registry at URL, then print "
        "what they did. Without --url, [sessions] url of the config (the demo's under --demo).",
    )
    simulate.add_argument("--url", help="sqlite:////path/to.db or postgresql://… (default: [sessions] url)")
    simulate.add_argument("--workers", type=number_argument(int, 1, "--workers"), default=4, metavar="N",
                          help="worker processes (default 4)")
    simulate.add_argument("--rate", type=number_argument(float, 0, "--rate"), default=20.0, metavar="R",
                          help="operations per second across all workers; 0 = as fast as they can (default 20)")
    simulate.add_argument("--duration", type=number_argument(float, 0.001, "--duration"), default=10.0, metavar="S",
                          help="seconds to run (default 10)")
    return parser


def run(args: argparse.Namespace, config: Config) -> int:
    from backends.sessions import RegistryError, ensure_registry, run_simulation

    url = args.url or config.sessions.url
    if url is None:
        print("opsconsole sessions simulate: no registry: give --url or set [sessions] url", file=sys.stderr)
        return EXIT_USAGE
    if urlsplit(url).scheme not in ("sqlite", "postgresql", "postgres"):
        print(f"opsconsole sessions simulate: {url!r} is not a registry URL: expected sqlite:///path or"
              " postgresql://…", file=sys.stderr)
        return EXIT_USAGE
    try:
        ensure_registry(url)
    except RegistryError as error:
        print(f"opsconsole sessions simulate: {error}", file=sys.stderr)
        return EXIT_FAILED
    try:
        results = run_simulation(url, args.workers, args.rate, args.duration)
    except KeyboardInterrupt:
        print("opsconsole sessions simulate: interrupted", file=sys.stderr)
        return EXIT_FAILED
    errors = [result.error for result in results if result.error]
    for error in dict.fromkeys(errors):
        print(f"opsconsole sessions simulate: {error}", file=sys.stderr)
    ops = sum((result.ops for result in results), start=type(results[0].ops)())
    elapsed = max(result.elapsed_s for result in results) or 1e-9
    transitions = sum(result.transitions for result in results)
    print(f"{args.workers} worker(s), {elapsed:.1f} s against {url}")
    print("  " + ", ".join(f"{op} {count}" for op, count in sorted(ops.items())))
    print(f"  {transitions} transitions ({transitions / elapsed:.0f}/s), "
          f"{sum(r.refused for r in results)} refused")
    return EXIT_FAILED if errors else EXIT_OK
