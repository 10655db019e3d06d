"""The audit log: one JSON line per action, appended by any number of consoles at once."""

from __future__ import annotations

import enum
import getpass
import json
import multiprocessing
import os
import stat
import time
from datetime import datetime
from pathlib import Path

import pytest

from console.audit import AuditLog, AuditUnavailable, ssh_client

KEYS = {"time", "user", "uid", "ssh_client", "action", "target", "plan", "outcome"}
SSH = {"SSH_CONNECTION": "203.0.113.7 52144 10.0.0.5 22"}


def lines_of(path: Path) -> list[str]:
    text = path.read_text()
    assert text.endswith("\n"), "the log must end with a complete line"
    return text.splitlines()


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- ssh_client --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (SSH, "203.0.113.7 52144"),
        ({"SSH_CONNECTION": "2001:db8::1 40022 2001:db8::2 22"}, "2001:db8::1 40022"),
        ({"SSH_CONNECTION": "  198.51.100.2   61000  10.0.0.5 22\n"}, "198.51.100.2 61000"),
        ({}, None),
        ({"SSH_CONNECTION": ""}, None),
        ({"SSH_CONNECTION": "   "}, None),
        ({"SSH_CONNECTION": "garbage"}, None),
        ({"SSH_CLIENT": "203.0.113.7 52144 22"}, None),  # only SSH_CONNECTION is read
    ],
    ids=["ipv4", "ipv6", "extra-spaces", "absent", "empty", "blank", "one-field", "other-variable"],
)
def test_ssh_client(env: dict[str, str], expected: str | None) -> None:
    assert ssh_client(env) == expected


# -- one record --------------------------------------------------------------------


def test_record_writes_one_json_line_with_every_key(tmp_path: Path) -> None:
    path = tmp_path / "state" / "audit.log"
    before = datetime.now().astimezone()
    written = AuditLog(path).record(action="pcap.cleanup", target="/srv/pcap", plan={"files": 3, "bytes": 1024},
                                    outcome={"ok": True, "deleted": 3}, env=SSH)
    after = datetime.now().astimezone()

    [line] = lines_of(path)
    entry = json.loads(line)
    assert entry == written
    assert set(entry) == KEYS
    stamp = datetime.fromisoformat(entry["time"])
    assert stamp.tzinfo is not None and stamp.utcoffset() is not None, "time must carry its timezone"
    assert before <= stamp <= after
    assert entry["user"] == getpass.getuser()
    assert entry["uid"] == os.getuid()
    assert entry["ssh_client"] == "203.0.113.7 52144"
    assert entry["action"] == "pcap.cleanup"
    assert entry["target"] == "/srv/pcap"
    assert entry["plan"] == {"files": 3, "bytes": 1024}
    assert entry["outcome"] == {"ok": True, "deleted": 3}


@pytest.mark.parametrize("env", [{}, {"SSH_CONNECTION": "garbage"}], ids=["absent", "garbage"])
def test_record_without_a_usable_ssh_connection_writes_null(tmp_path: Path, env: dict[str, str]) -> None:
    path = tmp_path / "audit.log"
    AuditLog(path).record(action="a", target="t", plan={}, outcome={"ok": True}, env=env)
    [line] = lines_of(path)
    assert '"ssh_client":null' in line.replace(" ", "")
    assert json.loads(line)["ssh_client"] is None


