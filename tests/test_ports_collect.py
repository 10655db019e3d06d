"""The Ports collector on real sockets: counts against ss, TIME_WAIT timers, owners, verdicts."""

from __future__ import annotations

import json
import os
import socket
import time

import pytest

from backends.collector import Collector
from backends.jsonable import envelope
from backends.ports.collect import PortsCollector, read_tally
from backends.ports.diag import listen_sockets
from backends.ports.model import PortRow, PortVerdict, Proto, SocketTally
from backends.ports.owners import OWNER_HIDDEN, HolderCache, OwnerCache
from backends.ports.proc import tally_proc
from tests.nobody import as_nobody
from tests.ports_helpers import (
    has_ipv6_loopback,
    listener,
    make_time_wait,
    server,
    ss_counts,
    wait_for,
)
from tests.test_process_stop import SLEEPER, reuse_pid

HOSTS = ["127.0.0.1"] + (["::1"] if has_ipv6_loopback() else [])


def row_of(port: int, proto: Proto = Proto.TCP, watch: tuple[int, ...] = ()) -> PortRow:
    value = PortsCollector(watch)()
    rows = [row for row in value.ports if row.port == port and row.proto is proto]
    assert len(rows) == 1, f"port {port}/{proto} not listed once"
    return rows[0]


@pytest.mark.parametrize("host", HOSTS)
def test_state_counts_match_ss(host: str) -> None:
    server_sock = listener(host)
    port = server_sock.getsockname()[1]
    established, closing = [], []
    try:
        make_time_wait(server_sock, 7)
        for _ in range(3):  # ESTABLISHED on both sides
            client = socket.create_connection((host, port))
            accepted, _ = server_sock.accept()
            established += [client, accepted]
        client = socket.create_connection((host, port))  # the client closes: CLOSE_WAIT on the server side
        accepted, _ = server_sock.accept()
        client.close()
        closing.append(accepted)
        wait_for(lambda: ss_counts(port).get("CLOSE_WAIT") == 1)
        half_closed = socket.create_connection((host, port))  # the server closes, the client does not:
        accepted, _ = server_sock.accept()  # FIN_WAIT2 on the server's port, CLOSE_WAIT on the client's
        accepted.close()
        established.append(half_closed)
        wait_for(lambda: ss_counts(port).get("FIN_WAIT2") == 1)
        expected = ss_counts(port)
        row = row_of(port)
        assert dict(row.states) == dict(expected)
        assert dict(row.states) == {"LISTEN": 1, "ESTABLISHED": 3, "TIME_WAIT": 7, "CLOSE_WAIT": 1, "FIN_WAIT2": 1}
        client_port = half_closed.getsockname()[1]
        tally, _ = read_tally((Proto.TCP,))  # a client's side is counted too, under its own port
        assert tally.counts[(Proto.TCP, client_port, "CLOSE_WAIT")] == ss_counts(client_port)["CLOSE_WAIT"] == 1
        assert row.address == host
        assert row.verdict is PortVerdict.LISTENING
        assert [owner.pid for owner in row.listeners] == [os.getpid()]
    finally:
        for sock in established + closing + [server_sock]:
            sock.close()


def test_time_wait_only_port_expires_within_60_s_and_counts_down() -> None:
    server_sock = listener()
    port = server_sock.getsockname()[1]
    make_time_wait(server_sock, 3)
    server_sock.close()
    first = row_of(port)
    assert first.verdict is PortVerdict.TIME_WAIT
    assert first.listeners == ()
    assert first.states == {"TIME_WAIT": 3}
    assert first.time_wait_expires_in_s is not None and 0 < first.time_wait_expires_in_s <= 60
    assert first.verdict_text.startswith("blocked by 3 TIME_WAIT for about ")
    assert "a server that binds without SO_REUSEADDR will fail until then" in first.verdict_text
    time.sleep(1.1)
    second = row_of(port)
    assert second.time_wait_expires_in_s is not None
    assert 0 < second.time_wait_expires_in_s < first.time_wait_expires_in_s


def test_proc_net_fallback_agrees_with_netlink() -> None:
    server_sock = listener()
    port = server_sock.getsockname()[1]
    try:
        make_time_wait(server_sock, 4)
        netlink, source = read_tally((Proto.TCP,))
        assert source == "netlink"
        proc = SocketTally()
        for family in (socket.AF_INET, socket.AF_INET6):
            tally_proc(proc, Proto.TCP, family)
        for state in ("LISTEN", "TIME_WAIT"):
            assert proc.counts[(Proto.TCP, port, state)] == netlink.counts[(Proto.TCP, port, state)]
        assert 0 < proc.time_wait_ms[port] <= 60_000  # USER_HZ ticks turned into ms
        assert abs(proc.time_wait_ms[port] - netlink.time_wait_ms[port]) < 2_000
        assert [s.inode for s in proc.listeners if s.port == port] == [
            s.inode for s in netlink.listeners if s.port == port
        ]
    finally:
        server_sock.close()


