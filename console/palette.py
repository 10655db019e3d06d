"""The command palette's provider: every action of the app and of every panel."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from console.app import OpsConsoleApp


class ConsoleCommands(Provider):
    async def discover(self) -> Hits:
        for name, help_text, callback in cast("OpsConsoleApp", self.app).palette_commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in cast("OpsConsoleApp", self.app).palette_commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
