"""Alertmanager's API v2 where tools expect it: amtool, Grafana's Alertmanager data
source, anything built on Alertmanager's openapi.yaml (api/v2/openapi.yaml).

- `GET /api/v2/alerts` (`filter`, `active`, `silenced`, `inhibited`, `unprocessed`,
  `receiver`), `GET /api/v2/alerts/groups`; `POST /api/v2/alerts` is ingest's.
- `GET|POST /api/v2/silences`, `GET|DELETE /api/v2/silence/{id}`: silences with
  matcher objects (`name`, `value`, `isRegex`, `isEqual`), converted at this edge to
  and from the matcher strings the engine keeps (`service=~"db.*"`).
- `GET /api/v2/status`, `GET /api/v2/receivers`, `GET /-/healthy`, `GET /-/ready`.

Errors keep the house shape `{"error", "field", "message"}` (Alertmanager answers a
bare string there).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from correlate.suppress import Silence
from rules import Matcher, MatcherError, parse_matcher, parse_matchers
from stormwatch.errors import split_validation_message
from stormwatch.silences import SilenceRequest
from stormwatch.version import version
from stormwatch.views import AlertView
from stormwatch.wire import iso8601

if TYPE_CHECKING:
    from stormwatch.app import App

__all__ = ["AMMatcher", "PostableSilence", "am_routes", "from_matcher", "to_matcher"]

_json = msgspec.json.Encoder()


class AMMatcher(msgspec.Struct, kw_only=True):
    name: str
    value: str
    isRegex: bool
    isEqual: bool = True


class PostableSilence(msgspec.Struct, kw_only=True):
    matchers: list[AMMatcher]
    startsAt: datetime
    endsAt: datetime
    createdBy: str
    comment: str
    id: str | None = None


_OPS = {(False, True): "=", (False, False): "!=", (True, True): "=~", (True, False): "!~"}


def to_matcher(m: AMMatcher) -> Matcher:
    """Alertmanager's matcher object -> ours (raises MatcherError for a bad regex)."""
    return Matcher(name=m.name, op=_OPS[(m.isRegex, m.isEqual)], value=m.value)  # type: ignore[arg-type]


def from_matcher(text: str) -> dict[str, Any]:
    m = parse_matcher(text)
    return {
        "name": m.name,
        "value": m.value,
        "isRegex": m.op in ("=~", "!~"),
        "isEqual": m.op in ("=", "=~"),
    }


def _error(status: int, error: str, message: str, field: str = "") -> web.Response:
    body = _json.encode({"error": error, "field": field, "message": message})
    return web.Response(status=status, body=body, content_type="application/json")


def _ok(payload: Any) -> web.Response:
    return web.Response(body=_json.encode(payload), content_type="application/json")


def _flag(request: web.Request, name: str) -> bool:
    """Alertmanager's boolean query parameters default to true."""
    value = request.query.get(name, "true").lower()
    if value not in ("true", "false", "1", "0"):
        msg = f"{name} must be true or false"
        raise web.HTTPBadRequest(
            body=_json.encode({"error": "invalid_query", "field": name, "message": msg}),
            content_type="application/json",
        )
    return value in ("true", "1")


def _filters(request: web.Request) -> list[Matcher]:
    try:
        return parse_matchers(request.query.getall("filter", []))
    except MatcherError as err:
        raise web.HTTPBadRequest(
            body=_json.encode({"error": "invalid_query", "field": "filter", "message": str(err)}),
            content_type="application/json",
        ) from err


def _silence_state(s: Silence, now: float) -> str:
    if now < s.starts_at:
        return "pending"
    return "active" if now < s.ends_at else "expired"


def gettable_silence(s: Silence, now: float) -> dict[str, Any]:
    return {
        "id": s.id,
        "status": {"state": _silence_state(s, now)},
        "updatedAt": iso8601(s.starts_at),
        "matchers": [from_matcher(m) for m in s.matchers],
        "startsAt": iso8601(s.starts_at),
        "endsAt": iso8601(s.ends_at),
        "createdBy": s.created_by,
        "comment": s.comment,
    }


def gettable_alert(v: AlertView, receivers: list[str]) -> dict[str, Any]:
    muted = bool(v.silenced_by or v.inhibited_by)
    return {
        "labels": v.alert.labels,
        "annotations": v.alert.annotations,
        "startsAt": iso8601(v.alert.starts_at),
        "endsAt": iso8601(v.ends_at),
        "updatedAt": iso8601(v.last_seen),
        "generatorURL": v.alert.generator_url,
        "fingerprint": v.alert.fingerprint,
        "receivers": [{"name": r} for r in receivers],
        "status": {
            "state": "suppressed" if muted else "active",
            "silencedBy": v.silenced_by,
            "inhibitedBy": v.inhibited_by,
        },
    }


def _am_config(app: App) -> str:
    """An Alertmanager-shaped config naming the sinks as receivers: Grafana parses
    `config.original`; stormwatch's own config is not Alertmanager's."""
    names = [s.name for s in app.config.sinks] or ["stormwatch"]
    receivers = "".join(f"  - name: {n}\n" for n in names)
    return f"route:\n  receiver: {names[0]}\nreceivers:\n{receivers}"


