"""The Textual app: wires collectors to panels, runs actions, owns global keys."""

from __future__ import annotations

import asyncio
import gc
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.driver import Driver
from textual.drivers.linux_driver import LinuxDriver

from backends.actions import Action, Plan, Progress
from backends.collector import CollectorGroup, Snapshot
from backends.host import HostInfo
from console.action_runner import ActionResult, ActionStatus, run_action
from console.audit import AuditLog
from console.config import Config
from console.header import StatusHeader
from console.lag import LagProbe, write_lag_log
from console.lag_overlay import LagOverlay
from console.main_screen import MainScreen
from console.pacing import SnapshotPacer, delay_to_tick
from console.palette import ConsoleCommands
from console.screens.confirm import ConfirmScreen
from console.screens.help import HelpScreen, HelpSection
from console.screens.progress import ProgressScreen
from console.terminal_driver import HangupAwareDriver, TerminalLost
from console.vitals import vitals_of
from panels.base import Panel
from panels.catalog import build_panels

#: Signals that end the app like `q` does (SIGHUP: the SSH session dropped).
QUIT_SIGNALS = (signal.SIGTERM, signal.SIGHUP)

PaletteCommand = tuple[str, str, Callable[[], Any]]

SEVERITY = {
    ActionStatus.DONE: "information",
    ActionStatus.NOTHING_TO_DO: "information",
    ActionStatus.CANCELLED: "information",
    ActionStatus.REFUSED: "warning",
    ActionStatus.FAILED: "error",
}


class ScreenActionUI:
    """The action protocol's operator side in the TUI: confirm and progress dialogs."""

    def __init__(self, app: OpsConsoleApp) -> None:
        self.app = app
        self.screen: ProgressScreen | None = None

    async def confirm(self, plan: Plan) -> bool:
        return bool(await self.app.push_screen_wait(ConfirmScreen(plan)))

    def progress_started(self, plan: Plan, progress: Progress, cancelled: threading.Event) -> None:
        self.screen = ProgressScreen(plan, progress, cancelled)
        self.app.push_screen(self.screen)

    def progress_finished(self) -> None:
        if self.screen is not None:
            self.screen.dismiss()
            self.screen = None


