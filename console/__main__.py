"""`python -m console` and the `opsconsole` script.

Kept tiny on purpose: the PCAP scan's worker processes are spawned, and a spawned worker
re-imports the program's main script; through this module it imports nothing else (the
CLI, asyncio and every backend stay out of each worker's memory and start-up).
"""

import sys


def main() -> int:
    from console.cli import main as run_cli

    return run_cli()


if __name__ == "__main__":
    sys.exit(main())
