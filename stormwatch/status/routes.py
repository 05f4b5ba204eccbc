"""The status page's routes. Reads go through the App's read functions; the forms post
plain `application/x-www-form-urlencoded` bodies and answer with a redirect (303), so a
reload never re-submits."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

import aiohttp
import msgspec
from aiohttp import web

from rules import MatcherError, parse_matchers
from stormwatch.silences import SilenceRequest
from stormwatch.status import pages
from stormwatch.status.html import esc, page
from stormwatch.views import deliveries, intake_by_source, rules_status, sink_health
from stormwatch.wire import parse_duration

if TYPE_CHECKING:
    from stormwatch.app import App

__all__ = ["status_routes"]


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


def _same_origin(request: web.Request) -> bool:
    """A form post must come from this page: a browser names the page's origin, and a
    page elsewhere must not create silences here."""
    origin = request.headers.get("Origin") or request.headers.get("Referer")
    if not origin or origin == "null":
        return True  # not a browser (curl, a test client): nothing to forge
    return urlsplit(origin).netloc == request.host


def status_routes(app: App) -> list[web.RouteDef]:
    async def overview(_: web.Request) -> web.Response:
        if app.receiver is not None:
            # An empty list here would read as "nothing is wrong" at 3 a.m.
            return _html(
                page(
                    "receiver",
                    "<h1>This process is a receiver</h1><p>It takes alerts in and writes them "
                    "to the topic. Incidents, alerts and silences are held by the correlators: "
                    "open a correlator's status page. Silences made here reach them.</p>",
                )
            )
        incidents = app.incidents()
        routed = {i.key: app.routed_sinks(i) for i in incidents}
        shown = await deliveries(app, [i.key for i in incidents])
        return _html(pages.overview_page(incidents, app.now(), routed, shown))

    async def incident(request: web.Request) -> web.Response:
        key = request.match_info["key"]
        found = app.incident(key)
        if found is None:
            body = page(
                "not found",
                f"<h1>No incident {esc(key)}</h1><p>Resolved incidents are kept for <code>correlate.retention</code>.</p>",
            )
            return _html(body, 404)
        return _html(
            pages.incident_page(
                found,
                app.explain(key),
                app.now(),
                app.routed_sinks(found),
                await deliveries(app, [found.key]),
                notice=request.query.get("notice", ""),
            )
        )

    async def silences(request: web.Request) -> web.Response:
        notice = request.query.get("notice", "")
        return _html(pages.silences_page(app.silences(), app.now(), [], {}, notice))

    async def create_silence(request: web.Request) -> web.Response:
        if not _same_origin(request):
            return _html(page("refused", "<h1>Refused: the form came from another site</h1>"), 403)
        form = {k: str(v) for k, v in (await request.post()).items()}
        lines = [m.strip() for m in form.get("matchers", "").splitlines() if m.strip()]
        errors = []
        try:
            parse_matchers(lines)
        except MatcherError as err:
            errors.append(f"matchers: {err}")
        if not lines:
            errors.append('matchers: give at least one, e.g. service="checkout"')
        try:
            duration = parse_duration(form.get("duration", ""))
        except ValueError as err:
            errors.append(f"duration: {err}")
        for field in ("created_by", "comment"):
            if not form.get(field, "").strip():
                errors.append(f"{field.replace('_', ' ')}: required")
        if errors:
            return _html(pages.silences_page(app.silences(), app.now(), errors, form), 400)
        try:
            silence = await app.add_silence(
                SilenceRequest(
                    matchers=lines,
                    duration=duration,
                    created_by=form["created_by"].strip(),
                    comment=form["comment"].strip(),
                )
            )
        except (msgspec.ValidationError, MatcherError) as err:
            return _html(pages.silences_page(app.silences(), app.now(), [str(err)], form), 400)
        raise web.HTTPSeeOther(f"/status/silences?notice={quote(f'created silence {silence.id}')}")

    async def expire_silence(request: web.Request) -> web.Response:
        if not _same_origin(request):
            return _html(page("refused", "<h1>Refused: the form came from another site</h1>"), 403)
        sid = request.match_info["id"]
        done = await app.expire_silence(sid)
        notice = f"expired silence {sid}" if done else f"no silence {sid} (already expired?)"
        raise web.HTTPSeeOther(f"/status/silences?notice={quote(notice)}")

    async def ack(request: web.Request) -> web.Response:
        """The button posts here; the acknowledgement itself is the API's
        `POST /api/v1/incidents/{key}/ack`, asked over loopback so there is one way in."""
        if not _same_origin(request):
            return _html(page("refused", "<h1>Refused: the form came from another site</h1>"), 403)
        key = request.match_info["key"]
        form = await request.post()
        body = {"by": str(form.get("by", "")), "comment": str(form.get("comment", ""))}
        host, port = app.config.host_port
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/api/v1/incidents/{quote(key, safe='')}/ack"
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s,
                s.post(url, json=body) as resp,
            ):
                status, text = resp.status, await resp.text()
        except (aiohttp.ClientError, TimeoutError) as err:
            status, text = 0, str(err)
        if status == 404 and "no such incident" not in text:
            notice = "this daemon has no acknowledgements yet (POST /api/v1/incidents/{key}/ack answered 404)"
        elif status == 202:  # partitioned: sent to the shard holding the incident
            notice = f"acknowledgement by {body['by']} sent; it shows here once its shard has it"
        elif 200 <= status < 300:
            notice = f"acknowledged by {body['by']}"
        else:
            notice = f"acknowledging failed ({status}): {text[:200]}"
        raise web.HTTPSeeOther(f"/status/incidents/{quote(key, safe='')}?notice={quote(notice)}")

    async def health(_: web.Request) -> web.Response:
        return _html(
            pages.health_page(
                intake_by_source(app.metrics.registry), await sink_health(app), app.now()
            )
        )

    async def rules(_: web.Request) -> web.Response:
        return _html(pages.rules_page(rules_status(app)))

    return [
        web.get("/", overview),
        web.get("/status/incidents/{key}", incident),
        web.post("/status/incidents/{key}/ack", ack),
        web.get("/status/silences", silences),
        web.post("/status/silences", create_silence),
        web.post("/status/silences/{id}/expire", expire_silence),
        web.get("/status/health", health),
        web.get("/status/rules", rules),
    ]
