"""The stand-in body for a panel whose own issue has not landed: says so, fakes nothing."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from panels.base import Panel


class PlaceholderPanel(Panel):
    def compose_body(self) -> ComposeResult:
        yield Static(
            f"The {self.spec.title} panel is not available yet: it lands with issue #{self.spec.issue}.",
            classes="panel-body placeholder",
        )
