"""HTTP in: request bytes -> normaliser -> submit, with one error mapping.

| what went wrong | status | `error` |
| --- | --- | --- |
| not JSON (malformed) | 400 | invalid_json |
| JSON of the wrong shape | 400 | invalid_payload (`field` is the `$.path`) |
| body over `max_body_bytes` | 413 | too_large |
| a content type that is not JSON | 415 | unsupported_media_type |
| ingest queue full | 429 + Retry-After | overloaded |

The body limit is checked from Content-Length before reading, and again while reading,
so an oversized body never sits in memory whole. A 200 means the alerts were
correlated and their incident events queued for the sinks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import msgspec
import structlog
from aiohttp import web

from ingest.normalize import NORMALIZERS, Normalizer
from ingest.normalize.alertmanager import normalize_alertmanager_v2
from ingest.ratelimit import LogLimiter
from ingest.source import Submit
from stormwatch.errors import Overloaded, PayloadError, StoreUnavailable
from stormwatch.metrics import Metrics

__all__ = ["HttpSource"]

_json = msgspec.json.Encoder()
_DISCARD_LIMIT = 64 * 1024 * 1024
_JSON_TYPES = ("application/json", "text/json", "application/x-ndjson", "text/plain", "")
log = structlog.get_logger("stormwatch.ingest")


def _error(
    status: int, error: str, message: str, field: str = "", headers: dict[str, str] | None = None
) -> web.Response:
    body = _json.encode({"error": error, "field": field, "message": message})
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


class HttpSource:
    """The webhook routes. `routes()` goes into the daemon's aiohttp application."""

    name = "http"

    def __init__(
        self,
        submit: Submit,
        metrics: Metrics,
        max_body_bytes: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._submit = submit
        self._metrics = metrics
        self._max = max_body_bytes
        self._clock = clock
        self._limiter = LogLimiter()
        for source in ("alertmanager", *NORMALIZERS):
            metrics.init_source(source)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/v2/alerts", self._alertmanager_api),
            web.post("/webhook/{format}", self._webhook),
        ]

    async def _alertmanager_api(self, request: web.Request) -> web.Response:
        return await self._handle(request, "alertmanager", normalize_alertmanager_v2)

    async def _webhook(self, request: web.Request) -> web.Response:
        fmt = request.match_info["format"]
        normalizer = NORMALIZERS.get(fmt)
        if normalizer is None:
            known = ", ".join(sorted(NORMALIZERS))
            return _error(
                404, "unknown_format", f"no webhook format {fmt!r}; known: {known}", "format"
            )
        return await self._handle(request, fmt, normalizer)

    async def _read(self, request: web.Request, source: str) -> bytes:
        ctype = request.content_type.lower()
        if ctype not in _JSON_TYPES and not ctype.endswith("+json"):
            msg = f"content type {ctype!r} is not JSON; send application/json"
            raise PayloadError(
                msg, source=source, field="Content-Type", reason="unsupported_media_type"
            )
        too_large = f"request body exceeds {self._max} bytes (ingest.max_body_bytes)"
        declared = request.content_length
        if declared is not None and declared > self._max:
            await self._discard(request, declared)
            raise PayloadError(too_large, source=source, reason="too_large")
        chunks, size = [], 0
        async for chunk in request.content.iter_chunked(65536):
            size += len(chunk)
            if size > self._max:
                await self._discard(request, None)
                raise PayloadError(too_large, source=source, reason="too_large")
            chunks.append(chunk)
        return b"".join(chunks)

    async def _discard(self, request: web.Request, declared: int | None) -> None:
        """Read and drop an oversized body, chunk by chunk, so the client (which may not
        read a response before it has sent everything) gets its 413 rather than a reset.
        Past `_DISCARD_LIMIT` the connection is closed instead: never hold or read
        without end."""
        if declared is not None and declared > _DISCARD_LIMIT:
            request.protocol.force_close()
            return
        read = 0
        async for chunk in request.content.iter_chunked(1 << 20):
            read += len(chunk)
            if read > _DISCARD_LIMIT:
                request.protocol.force_close()
                return

    async def _handle(
        self, request: web.Request, source: str, normalize: Normalizer
    ) -> web.Response:
        m = self._metrics
        try:
            body = await self._read(request, source)
            alerts = normalize(body, self._clock())
            await self._submit(alerts)
        except PayloadError as err:
            return self._reject(request, source, err)
        except Overloaded as err:
            m.alerts_rejected.labels(source, "overloaded").inc()
            retry = str(max(1, math.ceil(err.retry_after_s)))
            return _error(429, "overloaded", str(err), headers={"Retry-After": retry})
        except StoreUnavailable as err:
            return _error(503, "store_unavailable", str(err), headers={"Retry-After": "5"})
        except Exception:  # request root: the sender retries; we log and keep serving
            log.exception("batch_failed", source=source)
            return _error(
                500,
                "internal",
                "the batch was not processed; retry it",
                headers={"Retry-After": "1"},
            )
        firing = sum(1 for a in alerts if a.status == "firing")
        if firing:
            m.alerts_received.labels(source, "firing").inc(firing)
        if len(alerts) - firing:
            m.alerts_received.labels(source, "resolved").inc(len(alerts) - firing)
        return web.Response(body=b"{}", content_type="application/json")

    def _reject(self, request: web.Request, source: str, err: PayloadError) -> web.Response:
        status = {"too_large": 413, "unsupported_media_type": 415}.get(err.reason, 400)
        self._metrics.alerts_rejected.labels(source, err.reason).inc()
        allowed, suppressed = self._limiter.allow(source, err.reason)
        if allowed:
            log.warning(
                "alert_rejected",
                source=source,
                reason=err.reason,
                field=err.field,
                message=err.message,
                peer=request.remote,
                suppressed=suppressed,
            )
        return _error(status, err.reason, err.message, err.field)
