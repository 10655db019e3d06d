"""Builds the four panels' collectors from the config: the one place that wires them."""

from __future__ import annotations

from backends.collector import Collector, CollectorGroup
from backends.locks import make_locks_collect
from backends.pcap import pcap_collector
from backends.ports import PortsCollector
from backends.sessions import sessions_collector
from console import paths
from console.config import Config


def build_collectors(config: Config) -> CollectorGroup:
    """One collector per panel, with the interval and timeout its config section sets."""
    return CollectorGroup(
        {
            "pcap": pcap_collector(config.pcap, paths.cache_dir()),
            "sessions": sessions_collector(config.sessions),
            "ports": Collector(
                "ports", PortsCollector(config.ports.watch),
                interval_s=config.ports.interval, timeout_s=config.ports.timeout,
            ),
            "locks": Collector(
                "locks",
                make_locks_collect(config.locks.paths, config.locks.repos, stale_after=config.locks.stale_after),
                interval_s=config.locks.interval, timeout_s=config.locks.timeout,
            ),
        }
    )
