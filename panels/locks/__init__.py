"""The Locks panel: lock files judged live or stale, their holders, git hazards; break and stop keys."""

from panels.locks.panel import LocksPanel

__all__ = ["LocksPanel"]
