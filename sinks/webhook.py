"""`webhook`: POST each incident event as JSON to a URL.

The body is the same JSON as the file sink's line. `Idempotency-Key` is
`<incident key>:<sequence>`, identical across retries of one event, so a receiver can
drop repeats; `sequence` lets it drop stale updates too (while the receiver is down,
an incident's waiting events fold into its latest state: sinks/coalesce.py). The
status decides retryable or permanent (`sinks.base.classify_status`).
"""

from __future__ import annotations

import msgspec

from sinks.base import Receipt
from sinks.http import HttpClient
from sinks.retry import BreakerPolicy, RetryPolicy
from stormwatch.wire import Duration, IncidentEvent

__all__ = ["WebhookSink", "WebhookSinkConfig"]

VERSION = "0.1.0"


class WebhookSinkConfig(
    msgspec.Struct,
    tag="webhook",
    tag_field="type",
    kw_only=True,
    frozen=True,
    forbid_unknown_fields=True,
):
    name: str
    url: str
    headers: dict[str, str] = {}
    timeout: Duration = Duration(10)
    retry: RetryPolicy = RetryPolicy()
    breaker: BreakerPolicy = BreakerPolicy()
    send_duplicate_updates: bool = False
    """Send `updated` events whose only change is re-sent alerts (off: they are noise
    for most receivers)."""


_encoder = msgspec.json.Encoder()


class WebhookSink:
    keeps_refs = False
    """Its drain alone writes its refs (sinks/drain.py)."""

    def __init__(self, config: WebhookSinkConfig) -> None:
        self.name = config.name
        self.config = config
        self._http = HttpClient(
            config.name, config.timeout, {"User-Agent": f"stormwatch/{VERSION}", **config.headers}
        )

    async def deliver(self, event: IncidentEvent) -> Receipt:
        if event.reason == "duplicates" and not self.config.send_duplicate_updates:
            return Receipt(sink=self.name, detail="skipped: only re-sends changed")
        key = {"Idempotency-Key": f"{event.incident.key}:{event.sequence}"}
        status, _ = await self._http.request(
            "POST", self.config.url, _encoder.encode(event), headers=key
        )
        return Receipt(sink=self.name, status=status, remote_id=event.incident.key)

    async def close(self) -> None:
        await self._http.close()
