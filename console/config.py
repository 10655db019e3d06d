"""The console's TOML config, loaded into frozen dataclasses with one-line errors.

Every TOML key is a dataclass field whose ``metadata`` holds its documentation (``doc``)
and what it accepts (``kind``: the words shown to users plus the check enforcing them).
Parsing, error messages, the rendered default file and ``config --show`` all walk that
one table, so a key cannot be documented one way and validated another.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import re
import textwrap
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime, time
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from console import paths

T = TypeVar("T")

DEFAULT_PATTERNS: tuple[str, ...] = tuple(
    f"{name}{suffix}"
    for suffix in ("", ".gz", ".zst", ".lz4")
    for name in ("*.pcap", "*.pcapng", "*.cap")
)
URL_SCHEMES = ("sqlite", "postgresql", "postgres", "http", "https")


class ConfigError(Exception):
    """A config the user can fix; str() is one line naming the file, key and expectation."""

    def __init__(self, message: str) -> None:
        super().__init__(_one_line(message))


# --- what a key accepts --------------------------------------------------------------


class _Mismatch(Exception):
    """Raised by a check: the value is not what its kind expects."""


class _Invalid(Exception):
    """A rejected value, where inside the key it sits (``[2]``) and what was expected."""

    def __init__(self, expected: str, value: object, suffix: str = "") -> None:
        super().__init__(expected)
        self.expected = expected
        self.value = value
        self.suffix = suffix


@dataclass(frozen=True, slots=True)
class _Kind:
    """What a key accepts: the words users see and the check (value, config dir) -> value."""

    expected: str
    check: Callable[[Any, Path], Any]
    table: bool = False  # a TOML table such as [keys], written as its own section

    def parse(self, value: object, base: Path) -> Any:
        try:
            return self.check(value, base)
        except _Mismatch:
            raise _Invalid(self.expected, value) from None


def _finite(value: object) -> float:
    """A TOML integer or float as a finite float; booleans are not numbers here."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Mismatch
    try:
        number = float(value)
    except OverflowError:
        raise _Mismatch from None
    if not math.isfinite(number):
        raise _Mismatch
    return number


def _float_kind(expected: str, ok: Callable[[float], bool]) -> _Kind:
    def check(value: object, base: Path) -> float:
        number = _finite(value)
        if not ok(number):
            raise _Mismatch
        return number

    return _Kind(expected, check)


def _int_kind(expected: str, ok: Callable[[int], bool]) -> _Kind:
    def check(value: object, base: Path) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not ok(value):
            raise _Mismatch
        return value

    return _Kind(expected, check)


def _check_bool(value: object, base: Path) -> bool:
    if not isinstance(value, bool):
        raise _Mismatch
    return value


def _check_text(value: object, base: Path) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Mismatch
    return value


def _check_path(value: object, base: Path) -> Path:
    """``~`` expanded; a relative path is relative to the config file's directory."""
    if not isinstance(value, str) or not value or "\0" in value:
        raise _Mismatch
    try:
        path = Path(value).expanduser()
    except RuntimeError:  # ~user for a user that does not exist
        raise _Mismatch from None
    return path if path.is_absolute() else base / path


def _check_glob(value: object, base: Path) -> str:
    return str(_check_path(value, base))


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(?:([kmgt])(?:i?b)?|b)?", re.IGNORECASE)


def _check_size(value: object, base: Path) -> int:
    """Bytes from an integer or "500G" / "1.5T" / "800MiB" (binary units, 1K = 1024)."""
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    elif isinstance(value, str) and (match := _SIZE.fullmatch(value.strip())):
        number, unit = match.groups()
        power = "kmgt".index(unit.lower()) + 1 if unit else 0
        size = int(Fraction(number) * 1024**power)
    else:
        raise _Mismatch
    if size <= 0:
        raise _Mismatch
    return size


