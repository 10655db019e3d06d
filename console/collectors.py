"""Builds the four panels' collectors from the config: the one place that wires them."""

from __future__ import annotations

from backends.collector import Collector, CollectorGroup
from backends.unavailable import unavailable
from console.config import Config


def build_collectors(config: Config) -> CollectorGroup:
    """One collector per panel, with the interval and timeout its config section sets."""
    return CollectorGroup(
        {
            "pcap": Collector(
                "pcap", unavailable("PCAP cache", 3),
                interval_s=config.pcap.interval, timeout_s=config.pcap.scan_timeout,
            ),
            "sessions": Collector(
                "sessions", unavailable("Sessions", 4),
                interval_s=config.sessions.interval, timeout_s=config.sessions.timeout,
            ),
            "ports": Collector(
                "ports", unavailable("Ports", 5),
                interval_s=config.ports.interval, timeout_s=config.ports.timeout,
            ),
            "locks": Collector(
                "locks", unavailable("Locks", 6),
                interval_s=config.locks.interval, timeout_s=config.locks.timeout,
            ),
        }
    )
