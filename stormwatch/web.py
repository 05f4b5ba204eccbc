"""The HTTP surface: ingest routes from `ingest.HttpSource`, plus operations.

- `GET /healthz`: the process is alive.
- `GET /readyz`: rules loaded, the correlator running, the state store taking commits
  and the Kafka source (if configured) consuming; 503 naming what is not, otherwise.
- `GET /metrics`: Prometheus text format, from the App's own registry.
- `POST /-/reload`: reload the rules (as SIGHUP); 400 with the errors if refused.
- `GET /api/v1/incidents[?status=open|resolved]`, `GET /api/v1/incidents/{key}`,
  `GET /api/v1/incidents/{key}/explain`.
- `GET|POST /api/v1/silences`, `DELETE /api/v1/silences/{id}`.
- `GET /api/v1/deadletters/{sink}`, `POST /api/v1/deadletters/{sink}/replay`.
- acknowledgements and sink health: stormwatch/ack_routes.py.

Every request passes `ingest.guard`'s middleware first: the API credential and rate
limits for `/api/v1/` and `/-/`, JSON error bodies, counted 5xx, `Connection: close`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from rules import MatcherError
from stormwatch.ack_routes import ack_routes
from stormwatch.amapi import am_routes
from stormwatch.errors import RuleError, split_validation_message
from stormwatch.silences import SilenceRequest
from stormwatch.status import status_routes
from stormwatch.wire import decode_hook

if TYPE_CHECKING:
    from stormwatch.app import App

__all__ = ["build_web_app", "error_response"]

_json = msgspec.json.Encoder()


def error_response(
    status: int, error: str, message: str, field: str = "", **headers: str
) -> web.Response:
    """Every error body has one shape: {"error", "field", "message"}."""
    body = _json.encode({"error": error, "field": field, "message": message})
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


def _ok(payload: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=_json.encode(payload), content_type="application/json")


_HELD_BY_CORRELATORS = (
    "/api/v1/incidents",
    "/api/v1/silences",
    "/api/v2/alerts",
    "/api/v2/silence",
)
"""Reads of what correlators hold (incidents, alerts, silences): a receiver holds none."""


@web.middleware
async def _reads_elsewhere(request: web.Request, handler: Any) -> web.StreamResponse:
    """A receiver's answer to those reads: not an empty list, which reads as "none"."""
    if request.method == "GET" and request.path.startswith(_HELD_BY_CORRELATORS):
        return error_response(
            421,
            "misdirected",
            "this process is a receiver: it holds no incidents, alerts or silences; "
            "read them from a correlator (writes are taken here)",
        )
    response: web.StreamResponse = await handler(request)
    return response


def build_web_app(app: App) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        return _ok({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        if not app.ready:
            return error_response(503, "not_ready", "starting or stopping")
        correlator = app.correlator
        if app.pipeline.outage.since is not None or (
            correlator is not None and correlator.outage.since is not None
        ):
            return error_response(503, "store_unavailable", "the state store takes no commits")
        kafka = app.kafka_source if correlator is None else correlator
        if kafka is not None and not kafka.consuming:
            return error_response(503, "kafka_not_consuming", "the Kafka source is not consuming")
        return _ok({"status": "ready", "rules": len(app.ruleset)})

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(app.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def reload(_: web.Request) -> web.Response:
        try:
            n = await app.reload_rules()
        except RuleError as err:
            return error_response(400, "invalid_rules", str(err))
        return _ok({"status": "reloaded", "rules": n})

    async def incidents(request: web.Request) -> web.Response:
        status = request.query.get("status", "open")
        if status not in ("open", "resolved", "all"):
            return error_response(
                400, "invalid_query", "status must be open, resolved or all", "status"
            )
        return _ok([i for i in app.incidents() if status in ("all", i.status)])

    async def explain_incident(request: web.Request) -> web.Response:
        found = app.explain(request.match_info["key"])
        if found is None:
            return error_response(404, "not_found", "no such incident", "key")
        return _ok(found)

    async def list_silences(_: web.Request) -> web.Response:
        return _ok(app.silences())

    async def add_silence(request: web.Request) -> web.Response:
        try:
            spec = msgspec.json.decode(
                await request.read(), type=SilenceRequest, dec_hook=decode_hook
            )
            silence = await app.add_silence(spec)
        except msgspec.ValidationError as err:
            message, field = split_validation_message(str(err))
            return error_response(400, "invalid_payload", message, field)
        except msgspec.DecodeError as err:
            return error_response(400, "invalid_json", str(err))
        except MatcherError as err:
            return error_response(400, "invalid_payload", str(err), "$.matchers")
        return _ok(silence, status=201)

    async def delete_silence(request: web.Request) -> web.Response:
        if not await app.expire_silence(request.match_info["id"]):
            return error_response(404, "not_found", "no such silence", "id")
        return web.Response(status=204)

    async def dead_letters(request: web.Request) -> web.Response:
        sink = request.match_info["sink"]
        if sink not in app.sinks:
            return error_response(404, "not_found", f"no sink {sink!r}", "sink")
        letters = await app.dead_letters(sink)
        return _ok(
            {"sink": sink, "dead_letters": letters, "dropped": app.dropped_dead_letters(sink)}
        )

    async def replay_dead_letters(request: web.Request) -> web.Response:
        sink = request.match_info["sink"]
        if sink not in app.sinks:
            return error_response(404, "not_found", f"no sink {sink!r}", "sink")
        return _ok({"sink": sink, "replayed": await app.replay_dead_letters(sink)})

    async def incident(request: web.Request) -> web.Response:
        found = app.incident(request.match_info["key"])
        if found is None:
            return error_response(
                404,
                "not_found",
                "no such incident (resolved incidents are kept for `correlate.retention`)",
                "key",
            )
        return _ok(found)

    middlewares = [app.intake.guard]
    if app.receiver is not None:
        middlewares.append(_reads_elsewhere)
    web_app = web.Application(
        client_max_size=app.config.ingest.max_body_bytes, middlewares=middlewares
    )
    web_app.add_routes(app.http_source.routes())
    web_app.add_routes(am_routes(app))  # Alertmanager's API v2 (stormwatch/amapi.py)
    web_app.add_routes(status_routes(app))  # the status page (stormwatch/status/)
    web_app.add_routes(
        [
            web.get("/healthz", healthz),
            web.get("/readyz", readyz),
            web.get("/metrics", metrics),
            web.post("/-/reload", reload),
            web.get("/api/v1/incidents", incidents),
            web.get("/api/v1/incidents/{key}", incident),
            web.get("/api/v1/incidents/{key}/explain", explain_incident),
            web.get("/api/v1/silences", list_silences),
            web.post("/api/v1/silences", add_silence),
            web.delete("/api/v1/silences/{id}", delete_silence),
            web.get("/api/v1/deadletters/{sink}", dead_letters),
            web.post("/api/v1/deadletters/{sink}/replay", replay_dead_letters),
        ]
    )
    web_app.add_routes(ack_routes(app))
    return web_app
