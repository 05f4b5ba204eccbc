"""PagerDuty's Events API v2 as its documentation describes it.

- `POST /v2/enqueue`: 202 `{"status": "success", "message": "Event processed",
  "dedup_key": ...}`; 400 `{"status": "invalid event", "message": "Event object is
  invalid", "errors": [...]}` for a bad body; 429 when rate limited (scriptable).
- Dedup: a trigger with the `dedup_key` of an open alert updates it; acknowledge or
  resolve for an unknown or resolved key is dropped; a trigger after a resolve opens a
  new alert. `alerts_created` counts what a responder would have been paged for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

_ACTIONS = {"trigger", "acknowledge", "resolve"}
_SEVERITIES = {"critical", "error", "warning", "info"}


@dataclass
class FakePagerDuty:
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    """(status, headers) answered before any real processing, in order (429, 500...)."""
    requests: list[dict[str, Any]] = field(default_factory=list)
    alerts: dict[str, str] = field(default_factory=dict)
    """dedup_key -> triggered | acknowledged | resolved."""
    alerts_created: int = 0
    url: str = ""

    def _errors(self, body: Any) -> list[str]:
        if not isinstance(body, dict):
            return ["Event object must be a JSON object"]
        errors = []
        if not isinstance(body.get("routing_key"), str) or len(body["routing_key"]) != 32:
            errors.append("'routing_key' must be a 32 character integration key")
        if body.get("event_action") not in _ACTIONS:
            errors.append(
                "'event_action' is invalid (must be one of: trigger, acknowledge, resolve)"
            )
        key = body.get("dedup_key")
        if key is not None and (not isinstance(key, str) or len(key) > 255):
            errors.append("'dedup_key' must be a string of at most 255 characters")
        if body.get("event_action") == "trigger":
            payload = body.get("payload")
            if not isinstance(payload, dict):
                errors.append("'payload' is missing or invalid")
            else:
                if not payload.get("summary") or len(payload["summary"]) > 1024:
                    errors.append("'payload.summary' is missing or longer than 1024 characters")
                if not payload.get("source"):
                    errors.append("'payload.source' is missing")
                if payload.get("severity") not in _SEVERITIES:
                    errors.append("'payload.severity' is invalid")
        return errors

    async def enqueue(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        self.requests.append(body)
        if self.script:
            status, headers = self.script.pop(0)
            return web.json_response(
                {
                    "status": "throttle event",
                    "message": "Requests for this service are arriving too quickly",
                },
                status=status,
                headers=headers,
            )
        errors = self._errors(body)
        if errors:
            return web.json_response(
                {"status": "invalid event", "message": "Event object is invalid", "errors": errors},
                status=400,
            )
        key, action = body["dedup_key"], body["event_action"]
        state = self.alerts.get(key)
        if action == "trigger" and state in (None, "resolved"):
            self.alerts[key] = "triggered"
            self.alerts_created += 1
        elif action == "acknowledge" and state == "triggered":
            self.alerts[key] = "acknowledged"
        elif action == "resolve" and state in ("triggered", "acknowledged"):
            self.alerts[key] = "resolved"
        return web.json_response(
            {"status": "success", "message": "Event processed", "dedup_key": key}, status=202
        )

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v2/enqueue", self.enqueue)
        return app
