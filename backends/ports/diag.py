"""Reading the kernel's sockets over sock_diag netlink (what ``ss`` uses), without ``ss``.

Why raw netlink: the kernel filters by state before anything is copied, and each
socket arrives as a fixed binary record, so counting per (port, state) costs one
``unpack_from`` and one dict update per socket, with no per-socket object. TIME_WAIT
records carry the kernel's own timer (``idiag_expires``, milliseconds). Text sources
(/proc/net/tcp, ``ss -tan``) cost the kernel 2-3 us per line just to format.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from backends.ports.model import ListenSocket, Proto, SocketTally, TcpState

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
#: The original inet_diag request: it dumps IPv4 and IPv6 TCP sockets in ONE walk of the
#: kernel's tables (the kernel turns it into a family-less request), where the per-family
#: request walks every socket once per family. Its replies carry this type too.
TCPDIAG_GETSOCK = 18
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3

_NLMSG_HEADER = struct.Struct("=IHHII")
# inet_diag_req_v2: family, protocol, ext, pad, states, then a zeroed 48-byte inet_diag_sockid.
_REQUEST = struct.Struct("=BBBBI48x")
# inet_diag_req (the original): family, src_len, dst_len, ext, inet_diag_sockid, states, dbs.
_COMPAT_REQUEST = struct.Struct("=BBBB48xII")
# The few fields the counting loop needs, read in one call: nlmsg_len, nlmsg_type, then
# (at 17) idiag_state, (20) idiag_sport in network order, (68) idiag_expires.
_COUNT_FIELDS = struct.Struct("=IH11xB2xH46xI")
# The whole inet_diag_msg after the netlink header.
_MESSAGE = struct.Struct("=BBBB2s2s16s16sI8xIIIII")
_RECV_BYTES = 1 << 16

#: TCP states the collector counts; the kernel drops every other state before copying.
TCP_STATE_MASK = sum(1 << s for s in TcpState if s is not TcpState.CLOSE)
#: UDP: bound-but-unconnected (CLOSE) and connected (ESTABLISHED) sockets.
UDP_STATE_MASK = (1 << TcpState.CLOSE) | (1 << TcpState.ESTABLISHED)
LISTEN_MASK = 1 << TcpState.LISTEN
#: An NLMSG_DONE message: header and a 4-byte status.
_DONE_SIZE = 20
#: A dump that stalls this long is abandoned (the collector reports the error).
RECV_TIMEOUT_S = 5.0


class DiagUnavailable(OSError):
    """sock_diag cannot answer (no netlink, or the diag module for a protocol is missing)."""


def _swap16(value: int) -> int:
    return ((value & 0xFF) << 8) | (value >> 8)


#: Network-order port as read natively -> port number.
_host_port: Callable[[int], int] = _swap16 if sys.byteorder == "little" else int


@dataclass(frozen=True, slots=True)
class DiagSocket:
    """One socket in full, for the few places that need more than counts."""

    family: int
    state: int
    local: str
    local_port: int
    remote: str
    remote_port: int
    expires_ms: int
    uid: int
    inode: int


_SEQUENCE = iter(range(1, 1 << 31))
_SEQUENCE_LOCK = threading.Lock()


def _dump(kind: int, body: bytes) -> Iterator[tuple[memoryview, int]]:
    """Yield (buffer, length) chunks of one sock_diag dump; the caller stops at NLMSG_DONE.

    The buffer is reused: a chunk must be consumed before the next is asked for.

    Raises:
        DiagUnavailable: the kernel answered with an error (e.g. udp_diag not loaded).
    """
    with _SEQUENCE_LOCK:
        seq = next(_SEQUENCE)
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_SOCK_DIAG)
    except OSError as exc:
        raise DiagUnavailable(f"sock_diag netlink: {exc.strerror}") from None
    with sock:
        sock.settimeout(RECV_TIMEOUT_S)  # a kernel that never ends the dump must not hang the collector
        header = _NLMSG_HEADER.pack(_NLMSG_HEADER.size + len(body), kind, NLM_F_REQUEST | NLM_F_DUMP, seq, 0)
        sock.sendto(header + body, (0, 0))
        buffer = bytearray(_RECV_BYTES)
        view = memoryview(buffer)
        while True:
            length = sock.recv_into(buffer)
            if length <= 0:
                return
            if _NLMSG_HEADER.unpack_from(buffer, 0)[1] == NLMSG_ERROR:
                code = -struct.unpack_from("=i", buffer, 16)[0]
                raise DiagUnavailable(f"sock_diag request {kind}: {os.strerror(code)}")
            yield view, length


def _family_dump(family: int, protocol: int, states: int) -> Iterator[tuple[memoryview, int]]:
    return _dump(SOCK_DIAG_BY_FAMILY, _REQUEST.pack(family, protocol, 0, 0, states))


def tally_tcp(tally: SocketTally) -> None:
    """Count every TCP socket (IPv4 and IPv6) per (local port, state) into ``tally``.

    One dump of both families (the original request); per-family dumps where the kernel
    does not take it. Chunks made only of TIME_WAIT records (the many) are read as
    fixed-stride tables (:func:`_count_time_wait`); the rest one record at a time.
    """
    counts: dict[int, int] = {}  # native-order port << 4 | state -> sockets
    time_wait_ms: dict[int, int] = {}  # native-order port -> longest TIME_WAIT timer (record path)
    longest = [-1] * 65536  # the same, for the fixed-stride path
    listen_records: list[bytes] = []
    try:
        _count_dump(_dump(TCPDIAG_GETSOCK, _COMPAT_REQUEST.pack(socket.AF_INET, 0, 0, 0, TCP_STATE_MASK, 0)),
                    TCPDIAG_GETSOCK, counts, time_wait_ms, longest, listen_records)
    except DiagUnavailable:
        for family in (socket.AF_INET, socket.AF_INET6):
            _count_dump(_family_dump(family, socket.IPPROTO_TCP, TCP_STATE_MASK),
                        SOCK_DIAG_BY_FAMILY, counts, time_wait_ms, longest, listen_records)
    for key in counts:
        if key & 0xF == TcpState.TIME_WAIT and longest[key >> 4] > time_wait_ms.get(key >> 4, -1):
            time_wait_ms[key >> 4] = longest[key >> 4]
    for key, count in counts.items():
        tally.add(Proto.TCP, _host_port(key >> 4), key & 0xF, count)
    for port, expires in time_wait_ms.items():
        tally.note_time_wait(_host_port(port), expires)
    tally.listeners.extend(_listen_socket(Proto.TCP, record) for record in listen_records)


def _count_dump(chunks: Iterator[tuple[memoryview, int]], kind: int, counts: dict[int, int],
                time_wait_ms: dict[int, int], longest: list[int], listen_records: list[bytes]) -> None:
    for view, length in chunks:
        done = _count_time_wait(view, length, kind, counts, longest)
        if done is None:
            done = _count_each(view, length, kind, counts, time_wait_ms, listen_records)
        if done:
            return


def _count_each(view: memoryview, length: int, kind: int, counts: dict[int, int], time_wait_ms: dict[int, int],
                listen_records: list[bytes]) -> bool:
    """The general path: one ``unpack_from`` and one dict update per record; True at NLMSG_DONE."""
    unpack = _COUNT_FIELDS.unpack_from
    time_wait, listen = TcpState.TIME_WAIT, TcpState.LISTEN
    offset = 0
    while offset < length:
        if length - offset < _COUNT_FIELDS.size:
            return _NLMSG_HEADER.unpack_from(view, offset)[1] == NLMSG_DONE
        size, message, state, port, expires = unpack(view, offset)
        if message != kind:
            return message == NLMSG_DONE
        key = port << 4 | state
        counts[key] = counts.get(key, 0) + 1
        if state == time_wait:
            if expires > time_wait_ms.get(port, -1):
                time_wait_ms[port] = expires
        elif state == listen:
            listen_records.append(bytes(view[offset + 16 : offset + 16 + _MESSAGE.size]))
        offset += (size + 3) & ~3
    return False


def _count_time_wait(view: memoryview, length: int, kind: int, counts: dict[int, int],
                     longest: list[int]) -> bool | None:
    """Count a chunk of TIME_WAIT records as a fixed-stride table, without unpacking each.

    TIME_WAIT records all have one size, so the ports are one strided slice of the chunk
    and the timers another: checking and counting run in C; the per-port maximum is one
    tight loop over a list indexed by port. Returns None when the chunk is not such a table (the caller
    then takes the general path), else whether it ended the dump.
    """
    if length < _COUNT_FIELDS.size:
        return None
    size = _NLMSG_HEADER.unpack_from(view, 0)[0]
    if size % 8 or size < _COUNT_FIELDS.size:
        return None
    records, rest = divmod(length, size)
    done = bool(rest) and rest == _DONE_SIZE and _NLMSG_HEADER.unpack_from(view, records * size)[1] == NLMSG_DONE
    if rest and not done:
        return None
    table = view[: records * size]
    # Every record: this length, a sock_diag message, a TIME_WAIT socket (byte-wise, in C).
    if (table[0::size] != bytes((size & 0xFF,)) * records or table[1::size] != bytes((size >> 8,)) * records
            or table[4::size] != bytes((kind,)) * records
            or table[17::size] != bytes((TcpState.TIME_WAIT,)) * records):
        return None
    ports = table.cast("H")[10 :: size // 2]  # idiag_sport, at byte 20
    timers = table.cast("I")[17 :: size // 4]  # idiag_expires, at byte 68
    for port, count in Counter(ports).items():
        key = port << 4 | TcpState.TIME_WAIT
        counts[key] = counts.get(key, 0) + count
    for port, expires in zip(ports, timers, strict=True):
        if expires > longest[port]:  # noqa: PLR1730 - max() per record costs a call and a store
            longest[port] = expires
    return done


def tally_udp(tally: SocketTally, family: int) -> None:
    """Count bound UDP sockets of ``family``; the unconnected ones are its listeners."""
    for sock in sockets(family, socket.IPPROTO_UDP, UDP_STATE_MASK):
        if sock.local_port == 0:
            continue  # created, never bound
        tally.add(Proto.UDP, sock.local_port, sock.state)
        if sock.state == TcpState.CLOSE:
            tally.listeners.append(ListenSocket(Proto.UDP, sock.local_port, sock.local, sock.uid, sock.inode))


def sockets(family: int, protocol: int, states: int) -> Iterator[DiagSocket]:
    """Every socket of one family/protocol in ``states``, decoded (for small dumps)."""
    for view, length in _family_dump(family, protocol, states):
        offset = 0
        while offset < length:
            size, kind, _, _, _ = _NLMSG_HEADER.unpack_from(view, offset)
            if kind != SOCK_DIAG_BY_FAMILY:
                return  # NLMSG_DONE
            yield _decode(view, offset + _NLMSG_HEADER.size)
            offset += (size + 3) & ~3


def _decode(view: memoryview | bytes, at: int) -> DiagSocket:
    family, state, _, _, sport, dport, src, dst, _, expires, _, _, uid, inode = _MESSAGE.unpack_from(view, at)
    return DiagSocket(
        family=family,
        state=state,
        local=_address(family, src),
        local_port=int.from_bytes(sport, "big"),
        remote=_address(family, dst),
        remote_port=int.from_bytes(dport, "big"),
        expires_ms=expires,
        uid=uid,
        inode=inode,
    )


def _listen_socket(proto: Proto, record: bytes) -> ListenSocket:
    sock = _decode(record, 0)
    return ListenSocket(proto, sock.local_port, sock.local, sock.uid, sock.inode)


def _address(family: int, raw: bytes) -> str:
    if family == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, raw[:4])
    return socket.inet_ntop(socket.AF_INET6, raw)


def listen_sockets(port: int | None = None) -> list[ListenSocket]:
    """TCP listening sockets (both families), optionally of one port: a LISTEN-only dump,
    whose cost does not grow with the TIME_WAIT count."""
    found = []
    for family in (socket.AF_INET, socket.AF_INET6):
        for sock in sockets(family, socket.IPPROTO_TCP, LISTEN_MASK):
            if port is None or sock.local_port == port:
                found.append(ListenSocket(Proto.TCP, sock.local_port, sock.local, sock.uid, sock.inode))
    return found
