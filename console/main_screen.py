"""The main screen: the four panels as a 2x2 grid (>= 120 columns) or as tabs, plus zoom.

Navigation lives here (number keys, tab cycling, zoom, refresh) so modal dialogs on top
keep their own keys.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Tab, Tabs

from backends.catalog import PANELS
from backends.host import HostInfo
from console.footer import SteadyFooter
from console.header import StatusHeader
from console.lag import LagProbe
from console.lag_overlay import LagOverlay
from console.styles_cache import forget_removed_widgets
from panels.base import Panel

#: At this width and above the panels show as a 2x2 grid; below, as tabs.
GRID_MIN_WIDTH = 120


class MainScreen(Screen[None]):
    BINDINGS = [
        *(
            Binding(str(n), f"focus_panel({n - 1})", f"Focus {spec.title}", show=False, id=f"main.panel_{n}")
            for n, spec in enumerate(PANELS, start=1)
        ),
        Binding("tab", "cycle(1)", "Next panel", show=False, id="main.next_panel"),
        Binding("shift+tab", "cycle(-1)", "Previous panel", show=False, id="main.previous_panel"),
        Binding("z", "zoom", "Zoom", tooltip="Zoom the focused panel to full screen and back", id="main.zoom"),
        Binding("r", "refresh_panel", "Refresh", tooltip="Refresh the focused panel now", id="main.refresh"),
    ]

    def __init__(
        self,
        panels: Sequence[Panel],
        host: HostInfo,
        probe: LagProbe,
        refresh_panel: Callable[[str], None],
        clock: Callable[[], float],
        read_only: bool,
    ) -> None:
        super().__init__(id="main")
        self.panels = list(panels)
        self.host = host
        self.probe = probe
        self.refresh_callback = refresh_panel
        self.clock = clock
        self.read_only = read_only
        self.active = self.panels[0]

    def compose(self) -> ComposeResult:
        header = StatusHeader(self.host, self.clock, id="header")
        header.read_only = self.read_only
        yield header
        yield Tabs(
            *(Tab(panel.border_title or panel.spec.title, id=f"tab-{panel.spec.name}") for panel in self.panels),
            id="panel-tabs",
        )
        with Container(id="panels"):
            yield from self.panels
        yield LagOverlay(self.probe, id="lag")
        yield SteadyFooter()

    def on_mount(self) -> None:
        self.query_one(Tabs).can_focus = False
        self.apply_width(self.app.size.width)
        self.set_active(self.active)
        self.active.focus()

    def on_resize(self, event: events.Resize) -> None:
        self.apply_width(event.size.width)

    def apply_width(self, width: int) -> None:
        wide = width >= GRID_MIN_WIDTH
        self.set_class(wide, "-wide")
        self.set_class(not wide, "-narrow")
        self.tell_panels_shown()

    def on_screen_suspend(self) -> None:
        """A dialog or detail view covers the panels: they stop drawing until it closes."""
        for panel in self.panels:
            panel.set_shown(False)

    def on_screen_resume(self) -> None:
        """A dialog or detail view closed: the panels draw again, its widgets are let go."""
        forget_removed_widgets()
        self.tell_panels_shown()

    def tell_panels_shown(self) -> None:
        """Which panels the operator sees: all four in the grid, else the active one."""
        stack = self.app.screen_stack if self.is_attached else []
        covered = bool(stack) and stack[-1] is not self  # also under a see-through dialog
        grid = self.has_class("-wide") and not self.zoomed
        for panel in self.panels:
            panel.set_shown(not covered and (grid or panel is self.active))

    def tick(self) -> None:
        """The app's second (console.pacing): the clock and every shown panel's ages move."""
        self.query_one(StatusHeader).refresh()
        for panel in self.panels:
            panel.tick()

    # -- which panel is active -------------------------------------------------------

    @property
    def zoomed(self) -> bool:
        return self.has_class("-zoomed")

    def set_active(self, panel: Panel) -> None:
        self.active = panel
        for each in self.panels:
            each.set_class(each is panel, "-active")
        self.tell_panels_shown()
        tabs = self.query_one(Tabs)
        if tabs.active != f"tab-{panel.spec.name}":
            # Not as an operator's choice: that message, handled after a later Tab press,
            # would focus this panel again, and two such moves chased each other forever.
            with tabs.prevent(Tabs.TabActivated):
                tabs.active = f"tab-{panel.spec.name}"

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        panel = self.panel_of(event.widget)
        if panel is not None and panel is not self.active:
            self.set_active(panel)

    def panel_of(self, widget: Widget) -> Panel | None:
        node: Widget | None = widget
        while node is not None and not isinstance(node, Panel):
            node = node.parent if isinstance(node.parent, Widget) else None
        return node

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        name = (event.tab.id or "").removeprefix("tab-")
        for index, panel in enumerate(self.panels):
            if panel.spec.name == name and panel is not self.active:
                self.action_focus_panel(index)

    # -- actions ---------------------------------------------------------------------

    def action_focus_panel(self, index: int) -> None:
        self.set_active(self.panels[index])
        self.call_after_refresh(self._focus_active)

    def _focus_active(self) -> None:
        """Focus the panel active by now: of Tab presses quicker than a refresh, the last wins."""
        if self.focused is None or self.panel_of(self.focused) is not self.active:
            self.active.focus()

    def action_cycle(self, step: int) -> None:
        index = self.panels.index(self.active)
        self.action_focus_panel((index + step) % len(self.panels))

    def action_zoom(self) -> None:
        self.toggle_class("-zoomed")
        self.tell_panels_shown()

    def action_refresh_panel(self) -> None:
        self.refresh_callback(self.active.spec.name)
