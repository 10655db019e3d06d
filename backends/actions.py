"""The shapes of the action protocol: plan, progress, outcome, and the Action interface.

An action is planned from fresh state, shown to the operator, confirmed, then executed;
``execute`` must re-verify its targets at the moment of acting (DESIGN.md, "Actions").
The machinery that drives these steps lives in console/action_runner.py.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Plan:
    """What an action will do, computed from fresh state, shown before anything happens."""

    action: str
    target: str
    title: str
    lines: tuple[str, ...] = ()
    audit: Mapping[str, Any] = field(default_factory=dict)
    nothing_to_do: bool = False
    payload: Any = None

    def text(self) -> str:
        """The plan as the operator reads it: title, then one detail per line."""
        return "\n".join((self.title, *self.lines))


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an action did; ``details`` goes into the audit line."""

    ok: bool
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProgressState:
    done: int
    total: int | None
    unit: str
    note: str


class Progress:
    """Thread-safe progress counters that an executing action updates and the UI polls.

    Polling, rather than a message per step, coalesces thousands of steps into the
    few updates a screen can show.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = ProgressState(done=0, total=None, unit="", note="")

    def start(self, total: int | None, unit: str) -> None:
        with self._lock:
            self._state = ProgressState(done=0, total=total, unit=unit, note="")

    def advance(self, steps: int = 1, note: str | None = None) -> None:
        with self._lock:
            state = self._state
            self._state = ProgressState(
                done=state.done + steps,
                total=state.total,
                unit=state.unit,
                note=state.note if note is None else note,
            )

    def note(self, text: str) -> None:
        self.advance(0, text)

    def read(self) -> ProgressState:
        with self._lock:
            return self._state


class Action(Protocol):
    """A destructive operation on one target, run through the action protocol."""

    #: Dotted name used in messages and the audit log, e.g. ``"ports.free_port"``.
    name: str
    #: The panel whose collector is refreshed afterwards.
    panel: str

    def plan(self) -> Plan:
        """Compute the plan from fresh state (blocking; runs off the event loop)."""
        ...

    def execute(self, plan: Plan, progress: Progress, cancelled: threading.Event) -> Outcome:
        """Re-verify each target at the moment of acting, then act (blocking; off the loop).

        Checks ``cancelled`` between steps and stops cleanly when it is set.
        """
        ...