def _check_url(value: object, base: Path) -> str:
    if not isinstance(value, str):
        raise _Mismatch
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. an unbalanced [ in an IPv6 host
        raise _Mismatch from None
    if parts.scheme not in URL_SCHEMES or (parts.scheme.startswith("http") and not parts.netloc):
        raise _Mismatch
    return value


def _within(kind: _Kind, value: object, base: Path, suffix: str) -> Any:
    """Parse one element of a list or table, naming its place if it is rejected."""
    try:
        return kind.parse(value, base)
    except _Invalid as error:
        raise _Invalid(error.expected, error.value, suffix + error.suffix) from None


def _list_kind(expected: str, item: _Kind, *, non_empty: bool = False) -> _Kind:
    def check(value: object, base: Path) -> tuple[Any, ...]:
        if not isinstance(value, list) or (non_empty and not value):
            raise _Mismatch
        return tuple(_within(item, v, base, f"[{i}]") for i, v in enumerate(value))

    return _Kind(expected, check)


_BOOL = _Kind("true or false", _check_bool)
_SECONDS = _float_kind("a number of seconds > 0", lambda v: v > 0)
_DAYS = _float_kind("a number of days > 0", lambda v: v > 0)
_PERCENT = _float_kind("a number from 0 to 100", lambda v: 0 <= v <= 100)
_COUNT = _int_kind("a whole number >= 0", lambda v: v >= 0)
_POSITIVE = _int_kind("a whole number >= 1", lambda v: v >= 1)
_PORT = _int_kind("a port number from 1 to 65535", lambda v: 1 <= v <= 65535)
_PATH = _Kind("a path string", _check_path)
_PATTERN = _Kind("a non-empty file name pattern string", _check_text)
_SIZE_KIND = _Kind(
    'a size in bytes: an integer or a string such as "500G", "1.5T", "800M"', _check_size
)
_URL = _Kind(
    f"a URL whose scheme is {', '.join(URL_SCHEMES[:-1])} or {URL_SCHEMES[-1]}", _check_url
)
_KEY = _Kind('a key name string such as "K" or "ctrl+k"', _check_text)


def _flatten(table: Mapping[str, object], prefix: str = "") -> Iterator[tuple[str, object]]:
    """Binding ids from [keys]; an unquoted dotted key ``ports.free_port`` nests in TOML."""
    for name, value in table.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", value


def _check_keys(value: object, base: Path) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        raise _Mismatch
    return tuple((name, _within(_KEY, key, base, f".{name}")) for name, key in _flatten(value))


_KEYS = _Kind('a table of binding id = key, e.g. "ports.free_port" = "K"', _check_keys, table=True)


def _text_table(expected: str) -> _Kind:
    """A TOML table of name = non-empty string (HTTP headers, field and state names)."""

    def check(value: object, base: Path) -> tuple[tuple[str, str], ...]:
        if not isinstance(value, dict):
            raise _Mismatch
        return tuple((name, _within(_TEXT, text, base, f".{name}")) for name, text in value.items())

    return _Kind(expected, check, table=True)


_TEXT = _Kind("a non-empty string", _check_text)


def _option(
    default: Any,
    kind: _Kind,
    doc: str,
    *,
    example: str | None = None,
    fallback: Callable[[], Path] | None = None,
) -> Any:
    """A TOML key: default, accepted values, documentation, and for None an example line."""
    return field(
        default=default,
        metadata={"doc": doc, "kind": kind, "example": example, "fallback": fallback},
    )


def _section(cls: type[Any], doc: str) -> Any:
    """A nested TOML table; a factory so defaults needing the environment are computed late."""
    return field(default_factory=cls, metadata={"doc": doc, "section": cls})


def _default_lock_globs() -> tuple[str, ...]:
    return ("/run/lock/*", "/var/lock/*", f"{paths.lock_dir()}/*")


# --- the schema ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetentionConfig:
    """The limits that decide what `cleanup` deletes."""

    max_age_days: float | None = _option(
        None, _DAYS, "Delete capture files older than this many days.", example="30"
    )
    max_total_bytes: int | None = _option(
        None,
        _SIZE_KIND,
        "Delete the oldest files while the captures take more than this many bytes"
        " (K, M, G, T are powers of 1024).",
        example='"500G"',
    )
    min_free_percent: float | None = _option(
        None,
        _PERCENT,
        "Delete the oldest files while the capture filesystem has less than this percent free.",
        example="10",
    )
    keep_newest: int = _option(
        10, _COUNT, "Never delete the newest this many files, whatever the limits say."
    )


@dataclass(frozen=True, slots=True)
class PcapConfig:
    """The capture directory behind the PCAP cache panel."""

    root: Path | None = _option(
        None,
        _PATH,
        "Directory holding the capture files; the PCAP panel is off until this is set.",
        example='"/var/log/netmonitor/pcap"',
    )
    patterns: tuple[str, ...] = _option(
        DEFAULT_PATTERNS,
        _list_kind("a non-empty list of file name pattern strings", _PATTERN, non_empty=True),
        "File name patterns (shell globs) that count as capture files.",
    )
    ttl: float = _option(
        300.0,
        _SECONDS,
        "How long a scan result is served before it is refreshed in the background.",
    )
    scan_timeout: float = _option(
        120.0, _SECONDS, "A scan running longer than this is abandoned; the last good result stays."
    )
    cache_dir: Path | None = _option(
        None,
        _PATH,
        "Where the scan cache shared by every console on this host is kept"
        " (default: $XDG_CACHE_HOME/opsconsole, i.e. ~/.cache/opsconsole).",
        example='"/var/cache/opsconsole"',
        fallback=paths.cache_dir,
    )
    active_window_s: float = _option(
        120.0,
        _SECONDS,
        "A file modified this recently is still being written: never deleted, shown as active.",
    )
    full_rescan_every: int = _option(
        12,
        _POSITIVE,
        "Every this many scans walk the whole tree instead of only changed directories.",
    )
    cross_filesystems: bool = _option(
        False, _BOOL, "Follow the scan into other mounted filesystems under root."
    )
    interval: float = _option(10.0, _SECONDS, "Seconds between refreshes of the panel.")
    retention: RetentionConfig = _section(RetentionConfig, "Retention limits used by cleanup.")


@dataclass(frozen=True, slots=True)
class SessionsConfig:
    """The analysis-session registry behind the Sessions panel."""

    url: str | None = _option(
        None,
        _URL,
        "Where the session registry lives: a sqlite:// database file, postgresql://user@host/db,"
        " or an http(s):// endpoint. The Sessions panel is off until this is set.",
        example='"sqlite:////var/lib/app/sessions.db"',
    )
    interval: float = _option(
        0.5,
        _SECONDS,
        "Seconds between refreshes of the panel (for a database only a cheap"
        " anything-new check unless something changed).",
    )
    timeout: float = _option(
        5.0, _SECONDS, "A refresh taking longer than this is abandoned (for http(s): the whole reply)."
    )
    items: str = _option(
        "sessions",
        _TEXT,
        "For an http(s):// url: where the list of sessions is in the JSON reply, as dotted keys"
        " (a reply that is itself a list is used as it is).",
    )
    token: str | None = _option(
        None, _TEXT, "For an http(s):// url: a bearer token to send.", example='"secret"'
    )
    token_env: str | None = _option(
        None,
        _TEXT,
        "For an http(s):// url: the environment variable holding the bearer token (kept out of"
        " the config file).",
        example='"OPSCONSOLE_SESSIONS_TOKEN"',
    )
    connect_timeout: float = _option(
        3.0, _SECONDS, "For an http(s):// url: seconds to wait for the connection."
    )
    read_timeout: float = _option(
        3.0, _SECONDS, "For an http(s):// url: seconds to wait for each part of the reply."
    )
    retries: int = _option(
        2,
        _COUNT,
        "For an http(s):// url: retries after a refused connection, a timeout or a 5xx reply,"
        " with doubling backoff.",
    )
    retry_after_max: float = _option(
        2.0,
        _SECONDS,
        "For an http(s):// url: the longest Retry-After of a 503 reply that is waited out;"
        " longer is reported as an error.",
    )
    headers: tuple[tuple[str, str], ...] = _option(
        (),
        _text_table('a table of header name = value, e.g. "X-Api-Key" = "secret"'),
        "For an http(s):// url: HTTP headers to send.",
        example='"X-Api-Key" = "secret"',
    )
    fields: tuple[tuple[str, str], ...] = _option(
        (),
        _text_table('a table of our field name = the reply\'s field name, e.g. id = "session_id"'),
        "For an http(s):// url: the reply's names for id, state, label, owner, progress,"
        " created_at, updated_at, last_access_at where they differ.",
        example='id = "session_id"',
    )
    state_names: tuple[tuple[str, str], ...] = _option(
        (),
        _text_table('a table of the reply\'s state = ours, e.g. partial = "stopped"'),
        "For an http(s):// url: the reply's state names mapped to active, completed, stopped,"
        " failed or expired.",
        example='partial = "stopped"',
    )


@dataclass(frozen=True, slots=True)
class PortsConfig:
    """Ports the Ports panel always shows, listening or not."""

    watch: tuple[int, ...] = _option(
        (),
        _list_kind("a list of port numbers from 1 to 65535", _PORT),
        "Ports to always show, e.g. [5000, 8080].",
    )
    interval: float = _option(2.0, _SECONDS, "Seconds between refreshes of the panel.")
    timeout: float = _option(5.0, _SECONDS, "A refresh taking longer than this is abandoned.")


@dataclass(frozen=True, slots=True)
class LocksConfig:
    """Lock files and git repositories the Locks panel watches."""

    paths: tuple[str, ...] = field(
        default_factory=_default_lock_globs,
        metadata={
            "doc": "Lock file globs to watch. The default is /run/lock/*, /var/lock/* and the"
            " console's own lock directory, which depends on the user running it.",
            "kind": _list_kind(
                "a list of path glob strings", _Kind("a path glob string", _check_glob)
            ),
            "example": None,
            "fallback": None,
        },
    )
    repos: tuple[Path, ...] = _option(
        (),
        _list_kind("a list of path strings", _PATH),
        "Git repositories to check for stashes and merges in progress.",
    )
    stale_after: float = _option(
        600.0, _SECONDS, "Age after which a lock with no live holder counts as stale."
    )
    interval: float = _option(5.0, _SECONDS, "Seconds between refreshes of the panel.")
    timeout: float = _option(10.0, _SECONDS, "A refresh taking longer than this is abandoned.")


@dataclass(frozen=True, slots=True)
class Config:
    """The whole console config; every key is optional."""

    read_only: bool = _option(
        False, _BOOL, "Refuse every destructive action (same as --read-only)."
    )
    audit_log: Path | None = _option(
        None,
        _PATH,
        "File every action is appended to as one JSON line (default: /var/log/opsconsole/audit.log"
        " as root, else ~/.local/state/opsconsole/audit.log).",
        example='"/var/log/opsconsole/audit.log"',
        fallback=paths.default_audit_log,
    )
    keys: tuple[tuple[str, str], ...] = _option(
        (),
        _KEYS,
        "Key bindings to override: binding id, then the key to press.",
        example='"ports.free_port" = "K"',
    )
    pcap: PcapConfig = _section(PcapConfig, "PCAP cache panel.")
    sessions: SessionsConfig = _section(SessionsConfig, "Sessions panel.")
    ports: PortsConfig = _section(PortsConfig, "Ports panel.")
    locks: LocksConfig = _section(LocksConfig, "Locks panel.")
    source: Path | None = field(
        default=None, metadata={"doc": "The file this config was loaded from (not a TOML key)."}
    )


# --- loading -------------------------------------------------------------------------


def load_config(explicit: Path | None = None, env: Mapping[str, str] = os.environ, *,
                read_only: bool = False) -> Config:
    """The explicit file (which must exist), else the first of the search paths that exists;
    ``read_only`` (``--read-only``) overrides the file's own setting."""
    config = _load(explicit, env)
    return dataclasses.replace(config, read_only=True) if read_only else config


def _load(explicit: Path | None, env: Mapping[str, str]) -> Config:
    if explicit is not None:
        text = _read(explicit.absolute())
        if text is None:
            raise ConfigError(f"config error: --config {explicit}: no such file")
        return parse_config(text, explicit.absolute())
    for candidate in paths.config_search_paths(env):
        text = _read(candidate.absolute())
        if text is not None:
            return parse_config(text, candidate.absolute())
    return Config()


def parse_config(text: str, source: Path) -> Config:
    """Parse TOML text; relative paths in it are taken relative to ``source``'s directory."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise _error(source, f"TOML syntax error: {error}") from None
    return dataclasses.replace(_build(Config, table, (), source), source=source)


def _read(path: Path) -> str | None:
    """The file's text, or None if there is no such file; any other failure is a ConfigError."""
    try:
        return path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except UnicodeDecodeError as error:
        raise _error(path, f"cannot read: not UTF-8 text (byte {error.start})") from None
    except OSError as error:
        raise _error(path, f"cannot read: {error.strerror or error}") from None


def _build(cls: type[T], table: Mapping[str, object], where: tuple[str, ...], source: Path) -> T:
    """One dataclass from one TOML table; missing keys keep their defaults."""
    known = _toml_fields(cls)
    values: dict[str, object] = {}
    for name, value in table.items():
        if name not in known:
            raise _unknown(known, name, value, where, source)
        values[name] = _parse_field(known[name], value, where, source)
    return cls(**values)


def _parse_field(
    f: dataclasses.Field[Any], value: object, where: tuple[str, ...], source: Path
) -> object:
    section = f.metadata.get("section")
    if section is not None:
        if not isinstance(value, dict):
            raise _error(
                source, f"[{_dotted(where, f.name)}]: expected a table, got {_show(value)}"
            )
        return _build(section, value, (*where, f.name), source)
    kind: _Kind = f.metadata["kind"]
    try:
        return kind.parse(value, source.parent)
    except _Invalid as error:
        label = _label(where, f.name, kind.table) + error.suffix
        raise _error(
            source, f"{label}: expected {error.expected}, got {_show(error.value)}"
        ) from None


def _unknown(
    known: Mapping[str, dataclasses.Field[Any]],
    name: str,
    value: object,
    where: tuple[str, ...],
    source: Path,
) -> ConfigError:
    """An unknown key or section, with the closest known name as a hint when there is one."""
    if isinstance(value, dict):
        target, problem = _dotted(where, name), f"[{_dotted(where, name)}]: unknown section"
        choices = [_dotted(where, n) for n, f in known.items() if _is_table(f)]
    else:
        target, problem = name, f"{_label(where, name, False)}: unknown key"
        choices = [n for n, f in known.items() if not _is_table(f)]
    close = difflib.get_close_matches(target, choices, n=1)
    return _error(source, problem + (f' (did you mean "{close[0]}"?)' if close else ""))


def _error(source: Path, detail: str) -> ConfigError:
    return ConfigError(f"config error in {source}: {detail}")


def _one_line(text: str) -> str:
    """Escape line breaks and other control characters a key or path might smuggle in."""
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text
    )


