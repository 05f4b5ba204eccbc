"""The middleware every HTTP request passes: API credentials, rate limits, and answers
that never leave the client guessing.

- `/api/v1/...` and `/-/...` (incidents, silences, dead letters, reload) take the API
  credential (`ingest.auth.api`) and the per-client and per-token rate limits; the
  ingest routes check their own source's credential in `HttpSource` (an HMAC needs the
  body). `/metrics`, `/healthz` and `/readyz` stay open for scrapers and probes.
- Every error is the JSON `{"error", "field", "message"}`, aiohttp's own 404 and 405
  included; a handler that raises is a logged, counted 500, never a traceback page.
- The state store down is 503 + Retry-After (`store_unavailable`), on every route.
- Every 5xx is counted in `stormwatch_http_server_errors_total{status}`.
- An error answered before the request body was read whole says `Connection: close`,
  because aiohttp will close the connection rather than parse the rest as a request.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from ingest.auth import Authenticator
from ingest.http_source import STATUS, error_response
from ingest.limits import RateLimiter
from stormwatch.errors import PayloadError, StoreUnavailable
from stormwatch.metrics import Metrics

__all__ = ["API_PREFIXES", "http_guard"]

API_PREFIXES = ("/api/v1/", "/-/")
log = structlog.get_logger("stormwatch.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _slug(reason: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", reason.lower()).strip("_") or "error"


def http_guard(auth: Authenticator, rate: RateLimiter | None, metrics: Metrics) -> Middleware:
    """The middleware; register it first so it sees every answer."""
    metrics.init_source("api")

    def admit_api(request: web.Request) -> None:
        if rate is not None:
            rate.check_client(request.remote or "unknown", "api")
        credential = auth.check_api(request.headers)
        if rate is not None and credential:
            rate.check_credential(credential, "api")

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        response: web.StreamResponse
        try:
            if request.path.startswith(API_PREFIXES):
                admit_api(request)
            response = await handler(request)
        except PayloadError as err:  # refused at the API gate
            metrics.alerts_rejected.labels("api", err.reason).inc()
            headers = getattr(err, "headers", None)
            response = error_response(
                STATUS.get(err.reason, 400), err.reason, err.message, err.field, headers
            )
        except StoreUnavailable as err:  # an action or a query that needs the store
            retry = str(max(1, math.ceil(err.retry_after_s)))
            response = error_response(
                503, "store_unavailable", str(err), headers={"Retry-After": retry}
            )
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            if exc.content_type == "application/json" and exc.text:
                # A route's own error body (it names the field): kept as it is.
                response = web.Response(
                    status=exc.status, text=exc.text, content_type="application/json"
                )
            else:
                response = error_response(exc.status, _slug(exc.reason), exc.text or exc.reason)
            for name in ("Allow", "Retry-After"):
                if name in exc.headers:
                    response.headers[name] = exc.headers[name]
        except Exception:  # request root: log, count, answer; the server keeps serving
            log.exception("request_failed", method=request.method, path=request.path)
            response = error_response(500, "internal", "the request failed; retry it")
        if response.status >= 500:
            metrics.http_server_errors.labels(str(response.status)).inc()
        if response.status >= 400 and not request.content.is_eof():
            response.force_close()
        return response

    return guard
