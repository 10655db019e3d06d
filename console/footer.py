"""The key footer, updated in place, without Textual's per-rebuild leak.

Textual's Footer rebuilds all its FooterKey widgets whenever any node calls
``refresh_bindings()`` or focus moves, even when the same keys come out. Each new
FooterKey does ``data_bind(compact=Footer.compact)``, which appends a watcher to the
Footer; Textual 8.2 drops watchers of removed nodes only when ``compact`` changes
(Textual issue #6666, open), so the list grew for as long as the console was open and
every new watch scanned all of it. Mounting and styling ten keys also took 60-400 ms
of the loop on each change, which made Up/Down on the Locks table (where ``b`` greys
in and out) lag. This is the one place that works around both: when only the keys'
labels or availability change, the existing FooterKeys are rewritten in place (keys
added for a panel with more of them, surplus ones hidden); only the first build, or
grouped keys, recompose, and a recompose drops the watchers the removed keys left behind.
"""

from __future__ import annotations

from collections.abc import Hashable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

#: One shown key: the binding, whether it is enabled, its tooltip.
Shown = tuple[Binding, bool, str]


def shown_keys(screen: Screen[object]) -> list[Shown]:
    """What Footer.compose shows on ``screen``: the first binding of each action, in order."""
    by_action: dict[str, Shown] = {}
    for _, binding, enabled, tooltip in screen.active_bindings.values():
        if binding.show:
            by_action.setdefault(binding.action, (binding, enabled, tooltip))
    return list(by_action.values())


class SteadyFooter(Footer):
    """A Footer that rewrites its keys in place instead of rebuilding them."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._shown: tuple[Hashable, ...] | None = None

    def signature(self, shown: list[Shown]) -> tuple[Hashable, ...]:
        """Everything the footer draws, as one comparable value."""
        app = self.app
        keys = tuple((b.key, app.get_key_display(b), b.description, b.action, enabled, tooltip, b.group)
                     for b, enabled, tooltip in shown)
        return (*keys, self.compact, self.show_command_palette, app.ENABLE_COMMAND_PALETTE)

    def bindings_changed(self, screen: Screen[object]) -> None:
        if self._shown is None or screen is not self.screen or not screen.app.app_focus:
            super().bindings_changed(screen)
            return
        shown = shown_keys(screen)
        signature = self.signature(shown)
        if signature == self._shown:
            return
        if self._rewrite(shown):
            self._shown = signature
            return
        super().bindings_changed(screen)

    def _rewrite(self, shown: list[Shown]) -> bool:
        """Put ``shown`` into the FooterKeys already mounted; False when a rebuild is needed.

        Surplus keys are hidden and kept for the next panel with more keys, so after the
        operator has visited each panel once no key is ever mounted again.
        """
        if any(binding.group is not None for binding, _, _ in shown):
            return False  # grouped keys have another layout (none of ours have groups)
        keys = [key for key in self.query_children(FooterKey) if not key.has_class("-command-palette")]
        app = self.app
        added: list[FooterKey] = []
        for index, (binding, enabled, tooltip) in enumerate(shown):
            texts = (binding.key, app.get_key_display(binding), binding.description, binding.action)
            if index >= len(keys):
                key = FooterKey(*texts, disabled=not enabled, tooltip=tooltip,
                                classes="-compact" if self.compact else "")
                key.set_reactive(FooterKey.compact, self.compact)  # not data_bind: see the module docstring
                added.append(key)
                continue
            key = keys[index]
            if texts != (key.key, key.key_display, key.description, key.action):
                key.key, key.key_display, key.description, key.action = texts
                key.refresh(layout=True)  # its width follows its label
            key._disabled = not enabled  # FooterKey reads it on click
            key.set_class(not enabled, "-disabled")
            key.tooltip = tooltip or None
            if not key.display:
                key.display = True
        for key in keys[len(shown):]:
            if key.display:
                key.display = False
        if added:
            palette = self.query_children(".-command-palette")
            self.mount_all(added, before=palette.first() if palette else None)
        return True

    def compose(self) -> ComposeResult:
        self._forget_closed_watchers()
        if self._bindings_ready:
            self._shown = self.signature(shown_keys(self.screen))
        yield from super().compose()

    def _forget_closed_watchers(self) -> None:
        """Drop the watchers that removed FooterKeys left behind (Textual issue #6666).

        Called from compose: by then a rebuild has removed the old keys and not yet
        mounted the new ones.
        """
        watchers: dict[str, list[tuple[object, object]]] = getattr(self, "__watchers", {})
        for entries in watchers.values():
            entries[:] = [
                (node, callback) for node, callback in entries
                if not (getattr(node, "_closing", False) or getattr(node, "_closed", False))
            ]
