"""The Sessions panel: the registry's sessions by state, each session's history, stop/expire/purge keys."""

from panels.sessions.panel import SessionsPanel

__all__ = ["SessionsPanel"]
