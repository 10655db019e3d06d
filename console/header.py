"""The one-line header: host, user, uptime, mode badges and the clock."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from backends.host import HostInfo


def format_uptime(seconds: float | None) -> str:
    """"up 3d 4h", "up 2h 5m", "up 7m"; "up ?" when the boot time is unknown."""
    if seconds is None:
        return "up ?"
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"up {days}d {hours}h"
    return f"up {hours}h {minutes}m" if hours else f"up {minutes}m"


class StatusHeader(Widget):
    """Redrawn on the screen's tick (console.pacing); reads nothing but the clock (host facts were read at start)."""

    DEFAULT_CSS = """
    StatusHeader { dock: top; height: 1; background: $panel; color: $foreground; }
    """

    paused: reactive[bool] = reactive(False)
    read_only: reactive[bool] = reactive(False)

    def __init__(self, host: HostInfo, clock: Callable[[], float] = time.time, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.host = host
        self.clock = clock

    def render(self) -> Text:
        now = self.clock()
        text = Text(" opsconsole", style="bold")
        text.append(f"  {self.host.hostname}  {self.host.user}  {format_uptime(self.host.uptime_s(now))}")
        if self.read_only:
            text.append("  ")
            text.append(" READ-ONLY ", style="bold reverse")
        if self.paused:
            text.append("  ")
            text.append(" PAUSED ", style="bold reverse")
        clock = time.strftime("%H:%M:%S", time.localtime(now))
        padding = max(1, self.size.width - text.cell_len - len(clock) - 1)
        text.append(" " * padding + clock + " ")
        return text
