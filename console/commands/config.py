"""`opsconsole config [--print-default]`: the effective configuration and where it came from.

It loads the config itself (``needs_config=False``), so that ``--print-default`` works
even while the config file has a typo: that is when an operator needs the template.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from console.config import Config, ConfigError, describe_config, load_config, render_default_config

EXIT_OK, EXIT_USAGE = 0, 2


def add_parser(commands: Any) -> argparse.ArgumentParser:
    parser = commands.add_parser("config", help="show or print the configuration",
                                 description="Show the effective configuration and where it came from.")
    parser.add_argument("--print-default", action="store_true", help="print a commented config with every key")
    parser.set_defaults(needs_config=False)
    return parser


def run(args: argparse.Namespace, config: Config | None) -> int:
    if args.print_default:
        sys.stdout.write(render_default_config())
        return EXIT_OK
    try:
        config = load_config(args.config, read_only=args.read_only)
    except ConfigError as exc:
        print(f"opsconsole: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(describe_config(config))
    return EXIT_OK
