"""Config loading, validation messages, rendering and XDG paths, with real files in tmp_path."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from console import paths
from console.config import (
    DEFAULT_PATTERNS,
    Config,
    ConfigError,
    LocksConfig,
    PcapConfig,
    PortsConfig,
    RetentionConfig,
    SessionsConfig,
    describe_config,
    load_config,
    parse_config,
    render_default_config,
)
from tests.nobody import as_nobody

SCHEMA = (Config, PcapConfig, RetentionConfig, SessionsConfig, PortsConfig, LocksConfig)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An environment that cannot pick up a real ~/.config file or $OPSCONSOLE_CONFIG."""
    return {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def load_text(tmp_path: Path, text: str) -> Config:
    return load_config(write(tmp_path / "config.toml", text))


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, text)
    return str(caught.value)


def toml_fields(cls: type) -> Iterator[dataclasses.Field[object]]:
    return (f for f in dataclasses.fields(cls) if f.name != "source")


# --- finding the file ----------------------------------------------------------------


def test_no_file_gives_defaults(env: dict[str, str]) -> None:
    config = load_config(env=env)
    assert config == Config()
    assert config.source is None
    assert config.pcap.patterns == DEFAULT_PATTERNS
    assert len(DEFAULT_PATTERNS) == 12 and "*.pcapng.zst" in DEFAULT_PATTERNS
    assert config.pcap.retention == RetentionConfig(keep_newest=10)
    assert config.locks.paths == ("/run/lock/*", "/var/lock/*", f"{paths.lock_dir()}/*")


def test_search_order_explicit_then_env_then_xdg(tmp_path: Path, env: dict[str, str]) -> None:
    xdg = write(tmp_path / "xdg/opsconsole/config.toml", "[pcap]\nttl = 1\n")
    assert load_config(env=env).source == xdg

    from_env = write(tmp_path / "env.toml", "[pcap]\nttl = 2\n")
    env["OPSCONSOLE_CONFIG"] = str(from_env)
    assert load_config(env=env).pcap.ttl == 2.0

    explicit = write(tmp_path / "explicit.toml", "[pcap]\nttl = 3\n")
    config = load_config(explicit, env=env)
    assert (config.pcap.ttl, config.source) == (3.0, explicit)


def test_missing_env_file_falls_through_to_xdg(tmp_path: Path, env: dict[str, str]) -> None:
    xdg = write(tmp_path / "xdg/opsconsole/config.toml", "")
    env["OPSCONSOLE_CONFIG"] = str(tmp_path / "absent.toml")
    assert load_config(env=env).source == xdg


def test_source_is_absolute_for_a_relative_explicit_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "c.toml", '[pcap]\nroot = "captures"\n')
    monkeypatch.chdir(tmp_path)
    config = load_config(Path("c.toml"))
    assert config.source == tmp_path / "c.toml"
    assert config.pcap.root == tmp_path / "captures"


# --- values --------------------------------------------------------------------------

FULL = """
read_only = true
audit_log = "/var/log/x/audit.log"

[keys]
"ports.free_port" = "K"
sessions.stop = "ctrl+s"

[pcap]
root = "/data/pcap"
patterns = ["*.pcap", "*.erf"]
ttl = 60
scan_timeout = 30.5
cache_dir = "/var/cache/oc"
active_window_s = 90
full_rescan_every = 3
cross_filesystems = true
interval = 15

[pcap.retention]
max_age_days = 14
max_total_bytes = "1.5T"
min_free_percent = 12.5
keep_newest = 0

[sessions]
url = "postgresql://app@db/sessions"
interval = 2
timeout = 3
items = "data.sessions"
token = "t0ken"
token_env = "APP_TOKEN"
connect_timeout = 1.5
read_timeout = 2.5
retries = 4
retry_after_max = 9

[sessions.headers]
"X-Api-Key" = "k"

[sessions.fields]
id = "session_id"

[sessions.state_names]
partial = "stopped"

[ports]
watch = [5000, 8080]
interval = 1.5
timeout = 4

[locks]
paths = ["/srv/app/*.lock"]
repos = ["/srv/repo"]
stale_after = 300
interval = 6
timeout = 7
"""


