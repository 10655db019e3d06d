"""The `opsconsole` command as a user runs it: exit codes, one-line errors, the JSON contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from datetime import datetime
from pathlib import Path

import pytest

from backends.catalog import PANEL_NAMES
from backends.collector import CollectContext
from console.commands.snapshot import run_snapshot
from console.demo import pcap as demo_pcap
from tests.conftest import CountingCollect, group_of

ENVELOPE_KEYS = {"ok", "error", "age_s", "refreshing", "duration_s", "value"}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An environment with no user or system config in reach, and a private temp dir."""
    clean = {key: value for key, value in os.environ.items() if key != "OPSCONSOLE_CONFIG"}
    (tmp_path / "tmp").mkdir()
    clean.update(HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "xdg"),
                 XDG_STATE_HOME=str(tmp_path / "state"), TMPDIR=str(tmp_path / "tmp"))
    return clean


def opsconsole(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "console", *args], env=env, capture_output=True,
                          text=True, timeout=60, cwd=Path(__file__).parent.parent)


def test_version(env):
    result = opsconsole("--version", env=env)
    assert result.returncode == 0 and result.stdout.strip() == "opsconsole 0.1.0"


@pytest.mark.parametrize("command", [[], ["snapshot"], ["config"]])
def test_help_on_every_command(env, command):
    result = opsconsole(*command, "--help", env=env)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: opsconsole")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[pcap\nroot = 1", "TOML syntax error"),
        ("[pcap]\nrooot = '/x'", '[pcap].rooot: unknown key (did you mean "root"?)'),
        ("[pcap]\nttl = 'abc'", "[pcap].ttl: expected"),
        ("[ports]\nwatch = ['5000']", "[ports].watch[0]: expected"),
    ],
)
def test_config_errors_exit_2_with_one_line(env, tmp_path, text, expected):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    result = opsconsole("--config", str(config), "snapshot", env=env)
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"opsconsole: config error in {config}: ")
    assert expected in line


def test_config_from_environment_variable_is_used(env, tmp_path):
    config = tmp_path / "env.toml"
    config.write_text("[pcap]\nttl = 'soon'\n")
    result = opsconsole("snapshot", env={**env, "OPSCONSOLE_CONFIG": str(config)})
    assert result.returncode == 2 and str(config) in result.stderr


def test_missing_config_file_exits_2(env, tmp_path):
    result = opsconsole("--config", str(tmp_path / "nope.toml"), "config", env=env)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and "no such file" in result.stderr


def test_usage_errors_are_one_line_exit_2(env):
    for args in (["snapshot", "--panel", "disks"], ["frobnicate"], ["--bogus"]):
        result = opsconsole(*args, env=env)
        assert result.returncode == 2, args
        assert len(result.stderr.splitlines()) == 1, result.stderr


def test_print_default_is_valid_and_loads_back(env, tmp_path):
    result = opsconsole("config", "--print-default", env=env)
    assert result.returncode == 0
    tomllib.loads(result.stdout)
    config = tmp_path / "default.toml"
    config.write_text(result.stdout)
    shown = opsconsole("--config", str(config), "--read-only", "config", env=env)
    assert shown.returncode == 0
    assert f"config: {config}" in shown.stdout and "read_only = true" in shown.stdout


def test_snapshot_json_follows_the_contract(env):
    result = opsconsole("snapshot", "--json", env=env)
    document = json.loads(result.stdout)
    assert {"host", "taken_at", "version", *PANEL_NAMES} == set(document)
    assert document["version"] == "0.1.0"
    assert datetime.fromisoformat(document["taken_at"]).tzinfo is not None
    for name in PANEL_NAMES:
        assert set(document[name]) == ENVELOPE_KEYS
        if name in ("ports", "locks"):  # need no configuration
            assert document[name]["ok"] is True and isinstance(document[name]["value"][name], list)
            continue
        assert document[name]["ok"] is False and "not configured: set [" in document[name]["error"]
    assert result.returncode == 1  # a requested panel could not collect


def test_snapshot_panel_filter_and_table(env):
    result = opsconsole("snapshot", "--json", "--panel", "ports", "--panel", "locks", env=env)
    assert set(json.loads(result.stdout)) == {"host", "taken_at", "version", "ports", "locks"}
    table = opsconsole("snapshot", env=env)
    assert table.returncode == 1
    assert [line.split()[0] for line in table.stdout.splitlines()[3:]] == list(PANEL_NAMES)


def test_run_snapshot_exit_code_follows_the_collectors(capsys):
    collects = {name: CountingCollect({"files": 3}) for name in PANEL_NAMES}
    assert run_snapshot(group_of(collects), ["pcap", "ports"], as_json=True, force=True) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["pcap"]["ok"] is True and document["pcap"]["value"] == {"files": 3}
    assert [collects[name].calls for name in PANEL_NAMES] == [1, 0, 1, 0]

    def forced(context: CollectContext[object]) -> object:
        if not context.force:
            raise AssertionError("--refresh must reach the collectors")
        raise OSError("database is locked")

    collects["ports"] = forced  # type: ignore[assignment]
    assert run_snapshot(group_of(collects), ["pcap", "ports"], as_json=True, force=True) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["ports"] == {"ok": False, "error": "database is locked", "age_s": None,
                                 "refreshing": False, "duration_s": None, "value": None}


def test_demo_snapshot_leaves_no_world_behind(env, tmp_path):
    result = opsconsole("--demo", "snapshot", "--json", env=env)
    assert result.returncode == 0 and json.loads(result.stdout)["host"]  # every panel collects in the demo
    # A one-shot command sees the whole capture tree, not however much was seeded so far
    # (the live capture file the writer keeps adding may be one more).
    seeded = demo_pcap.DAYS * 24 * demo_pcap.FILES_PER_HOUR
    assert json.loads(result.stdout)["pcap"]["value"]["files"] >= seeded
    assert list((tmp_path / "tmp").glob("opsconsole-demo-*")) == []
