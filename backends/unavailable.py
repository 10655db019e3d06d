"""The collector behind a panel whose own issue has not landed yet."""

from __future__ import annotations

from typing import NoReturn

from backends.collector import CollectContext, SyncCollect


class NotAvailableYet(Exception):
    """The panel's data source is not built yet; said plainly, never faked."""


def unavailable(title: str, issue: int) -> SyncCollect[None]:
    """A collect function that reports, through the normal error path, that it is missing."""

    def collect(context: CollectContext[None]) -> NoReturn:
        raise NotAvailableYet(f"{title} not available yet (issue #{issue})")

    return collect