def test_every_key_round_trips(tmp_path: Path) -> None:
    source = write(tmp_path / "full.toml", FULL)
    expected = Config(
        read_only=True,
        audit_log=Path("/var/log/x/audit.log"),
        keys=(("ports.free_port", "K"), ("sessions.stop", "ctrl+s")),
        pcap=PcapConfig(
            root=Path("/data/pcap"),
            patterns=("*.pcap", "*.erf"),
            ttl=60.0,
            scan_timeout=30.5,
            cache_dir=Path("/var/cache/oc"),
            active_window_s=90.0,
            full_rescan_every=3,
            cross_filesystems=True,
            interval=15.0,
            retention=RetentionConfig(
                max_age_days=14.0,
                max_total_bytes=int(1.5 * 1024**4),
                min_free_percent=12.5,
                keep_newest=0,
            ),
        ),
        sessions=SessionsConfig(
            url="postgresql://app@db/sessions",
            interval=2.0,
            timeout=3.0,
            items="data.sessions",
            token="t0ken",
            token_env="APP_TOKEN",
            connect_timeout=1.5,
            read_timeout=2.5,
            retries=4,
            retry_after_max=9.0,
            headers=(("X-Api-Key", "k"),),
            fields=(("id", "session_id"),),
            state_names=(("partial", "stopped"),),
        ),
        ports=PortsConfig(watch=(5000, 8080), interval=1.5, timeout=4.0),
        locks=LocksConfig(
            paths=("/srv/app/*.lock",),
            repos=(Path("/srv/repo"),),
            stale_after=300.0,
            interval=6.0,
            timeout=7.0,
        ),
        source=source,
    )
    config = load_config(source)
    assert config == expected
    assert isinstance(config.pcap.ttl, float) and isinstance(
        config.pcap.retention.max_age_days, float
    )
    assert_no_default_left(config, Config())


def assert_no_default_left(config: object, default: object) -> None:
    """FULL must set every key, so this test breaks when a field is added without it."""
    for f in toml_fields(type(config)):
        value, default_value = getattr(config, f.name), getattr(default, f.name)
        if dataclasses.is_dataclass(value):
            assert_no_default_left(value, default_value)
        else:
            assert value != default_value, f"FULL does not set {f.name}"


def test_relative_paths_resolve_against_the_config_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    config = load_config(
        write(
            tmp_path / "etc/config.toml",
            'audit_log = "~/audit.log"\n'
            '[pcap]\nroot = "captures"\ncache_dir = "../cache"\n'
            '[locks]\npaths = ["locks/*.pid", "/abs/*"]\nrepos = ["repo", "~/src"]\n',
        )
    )
    etc = tmp_path / "etc"
    assert config.audit_log == tmp_path / "home/audit.log"
    assert config.pcap.root == etc / "captures"
    assert config.pcap.cache_dir == etc / "../cache"
    assert config.locks.paths == (f"{etc}/locks/*.pid", "/abs/*")
    assert config.locks.repos == (etc / "repo", tmp_path / "home/src")


