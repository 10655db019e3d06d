"""Reading /proc/locks lines and pid-file contents: every format, and garbage, without a crash."""

from __future__ import annotations

import json
import os

import pytest

from backends.locks.pidfile import PID_MAX, parse_pid_file, same_host
from backends.locks.proc import index_locks, parse_line

PROC_LOCKS = """\
1: FLOCK  ADVISORY  WRITE 1234 fe:00:1466553 0 EOF
1: -> FLOCK  ADVISORY  WRITE 1240 fe:00:1466553 0 EOF
2: POSIX  ADVISORY  READ 3784 08:01:77 10 19
3: OFDLCK ADVISORY  WRITE -1 fe:00:42 0 EOF
4: LEASE  ACTIVE    READ  1500 fe:00:99 0 EOF
5: DELEG  ACTIVE    READ  1500 fe:00:98 0 EOF
garbage line
6: POSIX  ADVISORY  WRITE xyz fe:00:1 0 EOF
"""


def test_proc_locks_lines_are_grouped_by_device_and_inode():
    index = index_locks(PROC_LOCKS.splitlines())
    flock = index[(os.makedev(0xFE, 0), 1466553)]
    assert [(lock.type, lock.pid, lock.blocked) for lock in flock.held] == [("FLOCK", 1234, False)]
    assert [(lock.pid, lock.blocked) for lock in flock.waiting] == [(1240, True)]
    posix = index[(os.makedev(8, 1), 77)].held[0]
    assert posix.describe() == "posix read 10-19"
    ofd = index[(os.makedev(0xFE, 0), 42)].held[0]
    assert ofd.pid is None and ofd.describe() == "ofd write"  # the kernel names no process for OFD locks
    # Leases, delegations and unreadable lines are not file locks a process waits on.
    assert (os.makedev(0xFE, 0), 99) not in index and (os.makedev(0xFE, 0), 98) not in index
    assert (os.makedev(0xFE, 0), 1) not in index


@pytest.mark.parametrize("line", ["", "1:", "1: FLOCK ADVISORY WRITE 1 zz:00:1 0 EOF", "1: -> FLOCK"])
def test_broken_proc_locks_lines_are_skipped(line):
    assert parse_line(line) is None


@pytest.mark.parametrize(
    ("content", "pid", "host", "fmt"),
    [
        ("4711\n", 4711, None, "bare"),
        ("  4711  ", 4711, None, "bare"),
        ("pid=4711\n", 4711, None, "key=value"),
        ("pid=4711 host=web-2\n", 4711, "web-2", "key=value"),
        ("pid=4711\nhost=web-2\n", 4711, "web-2", "key=value"),
        ("4711 web-2\n", 4711, "web-2", "pid host"),  # git's gc.pid
        (json.dumps({"pid": 4711, "host": "web-2", "command": ["rsync", "-a"]}), 4711, "web-2", "json"),
        (json.dumps({"pid": 4711, "hostname": "web-2"}), 4711, "web-2", "json"),
        ("4711\nweb-2\n", 4711, "web-2", "filelock"),  # SoftFileLock, protocol 1
        ("4711\nweb-2\n98765\n", 4711, "web-2", "filelock"),  # with its start token
        ("filelock/2\npid=4711\nhost=web-2\nmode=exclusive\nstart=123\n", 4711, "web-2", "filelock"),
        ("filelock/2\npid=4711\nhost=web?2d2\nmode=exclusive\n", 4711, "web-2", "filelock"),  # ?hh escapes
    ],
)
def test_pid_file_formats(content, pid, host, fmt):
    claim = parse_pid_file(content)
    assert claim is not None
    assert (claim.pid, claim.host, claim.format) == (pid, host, fmt)


def test_json_and_filelock_extras_are_kept():
    claim = parse_pid_file(json.dumps({"pid": 5, "started_at": 100.5, "command": ["git", "push"]}))
    assert claim is not None and claim.started_at == 100.5 and claim.command == "git push"
    namespaced = parse_pid_file("filelock/2\npid=7\nhost=box?pidns-4026531836\nmode=exclusive\n")
    assert namespaced is not None and namespaced.host == "box" and namespaced.pid_namespace == 4026531836


@pytest.mark.parametrize(
    "content",
    [
        "", "   \n", "hello", "4711 web-2 extra", "pid=abc", "pid=4711 junk", "0", "-5", str(PID_MAX + 1),
        "{}", "[1, 2]", '{"pid": true}', '{"pid": "x"}', "{not json", "١٢٣",  # Arabic-Indic digits
        "1\n2\n3\n4\n", "\x00\x01\x02", "filelock/2\nhost=x\n",
    ],
)
def test_garbled_pid_files_are_not_guessed_at(content):
    assert parse_pid_file(content) is None


@pytest.mark.parametrize(
    ("recorded", "here", "same"),
    [("web-1", "web-1", True), ("WEB-1", "web-1", True), ("web-1", "web-1.example.com", True),
     ("web-1.example.com", "web-1", True), ("web-1.a.com", "web-1.b.com", False), ("web-2", "web-1", False)],
)
def test_same_host(recorded, here, same):
    assert same_host(recorded, here) is same
