"""The roles every source plays: it normalises what arrives and hands it to `Submit`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeAlias

from stormwatch.wire import Alert

__all__ = ["Source", "Submit"]

Submit: TypeAlias = Callable[[list[Alert]], Awaitable[None]]
"""Queue alerts for correlation; returns once they are correlated and their incident
events queued. Raises `Overloaded` when the ingest queue is full, `StoreUnavailable`
while the state store is down (both carry `retry_after_s`)."""


class Source(Protocol):
    name: str

    async def run(self, submit: Submit) -> None:
        """Take alerts in until cancelled."""
        ...
