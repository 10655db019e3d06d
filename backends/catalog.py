"""The four panels' identities, shared by collectors, panels, `snapshot` and the CLI."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PanelSpec:
    name: str
    title: str
    issue: int


PANELS: tuple[PanelSpec, ...] = (
    PanelSpec("pcap", "PCAP cache", 3),
    PanelSpec("sessions", "Sessions", 4),
    PanelSpec("ports", "Ports", 5),
    PanelSpec("locks", "Locks", 6),
)
PANEL_NAMES: tuple[str, ...] = tuple(spec.name for spec in PANELS)
PANELS_BY_NAME: dict[str, PanelSpec] = {spec.name: spec for spec in PANELS}
