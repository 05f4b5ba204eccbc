"""HTTP routes for acknowledgements and sink health (wired in by stormwatch/web.py).

- `POST /api/v1/incidents/{key}/ack` with `{"by": "ada", "comment": "on it"}`:
  acknowledges an open incident and tells the sinks that have it. 200 with the
  incident (also when it was already acknowledged: the answer says by whom); 404 for
  an unknown incident, 409 for a resolved one, 400 naming the bad field. In
  partitioned mode 202 `{"key", "queued": true, "incident"}`: the acknowledgement goes
  to every partition and the shard holding the incident applies it
  (stormwatch/control.py).
- `POST /api/v1/sinks/{sink}/webhook`: a vendor's acknowledgement (sinks/inbound.py
  says what each vendor sends and how it is authenticated). 401 without the sink's
  secret, 400 for a body that is not the vendor's, else 200 with how many incidents it
  acknowledged (an incident stormwatch does not know is not an error: the vendor must
  not retry it).
- `GET /api/v1/sinks`: per sink, incidents and events waiting, the oldest wait, the
  breaker, dead letters.
- `GET /api/v1/incidents/{key}/deliveries`: per sink, the incident's remote object (id,
  state), the last event the sink has, and what still waits for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import msgspec
from aiohttp import web

from sinks import JiraSinkConfig, OpsgenieSinkConfig, PagerDutySinkConfig, ServiceNowSinkConfig
from sinks.inbound import (
    Ack,
    Unauthorized,
    check_token,
    jira_acks,
    opsgenie_acks,
    pagerduty_acks,
    servicenow_acks,
)
from stormwatch.errors import PayloadError, split_validation_message

if TYPE_CHECKING:
    from stormwatch.app import App

__all__ = ["AckRequest", "ack_routes"]


class AckRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    by: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    comment: Annotated[str, msgspec.Meta(max_length=2000)] = ""


_ack = msgspec.json.Decoder(AckRequest)
_json = msgspec.json.Encoder()


def _answer(payload: object, status: int = 200) -> web.Response:
    return web.Response(status=status, body=_json.encode(payload), content_type="application/json")


def ack_routes(app: App) -> list[web.RouteDef]:
    from stormwatch.web import error_response

    async def acknowledge(request: web.Request) -> web.Response:
        key = request.match_info["key"]
        try:
            spec = _ack.decode(await request.read())
        except msgspec.ValidationError as err:
            message, field = split_validation_message(str(err))
            return error_response(400, "invalid_payload", message, field)
        except msgspec.DecodeError as err:
            return error_response(400, "invalid_json", str(err))
        before = app.incident(key)
        if before is None and not app.partitioned:
            return error_response(404, "not_found", "no such incident", "key")
        if before is not None and before.status == "resolved":
            return error_response(409, "conflict", f"incident {key} is resolved", "key")
        after = await app.acknowledge(key, spec.by, "api", comment=spec.comment)
        if app.partitioned:
            # Sent to every partition; the shard holding the incident applies it in turn.
            return _answer({"key": key, "queued": True, "incident": after}, status=202)
        return _answer(after)

    async def webhook(request: web.Request) -> web.Response:
        name = request.match_info["sink"]
        config = next((s for s in app.config.sinks if s.name == name), None)
        if config is None:
            return error_response(404, "not_found", f"no sink {name!r}", "sink")
        if not isinstance(
            config, PagerDutySinkConfig | OpsgenieSinkConfig | JiraSinkConfig | ServiceNowSinkConfig
        ):
            return error_response(404, "not_found", f"sink {name!r} takes no webhooks", "sink")
        secret = config.webhook_key()
        if secret is None:
            field = "webhook_secret" if isinstance(config, PagerDutySinkConfig) else "webhook_token"
            message = f"sink {name!r} has no {field} configured"
            return error_response(403, "forbidden", message, f"sinks[{name}].{field}")
        body = await request.read()
        try:
            acks = _parse(config, body, request, secret)
        except Unauthorized as err:
            return error_response(401, "unauthorized", str(err))
        except PayloadError as err:
            return error_response(400, err.reason, err.message, err.field)
        done = 0
        for ack in acks:
            before = app.incident(ack.key)
            if before is None and not app.partitioned:
                continue  # unknown, with no other shard to send it to
            if before is not None and (
                before.status != "open" or before.acknowledged_at is not None
            ):
                continue
            await app.acknowledge(ack.key, ack.by, name)
            done += 1
        return _answer({"sink": name, "acknowledged": done, "received": len(acks)})

    async def sinks(_: web.Request) -> web.Response:
        return _answer(await app.sink_health())

    async def deliveries(request: web.Request) -> web.Response:
        key = request.match_info["key"]
        if app.incident(key) is None:
            return error_response(404, "not_found", "no such incident", "key")
        return _answer(await app.delivery_of(key).deliveries(key))

    return [
        web.post("/api/v1/incidents/{key}/ack", acknowledge),
        web.post("/api/v1/sinks/{sink}/webhook", webhook),
        web.get("/api/v1/sinks", sinks),
        web.get("/api/v1/incidents/{key}/deliveries", deliveries),
    ]


def _parse(
    config: PagerDutySinkConfig | OpsgenieSinkConfig | JiraSinkConfig | ServiceNowSinkConfig,
    body: bytes,
    request: web.Request,
    secret: str,
) -> list[Ack]:
    if isinstance(config, PagerDutySinkConfig):
        return pagerduty_acks(body, request.headers.get("X-PagerDuty-Signature"), secret)
    check_token(secret, request.headers.get("Authorization"), request.query.get("token"))
    if isinstance(config, OpsgenieSinkConfig):
        return opsgenie_acks(body)
    if isinstance(config, JiraSinkConfig):
        return jira_acks(body)
    return servicenow_acks(body)
