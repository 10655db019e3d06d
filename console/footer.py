"""The key footer, recomposed only when the keys it shows change, and without Textual's leak.

Textual's Footer rebuilds all its FooterKey widgets whenever any node calls
``refresh_bindings()`` or focus moves, even when the same keys come out. Each new
FooterKey does ``data_bind(compact=Footer.compact)``, which appends a watcher to the
Footer; Textual 8.2 drops watchers of removed nodes only when ``compact`` changes
(Textual issue #6666, open), so the list grows for as long as the console is open and
every new watch scans all of it. This is the one place that works around it.
"""

from __future__ import annotations

from collections.abc import Hashable

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer

#: What a FooterKey shows of one binding: key, its display, label, action, enabled, tooltip.
KeySignature = tuple[Hashable, ...]


class SteadyFooter(Footer):
    """A Footer whose keys are rebuilt only when what they show differs."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._shown: tuple[KeySignature, ...] | None = None

    def shown_keys(self, screen: Screen[object]) -> tuple[KeySignature, ...]:
        """The keys the footer would show on ``screen`` now, as comparable values."""
        app = screen.app
        keys = tuple(
            (binding.key, app.get_key_display(binding), binding.description, binding.action, enabled, tooltip,
             None if binding.group is None else binding.group.description)
            for (_, binding, enabled, tooltip) in screen.active_bindings.values()
            if binding.show
        )
        return (*keys, (self.compact, self.show_command_palette, app.ENABLE_COMMAND_PALETTE))

    def bindings_changed(self, screen: Screen[object]) -> None:
        if self._shown is not None and screen is self.screen and self.shown_keys(screen) == self._shown:
            return
        super().bindings_changed(screen)

    def compose(self) -> ComposeResult:
        self._forget_closed_watchers()
        if self._bindings_ready:
            self._shown = self.shown_keys(self.screen)
        yield from super().compose()

    def _forget_closed_watchers(self) -> None:
        """Drop the watchers that removed FooterKeys left behind (Textual issue #6666).

        Called from compose: by then a recompose has removed the old keys and not yet
        mounted the new ones.
        """
        watchers: dict[str, list[tuple[object, object]]] = getattr(self, "__watchers", {})
        for entries in watchers.values():
            entries[:] = [
                (node, callback) for node, callback in entries
                if not (getattr(node, "_closing", False) or getattr(node, "_closed", False))
            ]
