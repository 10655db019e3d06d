"""The Sessions panel's collector, chosen by the scheme of ``[sessions].url``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

from backends.collector import CollectContext, Collector

if TYPE_CHECKING:
    from backends.sessions.follow import SessionsView
    from backends.sessions.http_source import HttpSettings


class NotConfigured(Exception):
    """``[sessions] url`` is not set: said plainly, in the status line and `snapshot --json`."""


def _not_configured(context: CollectContext[SessionsView]) -> NoReturn:
    raise NotConfigured("Sessions panel not configured: set [sessions] url in the config file")


def http_settings(config: Any) -> HttpSettings:
    """The HTTP source's settings from a SessionsConfig (console/config.py)."""
    from backends.sessions.http_source import HttpSettings

    return HttpSettings(
        url=config.url, items=config.items, fields=dict(config.fields),
        state_names=dict(config.state_names), headers=dict(config.headers),
        token=config.token, token_env=config.token_env,
        connect_timeout_s=config.connect_timeout, read_timeout_s=config.read_timeout,
        retries=config.retries, retry_after_max_s=config.retry_after_max,
    )


def sessions_collector(config: Any) -> Collector[SessionsView]:
    """``config`` is the [sessions] section: url, interval, timeout and the HTTP keys.

    Only the configured kind of source is imported (httpx, or the registry with its
    database driver): a console without a sessions registry carries neither.
    """
    if config.url is None:
        collect: Any = _not_configured
    elif urlsplit(config.url).scheme in ("http", "https"):
        from backends.sessions.http_source import HttpFollower

        collect = HttpFollower(http_settings(config))
    else:
        from backends.sessions.follow import RegistryFollower

        collect = RegistryFollower(config.url)
    return Collector("sessions", collect, interval_s=config.interval, timeout_s=config.timeout)
