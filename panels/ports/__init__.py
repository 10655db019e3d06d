"""The Ports panel: each watched port's listeners, connections and TIME_WAIT; its detail view and free-port key."""

from panels.ports.panel import PortsPanel

__all__ = ["PortsPanel"]