class OpsConsoleApp(App[int]):
    CSS_PATH = [
        "app.tcss", "screens/dialogs.tcss", "../panels/panel.tcss", "../panels/ports/ports.tcss",
        "../panels/locks/locks.tcss", "../panels/pcap/pcap.tcss", "../panels/sessions/sessions.tcss",
    ]
    TITLE = "opsconsole"
    COMMANDS = App.COMMANDS | {ConsoleCommands}
    BINDINGS = [
        Binding("p", "pause", "Pause", tooltip="Pause or resume all collectors", id="app.pause"),
        Binding("question_mark", "help", "Help", tooltip="Every key of every panel", id="app.help"),
        Binding("ctrl+d", "toggle_lag", "Loop lag", tooltip="Show the event loop's lag (p50/p99/max)",
                show=False, id="app.lag"),
        Binding("q", "quit", "Quit", tooltip="Stop the collectors and exit", id="app.quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True, id="app.interrupt"),
    ]

    def __init__(
        self,
        config: Config,
        collectors: CollectorGroup,
        *,
        host: HostInfo,
        audit: AuditLog,
        panels: list[Panel],
        clock: Callable[[], float] = time.time,
        autostart: bool = True,
        owns_process: bool = False,
        lag_log: Path | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.collectors = collectors
        self.host = host
        self.audit = audit
        self.panels = {panel.spec.name: panel for panel in panels}
        self.clock = clock
        self.autostart = autostart
        #: The app is the process's whole life (the CLI): it takes SIGTERM/SIGHUP, and its exit is the process's.
        self.owns_process = owns_process
        self.lag_log = lag_log
        self.probe = LagProbe()
        self.pacer = SnapshotPacer(self._show_snapshot)
        self._unsubscribers: list[Callable[[], None]] = []
        self._probe_tasks: list[asyncio.Task[None]] = []
        self._previous_handlers: dict[int, Any] = {}
        self._stopped = False
        if config.keys:
            self.set_keymap(dict(config.keys))

    # -- life cycle ------------------------------------------------------------------

    def get_driver_class(self) -> type[Driver]:
        """In a real terminal, the driver that notices the terminal going away."""
        driver_class = super().get_driver_class()
        return HangupAwareDriver if driver_class is LinuxDriver else driver_class

    async def on_terminal_lost(self, message: TerminalLost) -> None:
        """Nobody can see or answer the console any more: leave as SIGHUP would."""
        await self.action_quit()

    def get_default_screen(self) -> MainScreen:
        self.main = MainScreen(
            list(self.panels.values()), self.host, self.probe, self.refresh_panel, self.clock, self.config.read_only
        )
        return self.main

    def on_mount(self) -> None:
        for name, panel in self.panels.items():
            collector = self.collectors[name]
            self._unsubscribers.append(collector.subscribe(partial(self._snapshot_arrived, name)))
            panel.show_snapshot(collector.snapshot)
        self.set_timer(delay_to_tick(self.clock()), self._start_ticking)
        self._probe_tasks.append(asyncio.create_task(self.probe.run(), name="lag-probe"))
        if self.lag_log is not None:
            log = write_lag_log(self.probe, self.lag_log, extra=lambda: asdict(vitals_of(self)))
            self._probe_tasks.append(asyncio.create_task(log, name="lag-log"))
        if self.autostart:
            self.collectors.start()
        # Everything built so far (Textual's DOM, styles, the panels) lives as long as the app:
        # kept out of the collector's full passes, which would otherwise walk it every time
        # and stall the loop for tens of ms while a scan or a snapshot allocates.
        self.call_after_refresh(gc.freeze)
        if self.owns_process:
            loop = asyncio.get_running_loop()
            for signum in QUIT_SIGNALS:
                self._previous_handlers[signum] = signal.getsignal(signum)
                loop.add_signal_handler(signum, lambda: self.call_next(self.action_quit))

    def _snapshot_arrived(self, name: str, snapshot: Snapshot[Any]) -> None:
        shown = self.panels[name].snapshot  # until a panel has had a value or an error, it waits for none
        self.pacer.arrived(name, snapshot, first=shown is None or (shown.value is None and shown.error is None))

    def _show_snapshot(self, name: str, snapshot: Snapshot[Any]) -> None:
        if self.is_running:  # once Textual is removing the panels, their widgets may already be gone
            self.panels[name].show_snapshot(snapshot)

    def _start_ticking(self) -> None:
        self.set_interval(1.0, self.tick)
        self.tick()

    def tick(self) -> None:
        """Once a second (console.pacing): new snapshots, the status lines' ages, the clock."""
        if not self.is_running:
            return  # the first tick is timed to the wall clock and may fire while the app closes
        self.pacer.flush()
        self.main.tick()

    async def shutdown(self) -> None:
        """Stop collectors and probes; safe to call twice.

        A running action needs nothing here: exiting cancels its worker, and the action
        runner then tells the action to stop, waits for it, and audits what it did.
        """
        if self._stopped:
            return
        self._stopped = True
        if not self.owns_process:
            # What the app kept out of collections may go now: another app may follow (tests).
            # When the process ends with the app, unfreezing would only make the interpreter's
            # last collection walk all of it: a fifth of a second more before the shell prompt.
            gc.unfreeze()
        for unsubscribe in self._unsubscribers:
            unsubscribe()
        for task in self._probe_tasks:
            task.cancel()
        await asyncio.gather(*self._probe_tasks, return_exceptions=True)
        await self.collectors.stop()
        loop = asyncio.get_running_loop()
        for signum, handler in self._previous_handlers.items():
            loop.remove_signal_handler(signum)  # this resets to SIG_DFL, so put back what was there
            signal.signal(signum, handler)

    async def action_quit(self) -> None:
        await self.shutdown()
        self.exit(0)

    async def on_unmount(self) -> None:
        await self.shutdown()

    # -- global actions --------------------------------------------------------------

    def refresh_panel(self, name: str) -> None:
        """Collect one panel now, off the loop; joins a collection already running."""
        self.pacer.expedite(name)
        self.run_worker(self.collectors[name].refresh(force=True), group="refresh", exit_on_error=False)

    def action_pause(self) -> None:
        if self.collectors.paused:
            self.collectors.resume()
            self.notify("collectors resumed")
        else:
            self.collectors.pause()
            self.notify("collectors paused: press p to resume")
        self.main.query_one(StatusHeader).paused = self.collectors.paused

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.help_sections()))

    def action_toggle_lag(self) -> None:
        self.main.query_one(LagOverlay).toggle()

    # -- what the help screen and the palette list -----------------------------------

    def key_for(self, binding: Binding) -> str:
        keymap = dict(self.config.keys)
        mapped = binding.key if binding.id is None else keymap.get(binding.id, binding.key)
        return ", ".join(self.get_key_display(Binding(key.strip(), "")) for key in mapped.split(","))

    def help_sections(self) -> list[HelpSection]:
        global_rows = [(self.key_for(binding), _explain(binding)) for binding, _ in self._global_bindings()]
        global_rows.append((self.get_key_display(Binding(self.COMMAND_PALETTE_BINDING, "")), "Command palette"))
        sections: list[HelpSection] = [("Global", global_rows)]
        for panel in self.panels.values():
            rows = [(self.key_for(binding), _explain(binding)) for binding in panel_bindings(panel)]
            sections.append((f"{panel.number} {panel.spec.title}", rows or [("", "no keys of its own yet")]))
        return sections

    def _global_bindings(self) -> Iterable[tuple[Binding, MainScreen | OpsConsoleApp]]:
        """Bindings with a description, with the node whose action they run."""
        for owner, bindings in ((self.main, MainScreen.BINDINGS), (self, self.BINDINGS)):
            for binding in _bindings(bindings):
                if binding.description and binding.id != "app.interrupt":
                    yield binding, owner

    def palette_commands(self) -> list[PaletteCommand]:
        """Every binding of the app and of every panel, as palette commands."""
        commands: list[PaletteCommand] = [
            (binding.description, f"{_explain(binding)} · key {self.key_for(binding)}",
             partial(owner.run_action, binding.action))
            for binding, owner in self._global_bindings()
        ]
        for index, panel in enumerate(self.panels.values()):
            for binding in panel_bindings(panel):
                commands.append(
                    (f"{panel.spec.title}: {binding.description}", f"{_explain(binding)} · key {self.key_for(binding)}",
                     partial(self._run_panel_binding, index, binding.action))
                )
        return commands

    def _run_panel_binding(self, index: int, action: str) -> None:
        self.main.action_focus_panel(index)
        panel = list(self.panels.values())[index]
        self.call_after_refresh(panel.run_action, action)

    # -- the action protocol ---------------------------------------------------------

    def on_panel_action_requested(self, message: Panel.ActionRequested) -> None:
        self.perform(message.action)

    @work(group="actions", exit_on_error=False)
    async def perform(self, action: Action) -> ActionResult:
        """Run an action through the protocol and tell the operator how it ended."""
        result = await run_action(
            action,
            ui=ScreenActionUI(self),
            audit=self.audit,
            read_only=self.config.read_only,
            refresh=self._refresh_after_action,
        )
        self.notify(result.message, severity=SEVERITY[result.status])  # type: ignore[arg-type]
        return result

    async def _refresh_after_action(self, name: str) -> object:
        """An action's own refresh: its result is drawn as soon as it is collected."""
        self.pacer.expedite(name)
        return await self.collectors[name].refresh(force=True)


