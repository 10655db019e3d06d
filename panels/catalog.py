"""Which widget renders which panel, in the order of the number keys."""

from __future__ import annotations

import time
from collections.abc import Callable

from backends.catalog import PANELS
from panels.base import Panel
from panels.locks import LocksPanel
from panels.pcap import PcapPanel
from panels.ports import PortsPanel
from panels.sessions import SessionsPanel

#: The widget class of each panel; a panel's issue replaces its PlaceholderPanel entry.
PANEL_CLASSES: dict[str, type[Panel]] = {
    "pcap": PcapPanel,
    "sessions": SessionsPanel,
    "ports": PortsPanel,
    "locks": LocksPanel,
}


def build_panels(clock: Callable[[], float] = time.time) -> list[Panel]:
    """One panel per catalog entry, numbered 1-4."""
    return [PANEL_CLASSES[spec.name](spec, number, clock) for number, spec in enumerate(PANELS, start=1)]