# --- field table helpers -------------------------------------------------------------


def _toml_fields(cls: type[Any]) -> dict[str, dataclasses.Field[Any]]:
    """The fields that are TOML keys or tables (``source`` is not)."""
    return {f.name: f for f in fields(cls) if "kind" in f.metadata or "section" in f.metadata}


def _is_table(f: dataclasses.Field[Any]) -> bool:
    return "section" in f.metadata or f.metadata["kind"].table


def _dotted(where: tuple[str, ...], name: str) -> str:
    return ".".join((*where, name))


def _label(where: tuple[str, ...], name: str, table: bool) -> str:
    """How errors name a key: ``[pcap].ttl``, ``read_only``, or ``[keys]`` for a table."""
    if table:
        return f"[{_dotted(where, name)}]"
    return f"[{'.'.join(where)}].{name}" if where else name


_TYPE_NAMES = {
    bool: "boolean",
    int: "integer",
    float: "float",
    str: "string",
    list: "array",
    dict: "table",
}


def _show(value: object) -> str:
    """A rejected value as the user wrote it, kept short, with its TOML type."""
    text = _toml(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({_TYPE_NAMES.get(type(value), type(value).__name__)})"


def _toml(value: object) -> str:
    """A value in TOML syntax on one line."""
    match value:
        case bool():
            return "true" if value else "false"
        case int() | float():
            return repr(value)
        case str() | Path():
            return json.dumps(str(value), ensure_ascii=False)
        case tuple() | list():
            return "[" + ", ".join(map(_toml, value)) + "]"
        case dict():
            return "{" + ", ".join(f"{_toml_key(k)} = {_toml(v)}" for k, v in value.items()) + "}"
        case datetime() | date() | time():
            return value.isoformat()
        case _:
            return str(value)


def _toml_key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name, ensure_ascii=False)


