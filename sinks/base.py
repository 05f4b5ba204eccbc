"""What every sink is, and the one table that decides whether a failure is retried.

A sink delivers one `IncidentEvent` and either returns a `Receipt` or raises a
`SinkError` whose `retryable` says what the outbox does next (Alertmanager's notifier
returns `(retry bool, err)` for the same reason: the integration knows, not the caller).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Protocol

import aiohttp
import msgspec

from sinks.remote import MemoryRemoteStore, Refs
from stormwatch.errors import PermanentSinkError, RetryableSinkError, SinkError
from stormwatch.wire import Incident, IncidentEvent

__all__ = [
    "Receipt",
    "Sink",
    "SinkContext",
    "classify_status",
    "parse_retry_after",
    "translate_client_error",
]


class Receipt(msgspec.Struct, kw_only=True, frozen=True):
    """What a delivery got back: status code, and the remote object's id if any
    (a ticket key, a PagerDuty dedup key)."""

    sink: str
    status: int | None = None
    remote_id: str | None = None
    detail: str = ""


class Sink(Protocol):
    """A sink may set `keeps_refs = False` when it never reads or writes its refs
    (`SinkContext.refs`): its drain then reads them once a round and not again after a
    delivery (sinks/drain.py). Without it the drain assumes it does."""

    name: str

    async def deliver(self, event: IncidentEvent) -> Receipt:
        """Deliver one event. Raises RetryableSinkError or PermanentSinkError."""
        ...

    async def close(self) -> None: ...


def _no_itil(_: Incident) -> tuple[int, int] | None:
    return None


@dataclass
class SinkContext:
    """What a sink gets from the daemon besides its own config."""

    refs: Refs = field(default_factory=lambda: Refs(MemoryRemoteStore(), ""))
    """Its records of each incident's remote object (sinks/remote.py)."""
    incident_url: str = ""
    """The link back to an incident, `{key}` replaced (a sink's own setting wins)."""
    itil: Callable[[Incident], tuple[int, int] | None] = _no_itil
    """(impact, urgency) the incident's rule set for it, if its classify case did."""

    def link(self, own: str | None, key: str) -> str:
        template = own or self.incident_url
        return template.replace("{key}", key) if template else ""


# 408 Request Timeout, 425 Too Early and 429 Too Many Requests are the 4xx worth
# retrying; every other 4xx says the request itself is wrong.
_RETRYABLE_4XX = frozenset({408, 425, 429})


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    import time

    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


def classify_status(sink: str, status: int, body: str = "", retry_after: str | None = None) -> None:
    """Raise the SinkError a non-2xx status means; return quietly for 2xx.

    5xx, 408, 425 and 429 are retryable (with the server's Retry-After, if any); other
    4xx are permanent: retrying the same request cannot succeed.
    """
    if 200 <= status < 300:
        return
    detail = body[:500]
    msg = f"{sink}: HTTP {status}: {detail}" if detail else f"{sink}: HTTP {status}"
    if status >= 500 or status in _RETRYABLE_4XX:
        raise RetryableSinkError(
            msg, sink=sink, status=status, retry_after_s=parse_retry_after(retry_after)
        )
    raise PermanentSinkError(msg, sink=sink, status=status)


def translate_client_error(sink: str, err: BaseException) -> SinkError:
    """A client-side failure (connection refused, timeout, ...) as a retryable SinkError."""
    if isinstance(err, asyncio.TimeoutError | TimeoutError):
        return RetryableSinkError(f"{sink}: request timed out", sink=sink)
    if isinstance(err, aiohttp.ClientError):
        return RetryableSinkError(f"{sink}: {type(err).__name__}: {err}", sink=sink)
    return RetryableSinkError(f"{sink}: {err!r}", sink=sink)