def am_routes(app: App) -> list[web.RouteDef]:
    def receivers() -> list[str]:
        return [s.name for s in app.config.sinks]

    async def get_alerts(request: web.Request) -> web.Response:
        active, silenced = _flag(request, "active"), _flag(request, "silenced")
        inhibited, unprocessed = _flag(request, "inhibited"), _flag(request, "unprocessed")
        del unprocessed  # every alert is processed once it is accepted
        filters = _filters(request)
        out = []
        for v in app.alerts():
            if v.status != "firing" or not all(m.matches(v.alert.labels) for m in filters):
                continue
            if not active and not (v.silenced_by or v.inhibited_by):
                continue
            if (not silenced and v.silenced_by) or (not inhibited and v.inhibited_by):
                continue
            out.append(gettable_alert(v, receivers()))
        out.sort(key=lambda a: (a["startsAt"], a["fingerprint"]))
        return _ok(out)

    async def get_alert_groups(request: web.Request) -> web.Response:
        filters = _filters(request)
        firing = {
            v.alert.fingerprint: v
            for v in app.alerts()
            if v.status == "firing" and all(m.matches(v.alert.labels) for m in filters)
        }
        groups: list[dict[str, Any]] = []
        grouped: set[str] = set()
        for inc in app.incidents():
            if inc.status != "open":
                continue
            members = [firing[a.fingerprint] for a in inc.alerts if a.fingerprint in firing]
            if not members:
                continue
            grouped.update(v.alert.fingerprint for v in members)
            sinks = app.routed_sinks(inc) or receivers()
            groups.append(
                {
                    "labels": inc.group,
                    "receiver": {"name": sinks[0] if sinks else "stormwatch"},
                    "alerts": [gettable_alert(v, sinks) for v in members],
                }
            )
        rest = [v for fp, v in firing.items() if fp not in grouped]
        if rest:
            groups.append(
                {
                    "labels": {},
                    "receiver": {"name": "stormwatch"},
                    "alerts": [gettable_alert(v, receivers()) for v in rest],
                }
            )
        return _ok(groups)

    async def get_silences(request: web.Request) -> web.Response:
        filters, now = _filters(request), app.now()
        out = []
        for s in app.silences():
            own = parse_matchers(s.matchers)
            if all(
                any(o.name == f.name and f.matches({f.name: o.value}) for o in own) for f in filters
            ):
                out.append(gettable_silence(s, now))
        return _ok(out)

    async def get_silence(request: web.Request) -> web.Response:
        sid = request.match_info["id"]
        found = next((s for s in app.silences() if s.id == sid), None)
        if found is None:
            return _error(404, "not_found", f"no silence {sid}", "silenceID")
        return _ok(gettable_silence(found, app.now()))

    async def post_silence(request: web.Request) -> web.Response:
        try:
            spec = msgspec.json.decode(await request.read(), type=PostableSilence)
        except msgspec.ValidationError as err:
            message, field = split_validation_message(str(err))
            return _error(400, "invalid_payload", message, field)
        except msgspec.DecodeError as err:
            return _error(400, "invalid_json", str(err))
        if not spec.matchers:
            return _error(400, "invalid_payload", "at least one matcher is required", "$.matchers")
        texts = []
        for i, m in enumerate(spec.matchers):
            try:
                texts.append(str(to_matcher(m)))
            except MatcherError as err:
                return _error(400, "invalid_payload", str(err), f"$.matchers[{i}].value")
        if not spec.createdBy.strip():
            return _error(400, "invalid_payload", "createdBy is required", "$.createdBy")
        if not spec.comment.strip():
            return _error(400, "invalid_payload", "comment is required", "$.comment")
        now = app.now()
        starts, ends = max(spec.startsAt.timestamp(), now), spec.endsAt.timestamp()
        if ends <= now:
            return _error(400, "invalid_payload", "endsAt is in the past", "$.endsAt")
        # A receiver holds no silences to look in: it sends the update on.
        known = app.receiver is not None or any(s.id == spec.id for s in app.silences())
        if spec.id and not known:
            return _error(404, "not_found", f"no silence {spec.id} to update", "$.id")
        silence = await app.add_silence(
            SilenceRequest(
                matchers=texts,
                id=spec.id or str(uuid.uuid4()),
                starts_at=starts,
                ends_at=ends,
                created_by=spec.createdBy,
                comment=spec.comment,
            )
        )
        return _ok({"silenceID": silence.id})

    async def delete_silence(request: web.Request) -> web.Response:
        sid = request.match_info["id"]
        if not await app.expire_silence(sid):
            return _error(404, "not_found", f"no silence {sid}", "silenceID")
        return web.Response(status=200)

    async def status(_: web.Request) -> web.Response:
        return _ok(
            {
                "cluster": {"name": "", "status": "disabled", "peers": []},
                "versionInfo": {
                    "version": version(),
                    "revision": "",
                    "branch": "",
                    "buildUser": "",
                    "buildDate": "",
                    "goVersion": "none (stormwatch is Python)",
                },
                "config": {"original": _am_config(app)},
                "uptime": iso8601(app.started_at),
            }
        )

    async def get_receivers(_: web.Request) -> web.Response:
        return _ok([{"name": n} for n in receivers()])

    async def healthy(_: web.Request) -> web.Response:
        return web.Response(text="OK")

    async def ready(_: web.Request) -> web.Response:
        if app.ready:
            return web.Response(text="OK")
        return web.Response(status=503, text="Service Unavailable")

    return [
        web.get("/api/v2/alerts", get_alerts),
        web.get("/api/v2/alerts/groups", get_alert_groups),
        web.get("/api/v2/silences", get_silences),
        web.post("/api/v2/silences", post_silence),
        web.get("/api/v2/silence/{id}", get_silence),
        web.delete("/api/v2/silence/{id}", delete_silence),
        web.get("/api/v2/status", status),
        web.get("/api/v2/receivers", get_receivers),
        web.get("/-/healthy", healthy),
        web.get("/-/ready", ready),
    ]