# --- rendering -----------------------------------------------------------------------

_HEADER = """\
# opsconsole configuration.
# Read from --config FILE, else $OPSCONSOLE_CONFIG, else
# $XDG_CONFIG_HOME/opsconsole/config.toml (~/.config/...), else /etc/opsconsole/config.toml.
# Every section and key is optional; the values below are the defaults. Lines that
# start with "# name =" are examples: remove the "#" to use them. Paths may start
# with ~; a relative path is relative to the directory of this file."""


def render_default_config() -> str:
    """Every section and key, documented, with its default: the starting point for a config."""
    return "\n".join([_HEADER, *_render(Config(), ())]) + "\n"


def _render(obj: object, where: tuple[str, ...]) -> Iterator[str]:
    """A table's own keys first (TOML requires it), then its sub-tables."""
    known = _toml_fields(type(obj)).values()
    for f in (f for f in known if not _is_table(f)):
        yield from ("", *_comment(f), _assignment(f, getattr(obj, f.name)))
    for f in (f for f in known if _is_table(f)):
        yield from ("", *_comment(f), f"[{_dotted(where, f.name)}]")
        if "section" in f.metadata:
            yield from _render(getattr(obj, f.name), (*where, f.name))
        else:
            yield f"# {f.metadata['example']}"


