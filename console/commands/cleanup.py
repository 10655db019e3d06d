"""`opsconsole cleanup [--dry-run | --yes]`: the PCAP panel's retention cleanup (key ``c``), for cron."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from console.config import Config


def add_parser(commands: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "cleanup",
        help="delete the oldest capture files until [pcap.retention] holds",
        description="Delete capture files under [pcap] root, oldest first, until every rule of "
        "[pcap.retention] holds (max_age_days, max_total_bytes, min_free_percent), never the newest "
        "keep_newest files, files in the active window, files open or locked by any process, or "
        "hard-linked files. Each file is re-checked right before it is deleted. One audit line per "
        "run; the deleted paths go to pcap-cleanup-deleted.jsonl beside the audit log.",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="print the plan and every file it would delete")
    mode.add_argument("--yes", action="store_true", help="act without asking (required without a terminal)")
    parser.set_defaults(reads_captures=True)
    return parser


def run(args: argparse.Namespace, config: Config) -> int:
    from backends.human import shown_path
    from backends.pcap import PcapCleanup, PcapSettings, deleted_log_path
    from console import paths
    from console.cli_actions import plan_only, run_cli_action

    if config.pcap.root is None:
        print("opsconsole: cleanup: set [pcap] root in the config file", file=sys.stderr)
        return 2
    settings = PcapSettings.of(config.pcap, paths.cache_dir())
    action = PcapCleanup(settings, deleted_log_path(config.audit_log or paths.default_audit_log()))
    if not args.dry_run:
        return run_cli_action(action, config, yes=args.yes, out=sys.stdout, err=sys.stderr)
    code = plan_only(action, out=sys.stdout, err=sys.stderr)
    if code == 0 and (plan := action.last_plan) is not None:
        for candidate in plan.files:
            print(shown_path(candidate.path))
    return code
