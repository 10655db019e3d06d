"""Sessions from an app that already serves them as JSON over HTTP(S).

The failure modes of the incident's dashboards are the ones handled here: a login
redirect (reported as an authentication problem, never followed), an HTML error page
where JSON was expected (named with its content type, status and first characters), a
503 with Retry-After (honoured up to a cap), a reply that trickles (an overall deadline),
refused connections and timeouts (retried with backoff). Every failure is one line.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from backends.collector import CollectContext
from backends.sessions.follow import SessionsView, view_of
from backends.sessions.model import Session, SessionState

#: Our field names, each looked up under the name the mapping gives (default: the same).
FIELDS = ("id", "state", "label", "owner", "progress", "created_at", "updated_at", "last_access_at")
MAX_BODY_BYTES = 64 * 1024 * 1024
FIRST_CHARS = 80


class HttpSourceError(Exception):
    """Why the HTTP source gave no sessions this time; one line."""


@dataclass(frozen=True, slots=True)
class HttpSettings:
    url: str
    items: str = "sessions"
    fields: Mapping[str, str] = field(default_factory=dict)
    state_names: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    token: str | None = None
    token_env: str | None = None
    connect_timeout_s: float = 3.0
    read_timeout_s: float = 5.0
    retries: int = 2
    retry_after_max_s: float = 3.0
    backoff_s: float = 0.25

    def request_headers(self, env: Mapping[str, str] = os.environ) -> dict[str, str]:
        headers = {"Accept": "application/json", **self.headers}
        token = self.token
        if self.token_env:
            token = env.get(self.token_env) or None
            if token is None:
                raise HttpSourceError(f"[sessions].token_env names {self.token_env}, which is not set")
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers


def _first_chars(body: bytes) -> str:
    return " ".join(body.decode("utf-8", "replace").split())[:FIRST_CHARS]


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from email.utils import parsedate_to_datetime

        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def fetch_json(settings: HttpSettings, deadline: float, cancelled: threading.Event) -> Any:
    """GET the URL and parse JSON, with retries, within ``deadline`` (a monotonic time)."""
    url = settings.url
    headers = settings.request_headers()
    timeout = httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s)
    with httpx.Client(follow_redirects=False, timeout=timeout) as client:
        attempt = 0
        while True:
            delay = settings.backoff_s * 2**attempt
            try:
                status, content_type, body, response_headers = _get(client, url, headers, deadline)
            except httpx.TransportError as error:
                problem = _transport_problem(url, error)
                if attempt < settings.retries and _wait(delay, deadline, cancelled):
                    attempt += 1
                    continue
                raise HttpSourceError(problem) from None
            if 300 <= status < 400:
                where = response_headers.get("location", "elsewhere")
                raise HttpSourceError(
                    f"authentication problem: {url} redirects (HTTP {status}) to {where}; redirects are"
                    " not followed - set [sessions].token, token_env or headers"
                )
            if status in (401, 403):
                raise HttpSourceError(
                    f"authentication problem: {url} answered HTTP {status}; set [sessions].token,"
                    " token_env or headers"
                )
            if status == 503 and (after := _retry_after(response_headers.get("retry-after"))) is not None:
                if after > settings.retry_after_max_s:
                    raise HttpSourceError(
                        f"{url} is unavailable (HTTP 503) and asks to retry after {after:g} s,"
                        f" more than the {settings.retry_after_max_s:g} s cap"
                    )
                if attempt < settings.retries and _wait(after, deadline, cancelled):
                    attempt += 1
                    continue
            elif status >= 500 and attempt < settings.retries and _wait(delay, deadline, cancelled):
                attempt += 1
                continue
            return _parse(url, status, content_type, body)


def _get(client: httpx.Client, url: str, headers: Mapping[str, str], deadline: float) -> tuple[int, str, bytes, httpx.Headers]:
    """One request, streamed so that a reply trickling past the deadline is cut off."""
    if time.monotonic() >= deadline:
        raise HttpSourceError(f"no reply from {url} within the deadline")
    with client.stream("GET", url, headers=headers) as response:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise HttpSourceError(f"reply from {url} is larger than {MAX_BODY_BYTES // 2**20} MiB")
            if time.monotonic() > deadline:
                raise HttpSourceError(f"reply from {url} did not finish within the deadline (it trickles)")
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        return response.status_code, content_type, b"".join(chunks), response.headers


def _wait(seconds: float, deadline: float, cancelled: threading.Event) -> bool:
    """Sleep before a retry if that still fits the deadline; False when it does not (or on cancel)."""
    if time.monotonic() + seconds >= deadline:
        return False
    return not cancelled.wait(seconds)


def _transport_problem(url: str, error: httpx.TransportError) -> str:
    if isinstance(error, httpx.ConnectTimeout):
        return f"cannot connect to {url}: timed out"
    if isinstance(error, httpx.ConnectError):
        reason = str(error).split("] ")[-1] or "connection failed"
        return f"cannot connect to {url}: {reason}"
    if isinstance(error, httpx.ReadTimeout):
        return f"{url} stopped answering (read timed out)"
    return f"GET {url} failed: {str(error) or type(error).__name__}"


def _parse(url: str, status: int, content_type: str, body: bytes) -> Any:
    if content_type != "application/json" and not content_type.endswith("+json"):
        shown = content_type or "no content type"
        raise HttpSourceError(f"expected JSON from {url}, got {shown} (HTTP {status}): {_first_chars(body)}")
    if status != 200:
        raise HttpSourceError(f"HTTP {status} from {url}: {_first_chars(body)}")
    try:
        return json.loads(body)
    except ValueError as error:
        raise HttpSourceError(f"malformed JSON from {url} (HTTP {status}): {error}") from None


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", type(None): "null"}.get(type(value), type(value).__name__)


def sessions_of(settings: HttpSettings, reply: Any) -> list[Session]:
    """Map the reply to sessions through the configured item path, field and state names."""
    items = reply
    if not isinstance(reply, list):
        for part in (p for p in settings.items.split(".") if p):
            if not isinstance(items, dict) or part not in items:
                raise HttpSourceError(f"unexpected JSON from {settings.url}: no {settings.items!r} list in the reply")
            items = items[part]
    if not isinstance(items, list):
        raise HttpSourceError(f"unexpected JSON from {settings.url}: {settings.items!r} is {_kind(items)}, not a list")
    return [_session(settings, index, item) for index, item in enumerate(items)]


def _session(settings: HttpSettings, index: int, item: Any) -> Session:
    where = f"unexpected JSON from {settings.url}: session {index}"
    if not isinstance(item, dict):
        raise HttpSourceError(f"{where} is {_kind(item)}, not an object")
    values: dict[str, Any] = {name: item.get(settings.fields.get(name, name)) for name in FIELDS}
    if values["id"] is None:
        raise HttpSourceError(f"{where} has no {settings.fields.get('id', 'id')!r} field")
    raw_state = str(values["state"])
    state_name = settings.state_names.get(raw_state, raw_state)
    try:
        state = SessionState(state_name)
    except ValueError:
        known = ", ".join(SessionState)
        raise HttpSourceError(f"{where} has state {raw_state!r}; map it with [sessions.state_names] to one of {known}") from None
    times = {name: _time(where, name, values[name]) for name in ("created_at", "updated_at", "last_access_at")}
    try:
        progress = float(values["progress"] or 0.0)
    except (TypeError, ValueError):
        raise HttpSourceError(f"{where} has progress {values['progress']!r}, not a number") from None
    return Session(
        id=str(values["id"]), state=state, label=str(values["label"] or ""), owner=str(values["owner"] or ""),
        progress=progress, created_at=times["created_at"],
        updated_at=times["updated_at"] or times["created_at"],
        last_access_at=times["last_access_at"] or times["updated_at"] or times["created_at"],
    )


def _time(where: str, name: str, value: Any) -> float:
    """Unix seconds, or an ISO 8601 string; missing is 0 (unknown)."""
    if value is None:
        return 0.0
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            pass
    raise HttpSourceError(f"{where} has {name} {value!r}: expected Unix seconds or an ISO 8601 time")


class HttpFollower:
    """The collect function of an http(s):// Sessions panel: a full read every time."""

    def __init__(self, settings: HttpSettings) -> None:
        self.settings = settings
        self.reads = 0

    def __call__(self, context: CollectContext[SessionsView]) -> SessionsView:
        reply = fetch_json(self.settings, context.deadline, context.cancelled)
        sessions = sessions_of(self.settings, reply)
        self.reads += 1
        return view_of(self.settings.url, None, sessions, self.reads)