def _comment(f: dataclasses.Field[Any]) -> list[str]:
    kind: _Kind | None = f.metadata.get("kind")
    text = f.metadata["doc"] + (f" Expected: {kind.expected}." if kind else "")
    return [f"# {line}" for line in textwrap.wrap(text, 84)]


def _assignment(f: dataclasses.Field[Any], value: object) -> str:
    """``name = default``; commented out when unset (with an example) or user-dependent."""
    if value is None:
        return f"# {f.name} = {f.metadata['example']}"
    line = f"{f.name} = {_toml(value)}"
    if f.default is dataclasses.MISSING:
        return f"# {line}"
    if isinstance(value, tuple) and len(line) > 88:
        return "\n".join([f"{f.name} = [", *(f"    {_toml(v)}," for v in value), "]"])
    return line


def describe_config(config: Config) -> str:
    """Where the config came from and every effective value, as ``section.key = value`` lines."""
    origin = str(config.source) if config.source else "built-in defaults"
    return "\n".join([f"config: {origin}", *_describe(config, ())])


def _describe(obj: object, where: tuple[str, ...]) -> Iterator[str]:
    for f in _toml_fields(type(obj)).values():
        value = getattr(obj, f.name)
        if "section" in f.metadata:
            yield from _describe(value, (*where, f.name))
            continue
        if value is None and f.metadata["fallback"] is not None:
            value = f.metadata["fallback"]()
        shown = (
            "(not set)"
            if value is None
            else _toml(dict(value) if f.metadata["kind"].table else value)
        )
        yield f"{_dotted(where, f.name)} = {shown}"