def test_udp_bound_socket_is_a_listener_with_its_owner() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        row = row_of(port, Proto.UDP)
        assert row.states == ss_counts(port, "u") == {"UNCONN": 1}
        assert row.verdict is PortVerdict.LISTENING
        assert row.listeners[0].pid == os.getpid()


def test_owner_of_a_child_server_with_its_details() -> None:
    with server("term") as child:
        row = row_of(child.port)
        (owner,) = row.listeners
        assert owner.pid == child.pid
        assert owner.name.startswith("python")
        assert owner.cmdline[-1] == "term"
        assert owner.started_at is not None and owner.started_at <= time.time()


def test_prefork_lists_every_holder_master_first() -> None:
    with server("prefork") as child:
        row = row_of(child.port)
        assert [owner.pid for owner in row.listeners] == [child.pid, child.worker]


def test_watched_free_port_is_listed_free_and_pinned_first() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    value = PortsCollector((port,))()
    first = value.ports[0]
    assert (first.port, first.watched, first.verdict) == (port, True, PortVerdict.FREE)


def test_rows_are_watched_then_listening_then_by_time_wait() -> None:
    busy, quiet = listener(), listener()
    try:
        make_time_wait(busy, 5)
        make_time_wait(quiet, 2)
        busy_port, quiet_port = busy.getsockname()[1], quiet.getsockname()[1]
        busy.close()
        quiet.close()
        with server("term") as child:
            ports = [row.port for row in PortsCollector((quiet_port,))().ports]
            assert ports.index(quiet_port) == 0
            assert ports.index(child.port) < ports.index(busy_port)
    finally:
        busy.close()
        quiet.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another uid needs root")
def test_without_root_other_users_owners_are_hidden_not_failing() -> None:
    with server("term") as child:  # root's listener, held by a child (not by the forked test process)

        def collect_as_nobody() -> dict[str, object]:
            row = next(r for r in PortsCollector()().ports if r.port == child.port and r.proto is Proto.TCP)
            owner = row.listeners[0]
            return {"pid": owner.pid, "user": owner.user, "note": owner.note, "verdict": row.verdict.value}

        seen = as_nobody(collect_as_nobody)
    assert seen == {"pid": None, "user": "root", "note": OWNER_HIDDEN, "verdict": "listening"}


async def test_snapshot_json_has_the_design_keys() -> None:
    with server("term") as child:
        collector = Collector("ports", PortsCollector((child.port,)), interval_s=60, timeout_s=10)
        snapshot = await collector.refresh()
        document = json.loads(json.dumps(envelope(snapshot, time.time())))
    assert document["ok"] is True and document["error"] is None
    assert set(document) == {"ok", "error", "age_s", "refreshing", "duration_s", "value"}
    entry = document["value"]["ports"][0]
    assert {"port", "proto", "address", "listeners", "states", "time_wait_expires_in_s", "watched",
            "verdict"} <= set(entry)
    assert (entry["port"], entry["proto"], entry["address"], entry["watched"], entry["verdict"]) == (
        child.port, "tcp", "127.0.0.1", True, "listening")
    assert entry["states"] == {"LISTEN": 1}
    (owner,) = entry["listeners"]
    assert {"pid", "name", "user", "cmdline", "started_at"} <= set(owner)
    assert owner["pid"] == child.pid and owner["cmdline"][-1] == "term"


def test_holder_cache_walks_only_when_something_changed() -> None:
    now = [0.0]
    cache = HolderCache(full_walk_every_s=30.0, clock=lambda: now[0])
    with server("term") as child:
        (sock,) = [s for s in listen_sockets(child.port)]
        assert cache.holders({sock.inode}).pids == {sock.inode: [child.pid]}
        assert cache.holders({sock.inode}).pids == {sock.inode: [child.pid]}  # re-checked, not walked
        assert cache.walks == 1
        now[0] = 31.0  # the periodic walk
        assert cache.holders({sock.inode}).pids == {sock.inode: [child.pid]}
        assert cache.walks == 2
        with server("term") as other:  # a new listening socket: walk
            (new,) = [s for s in listen_sockets(other.port)]
            assert cache.holders({sock.inode, new.inode}).pids == {sock.inode: [child.pid], new.inode: [other.pid]}
            assert cache.walks == 3
    assert cache.holders({sock.inode}).pids == {}  # its holder is gone: walked again, none found
    assert cache.walks == 4


def test_owner_cache_is_keyed_by_pid_and_start_time() -> None:
    """Owners are read once per process life: a reused pid is a new process, never the cached one."""
    cache = OwnerCache()
    with server("term") as child:
        first = cache.identity(child.pid)
        assert first is not None and first.cmdline[-1] == "term"
        cache.end_refresh()
        assert cache.identity(child.pid) is first  # the next refresh: from the cache, not re-read
        cache.end_refresh()
        pid = child.pid
    stranger = reuse_pid(pid, SLEEPER)
    if stranger is None:
        pytest.skip("cannot steer pid allocation here (needs root and a writable ns_last_pid)")
    try:
        again = cache.identity(pid)
        assert again is not None and again is not first
        assert again.cmdline[-1] == SLEEPER and again.create_time >= first.create_time
    finally:
        stranger.kill()
        stranger.wait()
