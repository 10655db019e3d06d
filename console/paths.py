"""Where opsconsole's files live, following the XDG base directory conventions.

One place decides every location so the config loader, the caches, the lock code and
the audit log agree. These functions only compute paths; they never create anything,
so calling them has no side effects and is safe in tests and read-only mode. Each takes
the environment as a mapping so callers and tests can pass their own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

APP = "opsconsole"
SYSTEM_CONFIG = Path("/etc/opsconsole/config.toml")
ROOT_LOCK_DIR = Path("/run/lock/opsconsole")
ROOT_AUDIT_LOG = Path("/var/log/opsconsole/audit.log")


def config_search_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    """Config files to try, first match wins; an explicit --config is handled by the loader."""
    found = [Path(env["OPSCONSOLE_CONFIG"])] if env.get("OPSCONSOLE_CONFIG") else []
    return [*found, _xdg(env, "XDG_CONFIG_HOME", ".config") / APP / "config.toml", SYSTEM_CONFIG]


def state_dir(env: Mapping[str, str] = os.environ) -> Path:
    """Per-user state that should survive reboots (the audit log for non-root users)."""
    return _xdg(env, "XDG_STATE_HOME", ".local/state") / APP


def cache_dir(env: Mapping[str, str] = os.environ) -> Path:
    """Per-user data that can be rebuilt at any time (the PCAP scan cache)."""
    return _xdg(env, "XDG_CACHE_HOME", ".cache") / APP


def lock_dir(env: Mapping[str, str] = os.environ) -> Path:
    """The console's own lock directory; root shares the system one with other consoles."""
    if os.geteuid() == 0:
        return ROOT_LOCK_DIR
    runtime = _absolute(env, "XDG_RUNTIME_DIR")
    return runtime / APP / "locks" if runtime else state_dir(env) / "locks"


def default_audit_log(env: Mapping[str, str] = os.environ) -> Path:
    """Where actions are audited when the config does not say; root logs system-wide."""
    return ROOT_AUDIT_LOG if os.geteuid() == 0 else state_dir(env) / "audit.log"


def _xdg(env: Mapping[str, str], var: str, fallback: str) -> Path:
    """An XDG base directory, or its default under $HOME when unset, empty or relative."""
    return _absolute(env, var) or _home(env) / fallback


def _absolute(env: Mapping[str, str], var: str) -> Path | None:
    """The variable as a path; the XDG spec says relative values are invalid and ignored."""
    value = env.get(var, "")
    return Path(value) if os.path.isabs(value) else None


def _home(env: Mapping[str, str]) -> Path:
    """$HOME from the given environment, so a custom mapping is honoured throughout."""
    return Path(env["HOME"]) if env.get("HOME") else Path.home()
