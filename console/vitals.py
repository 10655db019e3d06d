"""What a long-running console holds: DOM nodes, reactive watchers and signal subscribers.

These are the counts that grew without bound when Textual's Footer leaked a watcher per
rebuilt key (console/footer.py). The lag log writes them every second so a soak run
(``bench.soak``) sees growth from outside, and the suite asserts they stay flat.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import App
from textual.dom import DOMNode
from textual.signal import Signal


@dataclass(frozen=True, slots=True)
class Vitals:
    nodes: int
    watchers: int
    subscribers: int


def watchers_of(node: object) -> int:
    """Reactive watchers registered on ``node`` (``watch()`` and ``data_bind``)."""
    lists: dict[str, list[object]] = getattr(node, "__watchers", {})
    return sum(len(entries) for entries in lists.values())


def subscribers_of(node: object) -> int:
    """Callbacks subscribed to the signals ``node`` owns (bindings updated, theme changed…)."""
    return sum(
        len(callbacks)
        for value in vars(node).values() if isinstance(value, Signal)
        for callbacks in value._subscriptions.values()
    )


def nodes_of(app: App[object]) -> list[DOMNode]:
    """The app and every node registered with it: all screens' widgets, shown or not."""
    return [app, *app._registry]


def vitals_of(app: App[object]) -> Vitals:
    nodes = nodes_of(app)
    return Vitals(
        nodes=len(nodes),
        watchers=sum(watchers_of(node) for node in nodes),
        subscribers=sum(subscribers_of(node) for node in nodes),
    )
