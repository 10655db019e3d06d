"""The ctrl+d overlay: the event loop's lag over the last minute, from the lag probe."""

from __future__ import annotations

from textual.widgets import Static

from console.lag import LagProbe


class LagOverlay(Static):
    DEFAULT_CSS = """
    LagOverlay {
        dock: bottom; offset: 0 -1; layer: overlay; width: auto; height: 1;
        padding: 0 1; background: $warning 30%; display: none;
    }
    LagOverlay.-shown { display: block; }
    """

    def __init__(self, probe: LagProbe, **kwargs: object) -> None:
        super().__init__("", **kwargs)  # type: ignore[arg-type]
        self.probe = probe

    def on_mount(self) -> None:
        self.set_interval(1.0, self.show_stats)

    def toggle(self) -> None:
        self.toggle_class("-shown")
        self.show_stats()

    def show_stats(self) -> None:
        if not self.has_class("-shown"):
            return
        stats = self.probe.stats()
        self.update(
            f"loop lag (60 s) p50 {stats.p50_ms:.1f} ms · p99 {stats.p99_ms:.1f} ms · max {stats.max_ms:.1f} ms"
        )