def _explain(binding: Binding) -> str:
    """The longer wording of a binding for help and the palette: its tooltip, else its label."""
    return binding.tooltip or binding.description


def _bindings(bindings: Iterable[Any]) -> list[Binding]:
    """Normalise a BINDINGS list (Binding objects or tuples) into Binding objects."""
    return list(Binding.make_bindings(bindings))


def panel_bindings(panel: Panel) -> list[Binding]:
    """A panel's bindings including those it inherits (a table panel's `/` and `o`); a
    subclass's binding for the same key replaces its base's, as in Textual."""
    by_key: dict[str, Binding] = {}
    for cls in reversed(type(panel).__mro__):
        if isinstance(cls, type) and issubclass(cls, Panel) and "BINDINGS" in vars(cls):
            for binding in _bindings(vars(cls)["BINDINGS"]):
                by_key[binding.key] = binding
    return list(by_key.values())


def make_app(
    config: Config,
    collectors: CollectorGroup,
    *,
    host: HostInfo,
    audit: AuditLog,
    clock: Callable[[], float] = time.time,
    autostart: bool = True,
    owns_process: bool = False,
    lag_log: Path | None = None,
    panels: list[Panel] | None = None,
) -> OpsConsoleApp:
    """Build the app; the CLI calls this with real collectors, tests with their own
    (and, for tests of the shell alone, their own panels)."""
    return OpsConsoleApp(
        config,
        collectors,
        host=host,
        audit=audit,
        panels=build_panels(clock) if panels is None else panels,
        clock=clock,
        autostart=autostart,
        owns_process=owns_process,
        lag_log=lag_log,
    )
