"""PagerDuty's Events API v2 as its documentation describes it, plus v3 webhook signing.

- `POST /v2/enqueue`: 202 `{"status": "success", "message": "Event processed",
  "dedup_key": ...}`; 400 `{"status": "invalid event", "message": "Event object is
  invalid", "errors": [...]}` for a bad body; 429 `{"status": "throttle event", ...}`
  when rate limited (scriptable, and what an outage answers here, with Retry-After).
- Dedup: a trigger with the `dedup_key` of an open alert is folded into it (its summary
  and severity become the latest trigger's); acknowledge or resolve for an unknown or
  resolved key is dropped; a trigger after a resolve opens a new alert. `alerts` keeps
  every alert ever opened per key, so a twin shows as a second one.
- `webhook(...)`: a v3 webhook body and its `X-PagerDuty-Signature` (HMAC-SHA256 `v1=`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.faults import Faults

_ACTIONS = {"trigger", "acknowledge", "resolve"}
_SEVERITIES = {"critical", "error", "warning", "info"}


@dataclass
class FakePagerDuty:
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    """(status, headers) answered before any real processing, in order (429, 500...)."""
    faults: Faults = field(default_factory=Faults)
    outage_retry_after: str = "1"
    requests: list[dict[str, Any]] = field(default_factory=list)
    alerts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """dedup_key -> every alert opened under it: {status, summary, severity, payload}."""
    url: str = ""

    @property
    def alerts_created(self) -> int:
        return sum(len(v) for v in self.alerts.values())

    def state(self, key: str) -> str | None:
        found = self.alerts.get(key)
        return found[-1]["status"] if found else None

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

    def _throttle(self, status: int, headers: dict[str, str]) -> web.Response:
        body = {
            "status": "throttle event",
            "message": "Requests for this service are arriving too quickly",
        }
        if status >= 500:
            body = {"status": "error", "message": "Internal Server Error"}
        return web.json_response(body, status=status, headers=headers)

    async def enqueue(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            body = None
        action = body.get("event_action", "?") if isinstance(body, dict) else "?"
        if self.faults.outage(action):
            return self._throttle(429, {"Retry-After": self.outage_retry_after})
        self.requests.append(body)
        if self.script:
            return self._throttle(*self.script.pop(0))
        errors = self._errors(body)
        if errors:
            return web.json_response(
                {"status": "invalid event", "message": "Event object is invalid", "errors": errors},
                status=400,
            )
        key = body["dedup_key"]
        history = self.alerts.setdefault(key, [])
        current = history[-1] if history else None
        state = current["status"] if current else None
        if action == "trigger":
            p = body["payload"]
            if state in (None, "resolved"):
                current = {"status": "triggered", "events": 0}
                history.append(current)
            current.update(
                summary=p["summary"],
                severity=p["severity"],
                payload=p,
                events=current["events"] + 1,
            )
        elif action == "acknowledge" and state == "triggered":
            current["status"] = "acknowledged"  # type: ignore[index]
        elif action == "resolve" and state in ("triggered", "acknowledged"):
            current["status"] = "resolved"  # type: ignore[index]
        if not history:
            del self.alerts[key]
        answer = web.json_response(
            {"status": "success", "message": "Event processed", "dedup_key": key}, status=202
        )
        return await self.faults.answer(request, action, answer)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v2/enqueue", self.enqueue)
        return app


def webhook(
    event_type: str, incident_key: str, secret: str, agent: str = "Ada Oncall"
) -> tuple[bytes, dict[str, str]]:
    """A v3 webhook as PagerDuty sends it: one event, signed with the subscription's secret."""
    body = json.dumps(
        {
            "event": {
                "id": "5ac64822-4adc-4fda-ade0-410becf0de4f",
                "event_type": event_type,
                "resource_type": "incident",
                "occurred_at": "2026-08-20T10:05:22.169Z",
                "agent": {
                    "html_url": "https://acme.pagerduty.com/users/PLH1HKV",
                    "id": "PLH1HKV",
                    "self": "https://api.pagerduty.com/users/PLH1HKV",
                    "summary": agent,
                    "type": "user_reference",
                },
                "client": {"name": "PagerDuty"},
                "data": {
                    "id": "PGR0VU2",
                    "type": "incident",
                    "self": "https://api.pagerduty.com/incidents/PGR0VU2",
                    "html_url": "https://acme.pagerduty.com/incidents/PGR0VU2",
                    "number": 2,
                    "status": event_type.removeprefix("incident."),
                    "incident_key": incident_key,
                    "title": "[P2] checkout: 5 alerts",
                    "urgency": "high",
                },
            }
        }
    ).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    # Two signatures, as during a secret rotation: one of them must match.
    return body, {
        "Content-Type": "application/json",
        "X-PagerDuty-Signature": f"v1={'0' * 64},v1={signature}",
    }
