"""Builds the four panels' collectors from the config: the one place that wires them."""

from __future__ import annotations

from backends.catalog import PANELS
from backends.collector import Collector, CollectorGroup
from backends.unavailable import unavailable
from console.config import Config


def build_collectors(config: Config) -> CollectorGroup:
    """One collector per panel, with the interval and timeout its config section sets."""
    timing = {
        "pcap": (config.pcap.interval, config.pcap.scan_timeout),
        "sessions": (config.sessions.interval, config.sessions.timeout),
        "ports": (config.ports.interval, config.ports.timeout),
        "locks": (config.locks.interval, config.locks.timeout),
    }
    return CollectorGroup(
        {
            spec.name: Collector(
                spec.name,
                unavailable(spec.title, spec.issue),
                interval_s=timing[spec.name][0],
                timeout_s=timing[spec.name][1],
            )
            for spec in PANELS
        }
    )
