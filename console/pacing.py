"""One screen update a second for everything periodic: snapshots, status lines, the clock.

Collectors publish whenever they like (twice per collection: when it starts and when it
ends), every status line's age moves each second, and the header clock ticks. Drawn as
they came, they made an idle demo console paint about 8 frames a second at 6 ms each;
gathered on one tick, just after each second of the wall clock, they make one frame (as
htop redraws everything on its one delay). What the operator asked for is drawn at once:
a panel's first snapshot, and the collection a key (``r``) or an action started.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from backends.collector import Snapshot

#: The tick comes this long after the wall clock's second, so the clock shown is that second.
AFTER_SECOND_S = 0.02


def delay_to_tick(now: float) -> float:
    """Seconds from wall-clock time ``now`` to the next tick."""
    return (AFTER_SECOND_S - now) % 1.0 or 1.0


class SnapshotPacer:
    """Holds each panel's newest snapshot until the tick, unless it is one to show at once."""

    def __init__(self, show: Callable[[str, Snapshot[Any]], None]) -> None:
        self._show = show
        self._pending: dict[str, Snapshot[Any]] = {}
        self._asked: set[str] = set()

    def expedite(self, name: str) -> None:
        """The operator asked for this panel's collection: show it as it comes."""
        self._asked.add(name)

    def arrived(self, name: str, snapshot: Snapshot[Any], *, first: bool) -> None:
        if first or name in self._asked:
            if not snapshot.refreshing:
                self._asked.discard(name)  # the asked-for collection is done
            self._pending.pop(name, None)
            self._show(name, snapshot)
        else:
            self._pending[name] = snapshot  # a newer one replaces an older: only the newest is drawn

    def flush(self) -> None:
        """The tick: show what arrived since the last one."""
        pending, self._pending = self._pending, {}
        for name, snapshot in pending.items():
            self._show(name, snapshot)

