"""`webhook`: POST each incident event as JSON to a URL.

The body is the same JSON as the file sink's line. `Idempotency-Key` is
`<incident key>:<sequence>`, identical across retries of one event, so a receiver can
drop repeats; `sequence` lets it drop stale updates too. Retried with backoff by
`Retrying`; the status decides retryable or permanent (`sinks.base.classify_status`).
"""

from __future__ import annotations

import aiohttp
import msgspec

from sinks.base import Receipt, classify_status, translate_client_error
from sinks.retry import RetryPolicy
from stormwatch.errors import SinkError
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
    send_duplicate_updates: bool = False
    """Send `updated` events whose only change is re-sent alerts (off: they are noise
    for most receivers)."""


_encoder = msgspec.json.Encoder()


class WebhookSink:
    def __init__(self, config: WebhookSinkConfig) -> None:
        self.name = config.name
        self.config = config
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.config.timeout),
                headers={"User-Agent": f"stormwatch/{VERSION}", **self.config.headers},
            )
        return self._session

    async def deliver(self, event: IncidentEvent) -> Receipt:
        if event.reason == "duplicates" and not self.config.send_duplicate_updates:
            return Receipt(sink=self.name, detail="skipped: only re-sends changed")
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": f"{event.incident.key}:{event.sequence}",
        }
        try:
            async with self._client().post(
                self.config.url, data=_encoder.encode(event), headers=headers
            ) as resp:
                text = await resp.text() if resp.status >= 300 else ""
                classify_status(self.name, resp.status, text, resp.headers.get("Retry-After"))
                return Receipt(sink=self.name, status=resp.status, remote_id=event.incident.key)
        except SinkError:
            raise
        except (aiohttp.ClientError, TimeoutError) as err:
            raise translate_client_error(self.name, err) from err

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
