"""The Locks panel: every lock with its holder, waiters and verdict; repositories' hazards below.

The verdict is the first column so it stays in view however narrow the panel is (the
table scrolls sideways rather than squeezing).

`b` acts on the selected lock: a stale one is broken (re-verified at the moment of
acting), a held one's holder can be stopped; on anything else the key is greyed out.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Static

from backends.locks import BreakLock, Holder, LockEntry, LocksValue, LockVerdict, RepoHazards, StopLockHolder
from backends.rows import Row
from panels.base import show_text
from panels.locks.detail import LockDetailScreen
from panels.status import format_age
from panels.table import Column, VirtualTable
from panels.table_panel import TablePanel

#: The colour of each verdict (the word itself is always shown, so NO_COLOR loses nothing).
VERDICT_STYLES = {
    LockVerdict.HELD: "bold yellow",
    LockVerdict.FREE: "green",
    LockVerdict.STALE: "bold red",
    LockVerdict.UNKNOWN: "magenta",
}


def _age(value: Any) -> str:
    return "" if value is None else format_age(value)


def _verdict_style(value: Any) -> str | None:
    return VERDICT_STYLES.get(value)


#: Widest path shown in the table; longer ones keep their end (the file name), the detail view has it all.
PATH_WIDTH = 22


def short_path(value: Any) -> str:
    text = str(value)
    return text if len(text) <= PATH_WIDTH else "…" + text[-(PATH_WIDTH - 1) :]


def holder_cell(holder: Holder | None) -> str:
    """``4711 rsync``, ``4711 dead``, ``4711@web-2``: the pid first, so it lines up."""
    if holder is None:
        return ""
    if holder.pid is None:
        return "?"
    if holder.host and holder.alive is None:
        return f"{holder.pid}@{holder.host}"
    if holder.alive is False:
        return f"{holder.pid} dead"
    if holder.same_process is False:
        return f"{holder.pid} reused"
    what = holder.command or (" ".join(holder.cmdline) if holder.cmdline else holder.name) or ""
    return f"{holder.pid} {what}".strip()


def lock_row(entry: LockEntry) -> Row:
    return Row(
        entry.path,
        (entry.verdict, entry.path, entry.kind.value, len(entry.waiters), holder_cell(entry.holder), entry.age_s),
    )


def repo_line(repo: RepoHazards, now: float) -> Text:
    line = Text(f"{repo.path}", style="bold")
    if repo.branch:
        line.append(f" ({repo.branch}{' → ' + repo.upstream if repo.upstream else ''})")
    hazards = repo.hazards
    if not hazards:
        return line.append(": no sync hazards", style="green")
    line.append(": ")
    for index, hazard in enumerate(hazards):
        if index:
            line.append(" · ")
        line.append(hazard, style="bold red" if ("progress" in hazard or "unmerged" in hazard
                                                  or hazard.startswith("error")) else "yellow")
    for stash in repo.stash_entries:  # each one an update set aside: all of them, newest first
        age = "age unknown" if stash.created_at is None else f"{format_age(now - stash.created_at)} ago"
        line.append(f"\n  {stash.ref} · {age} · {stash.message}", style="dim")
    return line


class LocksPanel(TablePanel):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("b", "break_lock", "Break", tooltip="Break the selected stale lock, or stop a held lock's holder",
                id="locks.break_lock"),
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._value: LocksValue | None = None
        self._entries: dict[str, LockEntry] = {}

    def columns(self) -> list[Column]:
        return [
            Column("verdict", format=str, style=_verdict_style, max_width=7),
            Column("path", format=short_path, max_width=PATH_WIDTH),
            Column("kind", max_width=10),
            Column("waiters", numeric=True, max_width=7),
            Column("holder", flex=True, max_width=16),
            Column("age", numeric=True, format=_age, max_width=5),
        ]

    def rows_of(self, value: LocksValue) -> Iterable[Row]:
        return [lock_row(entry) for entry in value.locks]

    def compose_body(self) -> ComposeResult:
        yield from super().compose_body()
        # Scrolls when the repositories and their stashes outgrow their share of the panel.
        # Not focusable: the panel's keys stay on its table (the mouse wheel scrolls it).
        with VerticalScroll(id="locks-repos-scroll", classes="locks-repos", can_focus=False):
            yield Static("", id="locks-repos")

    def render_summary(self, value: LocksValue | None) -> None:
        if value is None:
            return
        self._value = value
        self._entries = {entry.path: entry for entry in value.locks}
        scroll = self.query_one("#locks-repos-scroll")
        if scroll.display != bool(value.repos):
            scroll.display = bool(value.repos)
        text = Text()
        for index, repo in enumerate(value.repos):
            if index:
                text.append("\n")
            text.append_text(repo_line(repo, self.clock()))
        show_text(self.query_one("#locks-repos", Static), text, layout=True)  # its height follows the stashes
        self.refresh_bindings_if_changed()

    @property
    def selected_entry(self) -> LockEntry | None:
        row = self.selected_row
        return None if row is None else self._entries.get(row.key)  # type: ignore[arg-type]

    @on(VirtualTable.CursorMoved)
    def _cursor_moved(self) -> None:
        self.refresh_bindings_if_changed()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action != "break_lock":
            return True
        entry = self.selected_entry
        if entry is None:
            return None
        if entry.verdict is LockVerdict.STALE:
            return True
        if entry.verdict is LockVerdict.HELD and entry.holder is not None and entry.holder.pid is not None:
            return True
        return None  # shown greyed out: breaking a free, unknown or unreachable lock is not offered

    def action_break_lock(self) -> None:
        entry = self.selected_entry
        if entry is None or self._value is None:
            return
        stale_after = self._value.stale_after
        if entry.verdict is LockVerdict.STALE:
            self.post_message(self.ActionRequested(BreakLock(entry.path, stale_after=stale_after)))
        elif entry.verdict is LockVerdict.HELD:
            self.post_message(self.ActionRequested(StopLockHolder(entry.path, stale_after=stale_after)))

    def open_detail(self, row: Row) -> None:
        entry = self._entries.get(row.key)  # type: ignore[arg-type]
        if entry is not None:
            self.app.push_screen(LockDetailScreen(entry, self.clock()))