@pytest.mark.parametrize(
    ("written", "size"),
    [
        ('"500G"', 500 * 1024**3),
        ('"1.5T"', 3 * 1024**4 // 2),
        ('"800M"', 800 * 1024**2),
        ('"10K"', 10 * 1024),
        ('"123"', 123),
        ('"123B"', 123),
        ('"10KiB"', 10 * 1024),
        ('"2gb"', 2 * 1024**3),
        ('" 4 t "', 4 * 1024**4),
        ("1048576", 1048576),
    ],
)
def test_size_strings(tmp_path: Path, written: str, size: int) -> None:
    config = load_text(tmp_path, f"[pcap.retention]\nmax_total_bytes = {written}\n")
    assert config.pcap.retention.max_total_bytes == size


@pytest.mark.parametrize(
    "written", ['"12Q"', '""', '"G"', '"-5G"', '"0"', "0", "1.5", "true", '"1.5.2G"', '"5iB"']
)
def test_bad_sizes_are_rejected(tmp_path: Path, written: str) -> None:
    message = error_of(tmp_path, f"[pcap.retention]\nmax_total_bytes = {written}\n")
    assert "[pcap.retention].max_total_bytes: expected a size in bytes" in message


def test_keys_keep_order_and_accept_dotted_tables(tmp_path: Path) -> None:
    config = load_text(
        tmp_path,
        '[keys]\n"ports.free_port" = "K"\nlocks.break = "b"\n\n[keys.sessions]\nstop = "s"\n',
    )
    assert config.keys == (("ports.free_port", "K"), ("locks.break", "b"), ("sessions.stop", "s"))


def test_sessions_url_schemes(tmp_path: Path) -> None:
    for url in (
        "sqlite:////var/lib/app/s.db",
        "postgres://u@h/db",
        "https://app.example/api/sessions",
    ):
        assert load_text(tmp_path, f'[sessions]\nurl = "{url}"\n').sessions.url == url


def test_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().pcap.ttl = 1.0  # type: ignore[misc]


# --- errors --------------------------------------------------------------------------

PARSE_ERRORS = [
    ('[pcap]\nrooot = "/x"\n', '[pcap].rooot: unknown key (did you mean "root"?)'),
    ("[pcap]\nzzzzzz = 1\n", "[pcap].zzzzzz: unknown key"),
    ("readonly = true\n", 'readonly: unknown key (did you mean "read_only"?)'),
    ("[pcaps]\nttl = 1\n", '[pcaps]: unknown section (did you mean "pcap"?)'),
    (
        "[pcap.retentoin]\nkeep_newest = 1\n",
        '[pcap.retentoin]: unknown section (did you mean "pcap.retention"?)',
    ),
    ("[zzzzzz]\n", "[zzzzzz]: unknown section"),
    ('[pcap]\nttl = "abc"\n', '[pcap].ttl: expected a number of seconds > 0, got "abc" (string)'),
    (
        "[locks]\nstale_after = true\n",
        "[locks].stale_after: expected a number of seconds > 0, got true (boolean)",
    ),
    (
        "[sessions]\ntimeout = 0\n",
        "[sessions].timeout: expected a number of seconds > 0, got 0 (integer)",
    ),
    (
        "[pcap]\ninterval = -1.5\n",
        "[pcap].interval: expected a number of seconds > 0, got -1.5 (float)",
    ),
    ("[pcap]\nttl = inf\n", "[pcap].ttl: expected a number of seconds > 0, got inf (float)"),
    (
        '[ports]\nwatch = ["5000"]\n',
        '[ports].watch[0]: expected a port number from 1 to 65535, got "5000" (string)',
    ),
    (
        "[ports]\nwatch = [80, 70000]\n",
        "[ports].watch[1]: expected a port number from 1 to 65535, got 70000 (integer)",
    ),
    (
        "[ports]\nwatch = [5000.0]\n",
        "[ports].watch[0]: expected a port number from 1 to 65535, got 5000.0 (float)",
    ),
    (
        "[ports]\nwatch = [true]\n",
        "[ports].watch[0]: expected a port number from 1 to 65535, got true (boolean)",
    ),
    (
        "[ports]\nwatch = 5000\n",
        "[ports].watch: expected a list of port numbers from 1 to 65535, got 5000 (integer)",
    ),
    (
        '[sessions]\nurl = "mysql://db/app"\n',
        "[sessions].url: expected a URL whose scheme is sqlite, postgresql, postgres, http"
        ' or https, got "mysql://db/app" (string)',
    ),
    (
        '[sessions]\nurl = "https://"\n',
        "[sessions].url: expected a URL whose scheme is sqlite, postgresql, postgres, http"
        ' or https, got "https://" (string)',
    ),
    ('read_only = "yes"\n', 'read_only: expected true or false, got "yes" (string)'),
    ("audit_log = 5\n", "audit_log: expected a path string, got 5 (integer)"),
    ("pcap = 5\n", "[pcap]: expected a table, got 5 (integer)"),
    (
        "[pcap]\npatterns = []\n",
        "[pcap].patterns: expected a non-empty list of file name pattern strings, got [] (array)",
    ),
    (
        '[pcap]\npatterns = ["*.pcap", 7]\n',
        "[pcap].patterns[1]: expected a non-empty file name pattern string, got 7 (integer)",
    ),
    (
        "[pcap]\nfull_rescan_every = 0\n",
        "[pcap].full_rescan_every: expected a whole number >= 1, got 0 (integer)",
    ),
    (
        "[pcap.retention]\nkeep_newest = -1\n",
        "[pcap.retention].keep_newest: expected a whole number >= 0, got -1 (integer)",
    ),
    (
        "[pcap.retention]\nmin_free_percent = 150\n",
        "[pcap.retention].min_free_percent: expected a number from 0 to 100, got 150 (integer)",
    ),
    (
        '[pcap.retention]\nmax_total_bytes = "12Q"\n',
        "[pcap.retention].max_total_bytes: expected a size in bytes: an integer or a string"
        ' such as "500G", "1.5T", "800M", got "12Q" (string)',
    ),
    (
        '[locks]\nrepos = ["/srv/repo", ""]\n',
        '[locks].repos[1]: expected a path string, got "" (string)',
    ),
    (
        "keys = 3\n",
        '[keys]: expected a table of binding id = key, e.g. "ports.free_port" = "K",'
        " got 3 (integer)",
    ),
    (
        '[keys]\n"ports.free_port" = 5\n',
        '[keys].ports.free_port: expected a key name string such as "K" or "ctrl+k",'
        " got 5 (integer)",
    ),
]


@pytest.mark.parametrize(("text", "detail"), PARSE_ERRORS)
def test_error_messages(tmp_path: Path, text: str, detail: str) -> None:
    message = error_of(tmp_path, text)
    assert message == f"config error in {tmp_path / 'config.toml'}: {detail}"


@pytest.mark.parametrize(("text", "detail"), PARSE_ERRORS)
def test_error_is_one_line_naming_file_and_key(tmp_path: Path, text: str, detail: str) -> None:
    message = error_of(tmp_path, text)
    key = re.match(r"(\[[^\]]*\](\.\w+)?|\w+)", detail)
    assert key is not None
    assert (
        "\n" not in message and str(tmp_path / "config.toml") in message and key.group() in message
    )


def test_toml_syntax_error(tmp_path: Path) -> None:
    text = "[pcap]\nttl = \n"
    with pytest.raises(tomllib.TOMLDecodeError) as caught:
        tomllib.loads(text)
    assert "line 2" in str(caught.value)
    message = error_of(tmp_path, text)
    assert (
        message == f"config error in {tmp_path / 'config.toml'}: TOML syntax error: {caught.value}"
    )


def test_control_characters_cannot_break_the_line(tmp_path: Path) -> None:
    message = error_of(tmp_path, '"evil\\nkey\\u2028x" = 1\n[pcap]\nttl = "a\\nb"\n')
    assert message.splitlines() == [message]
    assert "evil\\nkey\\u2028x: unknown key" in message


def test_long_values_are_clipped(tmp_path: Path) -> None:
    message = error_of(tmp_path, f'[pcap]\nttl = "{"x" * 500}"\n')
    assert message.endswith(f'got "{"x" * 56}... (string)')


def test_missing_explicit_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "x.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(missing)
    assert str(caught.value) == f"config error: --config {missing}: no such file"


def config_error_as_nobody(path: Path) -> str:
    """load_config as uid 65534; the error text (or that it loaded)."""

    def load() -> dict[str, str]:
        try:
            load_config(path)
        except ConfigError as exc:
            return {"message": str(exc)}
        return {"message": "loaded without error"}

    return as_nobody(load)["message"]


def test_unreadable_file() -> None:
    """chmod 000; as root the read is made by a child that drops to uid 65534 ("nobody")."""
    folder = Path(tempfile.mkdtemp())
    try:
        folder.chmod(0o755)
        path = write(folder / "secret.toml", "")
        path.chmod(0)
        if os.geteuid() == 0:
            message = config_error_as_nobody(path)
        else:
            with pytest.raises(ConfigError) as caught:
                load_config(path)
            message = str(caught.value)
        assert message == f"config error in {path}: cannot read: Permission denied"
    finally:
        shutil.rmtree(folder)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert str(caught.value) == f"config error in {tmp_path}: cannot read: Is a directory"


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[pcap]\nroot = "caf\xe9"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"config error in {path}: cannot read: not UTF-8 text (byte 18)"


def test_unreadable_search_path_is_an_error_not_skipped(
    tmp_path: Path, env: dict[str, str]
) -> None:
    write(tmp_path / "xdg/opsconsole/config.toml/inner", "")  # a directory where the file should be
    with pytest.raises(ConfigError, match="cannot read: Is a directory"):
        load_config(env=env)


# --- rendering and describing --------------------------------------------------------


def test_rendered_default_parses_to_defaults() -> None:
    assert parse_config(render_default_config(), Path("x")) == Config(source=Path("x"))


def test_rendered_examples_parse_when_uncommented() -> None:
    example = re.compile(r'^# ("[^"]*"|[a-z_]+) = ', re.MULTILINE)
    text = example.sub(lambda m: m.group()[2:], render_default_config())
    config = parse_config(text, Path("/etc/opsconsole/config.toml"))
    assert config.pcap.root == Path("/var/log/netmonitor/pcap")
    assert config.sessions.url == "sqlite:////var/lib/app/sessions.db"
    assert config.pcap.retention.max_total_bytes == 500 * 1024**3
    assert config.keys == (("ports.free_port", "K"),)
    assert config.locks.paths == Config().locks.paths
    assert None not in (config.audit_log, config.pcap.cache_dir, config.pcap.retention.max_age_days)


def test_rendered_default_documents_every_key() -> None:
    text = render_default_config()
    for cls in SCHEMA:
        for f in toml_fields(cls):
            assert re.search(rf"^(# )?(\[[a-z.]*\b)?{f.name}\b", text, re.MULTILINE), f.name
            assert f.metadata["doc"] in " ".join(
                line.removeprefix("# ") for line in text.splitlines()
            )


def test_describe(tmp_path: Path) -> None:
    lines = describe_config(load_config(write(tmp_path / "c.toml", FULL))).splitlines()
    assert lines[0] == f"config: {tmp_path / 'c.toml'}"
    assert "pcap.ttl = 60.0" in lines
    assert "pcap.retention.max_total_bytes = 1649267441664" in lines
    assert 'keys = {"ports.free_port" = "K", "sessions.stop" = "ctrl+s"}' in lines
    assert 'sessions.url = "postgresql://app@db/sessions"' in lines


def test_describe_defaults_shows_effective_paths() -> None:
    lines = describe_config(Config()).splitlines()
    assert lines[0] == "config: built-in defaults"
    assert f'audit_log = "{paths.default_audit_log()}"' in lines
    assert f'pcap.cache_dir = "{paths.cache_dir()}"' in lines
    assert "pcap.root = (not set)" in lines


# --- paths ---------------------------------------------------------------------------


def test_config_search_paths() -> None:
    assert paths.config_search_paths({"HOME": "/h"}) == [
        Path("/h/.config/opsconsole/config.toml"),
        Path("/etc/opsconsole/config.toml"),
    ]
    assert paths.config_search_paths(
        {"HOME": "/h", "XDG_CONFIG_HOME": "/x", "OPSCONSOLE_CONFIG": "/o.toml"}
    ) == [
        Path("/o.toml"),
        Path("/x/opsconsole/config.toml"),
        Path("/etc/opsconsole/config.toml"),
    ]


def test_xdg_dirs_default_under_home_and_ignore_relative_values() -> None:
    assert paths.state_dir({"HOME": "/h"}) == Path("/h/.local/state/opsconsole")
    assert paths.cache_dir({"HOME": "/h", "XDG_CACHE_HOME": "rel"}) == Path("/h/.cache/opsconsole")
    assert paths.cache_dir({"HOME": "/h", "XDG_CACHE_HOME": "/c"}) == Path("/c/opsconsole")


def test_lock_dir_and_audit_log_as_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert paths.lock_dir({"HOME": "/h", "XDG_RUNTIME_DIR": "/run/user/1000"}) == Path(
        "/run/user/1000/opsconsole/locks"
    )
    assert paths.lock_dir({"HOME": "/h"}) == Path("/h/.local/state/opsconsole/locks")
    assert paths.default_audit_log({"HOME": "/h"}) == Path("/h/.local/state/opsconsole/audit.log")


def test_lock_dir_and_audit_log_as_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert paths.lock_dir({"XDG_RUNTIME_DIR": "/run/user/0"}) == Path("/run/lock/opsconsole")
    assert paths.default_audit_log({}) == Path("/var/log/opsconsole/audit.log")


def test_paths_create_nothing(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    for where in (paths.state_dir, paths.cache_dir, paths.lock_dir, paths.default_audit_log):
        where(env)
    paths.config_search_paths(env)
    assert list(tmp_path.iterdir()) == []
