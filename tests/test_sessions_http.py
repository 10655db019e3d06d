"""The HTTP source against a real HTTP server on 127.0.0.1 started by the test."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from backends.collector import CollectContext, Collector
from backends.sessions.http_source import HttpFollower, HttpSettings, HttpSourceError
from backends.sessions.model import SessionState

SESSIONS = {"data": {"items": [
    {"session_id": "s-1", "status": "running", "label": "pcap", "user": "alice", "progress": 0.5,
     "created_at": "2026-11-23T10:00:00Z", "updated_at": 1763892000.0},
    {"session_id": "s-2", "status": "partial", "created_at": 1763890000.0},
]}}
HTML_502 = b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>"


class Handler(BaseHTTPRequestHandler):
    hits: ClassVar[dict[str, int]] = {}
    mode: ClassVar[dict[str, str]] = {"flaky": "json"}

    def log_message(self, *args: object) -> None:
        pass

    def send(self, status: int, body: bytes, content_type: str = "application/json", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path
        Handler.hits[path] = Handler.hits.get(path, 0) + 1
        if path == "/ok":
            self.send(200, json.dumps(SESSIONS).encode())
        elif path == "/auth":
            if self.headers.get("Authorization") != "Bearer t0k":
                self.send(401, b'{"error": "no"}')
            else:
                self.send(200, json.dumps([{"id": "x", "state": "active"}]).encode(), "application/json; charset=utf-8")
        elif path == "/html502":
            self.send(502, HTML_502, "text/html; charset=utf-8")
        elif path == "/malformed":
            self.send(200, b'{"sessions": [{"id": "s-1",')
        elif path == "/shape":
            self.send(200, b'{"sessions": {"id": "s-1"}}')
        elif path == "/badstate":
            self.send(200, b'{"sessions": [{"id": "s-1", "state": "zombie"}]}')
        elif path == "/login":
            self.send(302, b"", "text/html", Location="/login?next=/api/sessions")
        elif path == "/busy":
            if Handler.hits[path] == 1:
                self.send(503, b"busy", "text/plain", Retry_After="1")
            else:
                self.send(200, b'{"sessions": []}')
        elif path == "/busylong":
            self.send(503, b"busy", "text/plain", Retry_After="120")
        elif path == "/slow":
            time.sleep(2)
            self.send(200, b'{"sessions": []}')
        elif path == "/trickle":
            body = b'{"sessions": []}' + b" " * 40
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for byte in body:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.1)
        elif path == "/flaky":
            if Handler.mode["flaky"] == "json":
                self.send(200, b'{"sessions": [{"id": "s-1", "state": "active"}]}')
            else:
                self.send(502, HTML_502, "text/html")
        else:
            self.send(404, b"no", "text/plain")


@pytest.fixture
def server() -> Iterator[str]:
    Handler.hits = {}
    Handler.mode = {"flaky": "json"}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def collect(settings: HttpSettings, deadline_s: float = 5.0):  # type: ignore[no-untyped-def]
    return HttpFollower(settings)(CollectContext(previous=None, force=False, deadline=time.monotonic() + deadline_s))


def settings(url: str, **changes: object) -> HttpSettings:
    return HttpSettings(url=url, **{"backoff_s": 0.05, "read_timeout_s": 1.0, **changes})  # type: ignore[arg-type]


def test_json_is_mapped_through_fields_and_state_names(server):
    value = collect(settings(
        f"{server}/ok", items="data.items", fields={"id": "session_id", "state": "status", "owner": "user"},
        state_names={"running": "active", "partial": "stopped"},
    ))
    assert [(s.id, s.state, s.owner, s.progress) for s in value.sessions] == [
        ("s-1", SessionState.ACTIVE, "alice", 0.5), ("s-2", SessionState.STOPPED, "", 0.0)]
    assert value.sessions[0].created_at == 1795428000.0  # ISO 8601 read as Unix seconds
    assert value.counts["stopped"] == 1 and value.cursor is None


def test_bearer_token_from_an_environment_variable(server, monkeypatch):
    monkeypatch.setenv("SESSIONS_TOKEN", "t0k")
    assert [s.id for s in collect(settings(f"{server}/auth", token_env="SESSIONS_TOKEN")).sessions] == ["x"]
    monkeypatch.delenv("SESSIONS_TOKEN")
    with pytest.raises(HttpSourceError, match="token_env names SESSIONS_TOKEN, which is not set"):
        collect(settings(f"{server}/auth", token_env="SESSIONS_TOKEN"))
    with pytest.raises(HttpSourceError, match=r"authentication problem: .*/auth answered HTTP 401"):
        collect(settings(f"{server}/auth", token="wrong"))


def one_line_error(settings_: HttpSettings, deadline_s: float = 5.0) -> str:
    with pytest.raises(HttpSourceError) as caught:
        collect(settings_, deadline_s)
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_an_html_error_page_is_named_with_type_status_and_first_characters(server):
    message = one_line_error(settings(f"{server}/html502", retries=0))
    assert message == (f"expected JSON from {server}/html502, got text/html (HTTP 502): "
                       + HTML_502.decode()[:80])


def test_malformed_json_wrong_shape_and_unknown_state(server):
    assert one_line_error(settings(f"{server}/malformed")).startswith(f"malformed JSON from {server}/malformed (HTTP 200): ")
    assert one_line_error(settings(f"{server}/shape")) == (
        f"unexpected JSON from {server}/shape: 'sessions' is an object, not a list")
    assert "has state 'zombie'; map it with [sessions.state_names]" in one_line_error(settings(f"{server}/badstate"))


def test_a_login_redirect_is_an_authentication_problem_and_not_followed(server):
    message = one_line_error(settings(f"{server}/login"))
    assert message.startswith(f"authentication problem: {server}/login redirects (HTTP 302) to /login?next=")
    assert Handler.hits == {"/login": 1}  # neither followed nor retried


def test_retry_after_is_honoured_up_to_the_cap(server):
    value = collect(settings(f"{server}/busy", retry_after_max_s=2.0))
    assert value.sessions == () and Handler.hits["/busy"] == 2
    message = one_line_error(settings(f"{server}/busylong", retry_after_max_s=2.0))
    assert message == f"{server}/busylong is unavailable (HTTP 503) and asks to retry after 120 s, more than the 2 s cap"


def test_too_slow_trickling_and_refused_are_one_line_errors(server):
    assert one_line_error(settings(f"{server}/slow", read_timeout_s=0.3, retries=1)) == (
        f"{server}/slow stopped answering (read timed out)")
    assert Handler.hits["/slow"] == 2  # retried once with backoff
    assert one_line_error(settings(f"{server}/trickle"), deadline_s=1.0) == (
        f"reply from {server}/trickle did not finish within the deadline (it trickles)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert one_line_error(settings(f"http://127.0.0.1:{port}/x", retries=1)).startswith(
        f"cannot connect to http://127.0.0.1:{port}/x: ")


async def test_the_last_good_sessions_stay_on_screen_marked_stale(server):
    collector = Collector("sessions", HttpFollower(settings(f"{server}/flaky", retries=0)), interval_s=60, timeout_s=5)
    good = await collector.refresh()
    assert good.ok and [s.id for s in good.value.sessions] == ["s-1"]
    Handler.mode["flaky"] = "html"
    stale = await collector.refresh()
    assert stale.value is good.value and stale.taken_at == good.taken_at
    assert stale.error is not None and stale.error.startswith(f"expected JSON from {server}/flaky, got text/html (HTTP 502)")
    await collector.stop()
