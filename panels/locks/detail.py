"""The detail view of one lock: verdict and why, the holder's process, the waiters, the content."""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from backends.locks import Holder, LockEntry
from panels.detail import DetailScreen
from panels.status import format_age


def _when(timestamp: float | None, now: float) -> str:
    if timestamp is None:
        return "unknown"
    return f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(timestamp))} ({format_age(now - timestamp)} ago)"


def holder_lines(holder: Holder, now: float) -> list[str]:
    """A process as the operator needs it: pid, state, user, command, start time."""
    alive = {True: "running", False: "not running", None: "cannot be checked here"}[holder.alive]
    lines = [f"pid {holder.pid if holder.pid is not None else 'not reported by the kernel'} · {alive}"]
    if holder.same_process is False:
        lines.append("the pid now belongs to a process started after the lock was written (recycled)")
    if holder.host:
        lines.append(f"host: {holder.host}")
    if holder.mode:
        lines.append(f"lock: {holder.mode}")
    if holder.user:
        lines.append(f"user: {holder.user}")
    if holder.name:
        lines.append(f"name: {holder.name}")
    if holder.command:
        lines.append(f"command (as recorded): {holder.command}")
    if holder.cmdline:
        lines.append(f"command line: {' '.join(holder.cmdline)}")
    if holder.started_at is not None:
        lines.append(f"started: {_when(holder.started_at, now)}")
    return lines


def detail_text(entry: LockEntry, now: float) -> Text:
    text = Text()

    def section(title: str, lines: list[str]) -> None:
        text.append(f"{title}\n", style="bold underline")
        for line in lines:
            text.append(f"  {line}\n")
        text.append("\n")

    section("Lock", [
        f"kind: {entry.kind}",
        f"verdict: {entry.verdict} — {entry.reason}",
        f"age: {'unknown' if entry.age_s is None else format_age(entry.age_s)}",
        f"file: {entry.size} bytes, inode {entry.inode}, modified {_when(entry.mtime, now)}",
        *([f"kernel lock: {entry.kernel_lock}"] if entry.kernel_lock else []),
    ])
    holders = [h for h in (entry.holder, *entry.also_held_by) if h is not None]
    if holders:
        for number, holder in enumerate(holders, start=1):
            section("Holder" if len(holders) == 1 else f"Holder {number} of {len(holders)}", holder_lines(holder, now))
    else:
        section("Holder", ["none"])
    if entry.waiters:
        for number, waiter in enumerate(entry.waiters, start=1):
            section(f"Waiter {number} of {len(entry.waiters)}", holder_lines(waiter, now))
    else:
        section("Waiters", ["none"])
    if entry.content is not None:
        section("Content (first bytes)", entry.content.splitlines() or ["(empty)"])
    return text


class LockDetailScreen(DetailScreen):
    #: Focus the body, so the arrow keys, PageDown and End scroll a long detail.
    AUTO_FOCUS = "#lock-detail-body"

    def __init__(self, entry: LockEntry, now: float) -> None:
        super().__init__(entry.path)
        self.entry = entry
        self.now = now

    def compose_content(self) -> ComposeResult:
        with VerticalScroll(id="lock-detail-body"):
            yield Static(detail_text(self.entry, self.now), markup=False)
