"""HTTP in: request bytes -> normaliser -> submit, with one error mapping.

| what went wrong | status | `error` |
| --- | --- | --- |
| over the client's or the credential's request rate | 429 + Retry-After | rate_limited |
| no or wrong credentials for the source | 401 | unauthorized |
| a content type that is not JSON | 415 | unsupported_media_type |
| body over `max_body_bytes`, before or after decompression | 413 | too_large |
| body not complete within `body_timeout` | 408 | timeout |
| body cut short, a `Content-Encoding` that does not decode | 400 | incomplete_body, invalid_encoding |
| JSON nested deeper than `max_json_depth` | 400 | too_deep |
| not JSON (malformed) | 400 | invalid_json |
| JSON of the wrong shape, a time out of range | 400 | invalid_payload (`field` is the `$.path`) |
| no such `/webhook/<format>` | 404 | unknown_format (counted under source `http`) |
| no room in the in-flight budget (checked before the body is read), queue full | 429 + Retry-After | overloaded |
| state store down; a bug | 503, 500 + Retry-After | store_unavailable, internal |

Every refusal is counted in `stormwatch_alerts_rejected_total{source, reason}`. An
error answered before the body was read whole says `Connection: close` (aiohttp then
reads and drops the rest for a moment, so the client sees the answer, not a reset). A
200 means the alerts were correlated and their incident events queued for the sinks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping

import msgspec
import structlog
from aiohttp import web

from ingest.auth import Authenticator
from ingest.body import BodyLimits, check_depth, decode_content, read_body
from ingest.limits import UNKNOWN_LENGTH_BYTES, InflightBudget, RateLimiter, Ticket, estimate_alerts
from ingest.normalize import NORMALIZERS, Normalizer
from ingest.normalize.alertmanager import normalize_alertmanager_v2
from ingest.ratelimit import LogLimiter
from ingest.source import Submit
from stormwatch.errors import Overloaded, PayloadError, StoreUnavailable
from stormwatch.metrics import Metrics

__all__ = ["STATUS", "HttpSource", "error_response"]

_json = msgspec.json.Encoder()
_JSON_TYPES = ("application/json", "text/json", "application/x-ndjson", "text/plain", "")
log = structlog.get_logger("stormwatch.ingest")

STATUS = {
    "too_large": 413,
    "unsupported_media_type": 415,
    "timeout": 408,
    "unauthorized": 401,
    "rate_limited": 429,
    "misdirected": 421,
    "overloaded": 429,
    "store_unavailable": 503,
    "internal": 500,
}
"""HTTP status per rejection reason; any other reason is 400."""
_CLOSE = {"too_large", "timeout", "incomplete_body"}
"""Reasons after which the connection cannot be trusted for another request."""


def error_response(
    status: int, error: str, message: str, field: str = "", headers: Mapping[str, str] | None = None
) -> web.Response:
    """Every error body has one shape: {"error", "field", "message"}."""
    body = _json.encode({"error": error, "field": field, "message": message})
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


def _close_if_unread(request: web.BaseRequest, response: web.StreamResponse) -> None:
    if not request.content.is_eof():
        response.force_close()


class HttpSource:
    """The webhook routes. `routes()` goes into the daemon's aiohttp application, which
    must run with `auto_decompress=False` (`SERVER_OPTIONS`): bodies are decompressed
    here, after the signature check and under the size limit."""

    name = "http"
    SERVER_OPTIONS: Mapping[str, object] = {"auto_decompress": False, "lingering_time": 2.0}
    """`lingering_time`: after an answer sent before the body was read, aiohttp reads and
    drops the rest for this long, so the client sees the answer rather than a reset;
    aiohttp's 10 s kept hundreds of abandoned connections (and their buffers) alive
    under the soak test's hostile load, 2 s is ample on any network an alert crosses."""

    def __init__(
        self,
        submit: Submit,
        metrics: Metrics,
        limits: BodyLimits,
        *,
        normalizers: Mapping[str, Normalizer] | None = None,
        auth: Authenticator | None = None,
        rate_limiter: RateLimiter | None = None,
        budget: InflightBudget | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._submit = submit
        self.budget = budget
        self._metrics = metrics
        self.limits = limits
        self.normalizers: dict[str, Normalizer] = {**NORMALIZERS, **(normalizers or {})}
        self._auth = auth if auth is not None else Authenticator()
        self._rate = rate_limiter
        self._clock = clock
        self._limiter = LogLimiter()
        for source in ("http", "alertmanager", *self.normalizers):
            metrics.init_source(source)

    @property
    def sources(self) -> list[str]:
        """The source names the routes take alerts for (their auth is per source)."""
        return ["alertmanager", *self.normalizers]

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/v2/alerts", self._alertmanager_api),
            web.post("/webhook/{format}", self._webhook),
        ]

    async def _alertmanager_api(self, request: web.Request) -> web.StreamResponse:
        # Its decoder is typed to the bottom (strings in string maps), so msgspec refuses
        # anything deeper than the schema at its first bracket, without recursing: the
        # depth scan would cost an eighth of the server for nothing (bench/README.md).
        return await self._handle(request, "alertmanager", normalize_alertmanager_v2, typed=True)

    async def _webhook(self, request: web.Request) -> web.StreamResponse:
        fmt = request.match_info["format"]
        normalizer = self.normalizers.get(fmt)
        if normalizer is None:
            # Counted under "http": the format named in the path is not a bounded label.
            self._metrics.alerts_rejected.labels("http", "unknown_format").inc()
            known = ", ".join(sorted(self.normalizers))
            response = error_response(
                404, "unknown_format", f"no webhook format {fmt!r}; known: {known}", "format"
            )
            _close_if_unread(request, response)
            return response
        return await self._handle(request, fmt, normalizer)

    def _admit(self, request: web.Request, source: str) -> None:
        """Rate limits and credentials that need no body. Raises PayloadError."""
        if self._rate is not None:
            self._rate.check_client(request.remote or "unknown", source)
        credential = self._auth.check_headers(source, request.headers)
        if self._rate is not None and credential:
            self._rate.check_credential(credential, source)

    def _reserve(self, request: web.Request) -> Ticket | None:
        """Room in the in-flight budget, before the body is read (raises Overloaded). A
        body declared over the size limit holds none: it is refused with 413 unread."""
        declared = request.content_length
        if self.budget is None or (declared or 0) > self.limits.max_bytes:
            return None
        nbytes = declared if declared is not None else UNKNOWN_LENGTH_BYTES
        coding = request.headers.get("Content-Encoding", "")
        return self.budget.reserve(estimate_alerts(nbytes, coding), nbytes)

    async def _body(self, request: web.Request, source: str, *, typed: bool = False) -> bytes:
        ctype = request.content_type.lower()
        if ctype not in _JSON_TYPES and not ctype.endswith("+json"):
            msg = f"content type {ctype!r} is not JSON; send application/json"
            raise PayloadError(
                msg, source=source, field="Content-Type", reason="unsupported_media_type"
            )
        raw = await read_body(request, self.limits, source)
        credential = self._auth.check_signature(source, request.headers, raw, self._clock())
        if self._rate is not None and credential:
            self._rate.check_credential(credential, source)
        body = decode_content(
            raw, request.headers.get("Content-Encoding", ""), self.limits.max_bytes, source
        )
        if not typed:
            check_depth(body, self.limits.max_depth, source)
        return body

    async def _handle(
        self, request: web.Request, source: str, normalize: Normalizer, *, typed: bool = False
    ) -> web.StreamResponse:
        m = self._metrics
        ticket: Ticket | None = None
        try:
            self._admit(request, source)
            ticket = self._reserve(request)
            body = await self._body(request, source, typed=typed)
            try:
                alerts = normalize(body, self._clock())
            except PayloadError as err:
                if typed and err.reason == "invalid_payload":
                    # Refused already; say `too_deep` if that is what it was (the scan
                    # runs on refusals only).
                    check_depth(body, self.limits.max_depth, source)
                raise
            if ticket is not None:
                ticket.resize(len(alerts), len(body))
            await self._submit(alerts)
        except PayloadError as err:
            return await self._reject(request, source, err)
        except Overloaded as err:
            m.alerts_rejected.labels(source, "overloaded").inc()
            retry = str(max(1, math.ceil(err.retry_after_s)))
            return error_response(429, "overloaded", str(err), headers={"Retry-After": retry})
        except StoreUnavailable as err:
            m.alerts_rejected.labels(source, "store_unavailable").inc()
            retry = str(max(1, math.ceil(err.retry_after_s)))
            response = error_response(
                503, "store_unavailable", str(err), headers={"Retry-After": retry}
            )
            _close_if_unread(request, response)
            return response
        except Exception:  # request root: the sender retries; we log and keep serving
            log.exception("batch_failed", source=source)
            m.alerts_rejected.labels(source, "internal").inc()
            return error_response(
                500,
                "internal",
                "the batch was not processed; retry it",
                headers={"Retry-After": "1"},
            )
        finally:
            if ticket is not None:
                ticket.release()
        m.count_received(source, [a.status for a in alerts])
        return web.Response(body=b"{}", content_type="application/json")

    async def _reject(
        self, request: web.Request, source: str, err: PayloadError
    ) -> web.StreamResponse:
        status = STATUS.get(err.reason, 400)
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
        headers = getattr(err, "headers", None)  # Retry-After, WWW-Authenticate
        response = error_response(status, err.reason, err.message, err.field, headers)
        if err.reason == "timeout":
            # A stalled sender sends nothing more worth waiting for: answer, then close at
            # once instead of lingering on the connection.
            response.force_close()
            await response.prepare(request)
            await response.write_eof()
            request.protocol.force_close()
        elif err.reason in _CLOSE:
            response.force_close()
        else:
            _close_if_unread(request, response)
        return response