def test_a_record_stays_on_one_line_whatever_its_strings_hold(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    AuditLog(path).record(action="locks.break", target="/repo/.git/index.lock\nforged line",
                          plan={"note": "a\nb\r\nc", "name": "café ☕"}, outcome={"ok": True}, env={})
    [line] = lines_of(path)
    entry = json.loads(line)
    assert entry["target"] == "/repo/.git/index.lock\nforged line"
    assert entry["plan"] == {"note": "a\nb\r\nc", "name": "café ☕"}


class Colour(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


def test_non_json_native_values_are_serialised(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    plan = {
        "root": Path("/srv/pcap"),
        "files": (Path("/srv/pcap/a.pcap"), Path("/srv/pcap/b.pcap")),
        "colour": Colour.RED,
        "level": Level.HIGH,
        "pair": (1, "two"),
        "nested": {"paths": [Path("/x")], 7: "int key"},
        "ratio": float("inf"),
    }
    AuditLog(path).record(action="a", target="t", plan=plan, outcome={"ok": False, "kept": (Path("/y"),)}, env={})
    entry = json.loads(lines_of(path)[0])
    assert entry["plan"] == {
        "root": "/srv/pcap",
        "files": ["/srv/pcap/a.pcap", "/srv/pcap/b.pcap"],
        "colour": "red",
        "level": 3,
        "pair": [1, "two"],
        "nested": {"paths": ["/x"], "7": "int key"},
        "ratio": None,
    }
    assert entry["outcome"] == {"ok": False, "kept": ["/y"]}


# -- creation and permissions ------------------------------------------------------


def test_check_writable_creates_parent_0700_and_file_0600(tmp_path: Path) -> None:
    path = tmp_path / "state" / "audit.log"
    AuditLog(path).check_writable()
    assert path.is_file()
    assert path.read_bytes() == b""
    assert mode_of(path.parent) == 0o700
    assert mode_of(path) == 0o600


def test_every_created_parent_is_0700_and_existing_ones_are_left_alone(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    path = tmp_path / "var" / "lib" / "opsconsole" / "audit.log"
    AuditLog(path).record(action="a", target="t", plan={}, outcome={"ok": True}, env={})
    assert [mode_of(tmp_path / part) for part in ("var", "var/lib", "var/lib/opsconsole")] == [0o700] * 3
    assert mode_of(path) == 0o600
    assert mode_of(tmp_path) == 0o755


def test_record_creates_the_log_0600(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    AuditLog(path).record(action="a", target="t", plan={}, outcome={"ok": True}, env={})
    assert mode_of(path) == 0o600


def test_check_writable_leaves_an_existing_log_untouched(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    path.write_text('{"earlier": 1}\n')
    AuditLog(path).check_writable()
    assert path.read_text() == '{"earlier": 1}\n'


# -- appending ---------------------------------------------------------------------


def test_records_append_and_never_rewrite(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    log = AuditLog(path)
    log.record(action="first", target="t1", plan={"n": 1}, outcome={"ok": True}, env={})
    first = path.read_bytes()
    log.record(action="second", target="t2", plan={"n": 2}, outcome={"ok": False}, env=SSH)

    data = path.read_bytes()
    assert data.startswith(first)
    lines = lines_of(path)
    assert len(lines) == 2
    assert [json.loads(line)["action"] for line in lines] == ["first", "second"]


def test_a_second_log_object_on_the_same_path_appends(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    AuditLog(path).record(action="first", target="t", plan={}, outcome={"ok": True}, env={})
    AuditLog(path).record(action="second", target="t", plan={}, outcome={"ok": True}, env={})
    assert [json.loads(line)["action"] for line in lines_of(path)] == ["first", "second"]


PROCESSES = 8
RECORDS_EACH = 50
#: Well over PIPE_BUF and a stdio buffer, so a line written in pieces would show up torn.
PADDING = "x" * 20_000


def _append_records(path: str, worker: int, barrier: multiprocessing.synchronize.Barrier) -> None:
    log = AuditLog(Path(path))
    barrier.wait()  # all processes start writing together
    for seq in range(RECORDS_EACH):
        log.record(action="test.concurrent", target=f"w{worker}",
                   plan={"worker": worker, "seq": seq, "padding": PADDING}, outcome={"ok": True}, env={})


def test_concurrent_appends_from_many_processes_give_intact_lines(tmp_path: Path) -> None:
    path = tmp_path / "state" / "audit.log"
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    workers = [context.Process(target=_append_records, args=(str(path), n, barrier)) for n in range(PROCESSES)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [worker.exitcode for worker in workers] == [0] * PROCESSES

    lines = lines_of(path)
    assert len(lines) == PROCESSES * RECORDS_EACH
    seen = []
    for line in lines:
        entry = json.loads(line)  # a torn or interleaved line fails here
        assert set(entry) == KEYS
        assert entry["plan"]["padding"] == PADDING
        seen.append((entry["plan"]["worker"], entry["plan"]["seq"]))
    assert sorted(seen) == [(w, s) for w in range(PROCESSES) for s in range(RECORDS_EACH)]
    for w in range(PROCESSES):  # each process's own lines stay in its order
        assert [s for worker, s in seen if worker == w] == list(range(RECORDS_EACH))


# -- an unwritable log -------------------------------------------------------------


def unwritable_path(tmp_path: Path) -> Path:
    """A path under a regular file: fails even for root."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory\n")
    return blocker / "audit.log"


def test_unwritable_log_raises_audit_unavailable_naming_the_path(tmp_path: Path) -> None:
    path = unwritable_path(tmp_path)
    with pytest.raises(AuditUnavailable) as caught:
        AuditLog(path).check_writable()
    message = str(caught.value)
    assert str(path) in message
    assert "\n" not in message
    assert "Traceback" not in message


def test_unwritable_log_deeper_under_a_file(tmp_path: Path) -> None:
    path = unwritable_path(tmp_path).parent / "sub" / "audit.log"
    with pytest.raises(AuditUnavailable, match="sub/audit.log"):
        AuditLog(path).check_writable()


def test_a_directory_is_not_a_writable_log(tmp_path: Path) -> None:
    with pytest.raises(AuditUnavailable) as caught:
        AuditLog(tmp_path).check_writable()
    assert str(tmp_path) in str(caught.value)


def test_record_to_an_unwritable_log_raises_and_writes_nothing(tmp_path: Path) -> None:
    path = unwritable_path(tmp_path)
    with pytest.raises(AuditUnavailable):
        AuditLog(path).record(action="a", target="t", plan={}, outcome={"ok": True}, env={})
    assert (tmp_path / "file").read_text() == "not a directory\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_time_is_utc_now(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    before = time.time()
    entry = AuditLog(path).record(action="a", target="t", plan={}, outcome={"ok": True}, env={})
    after = time.time()
    assert before <= datetime.fromisoformat(entry["time"]).timestamp() <= after
