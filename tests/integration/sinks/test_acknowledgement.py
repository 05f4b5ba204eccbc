"""Acknowledgement both ways, through a whole App over real HTTP: from the API to the
sinks, and from a vendor's webhook to the incident (and not back to that vendor)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from stormwatch.app import App
from stormwatch.config import load_config
from tests.conftest import pick_free_port
from tests.fakes.faults import serve
from tests.fakes.jira import FakeJira
from tests.fakes.opsgenie import FakeOpsgenie
from tests.fakes.pagerduty import FakePagerDuty, webhook
from tests.integration.sinks.test_delivery_in_app import BURST, alerts, until

PD_KEY = "R0123456789ABCDEF0123456789ABCDE"
SECRET = "pd-webhook-secret"


@dataclass
class World:
    app: App
    session: aiohttp.ClientSession
    pd: FakePagerDuty
    og: FakeOpsgenie
    jira: FakeJira

    async def call(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        url = f"http://{self.app.config.listen}{path}"
        async with self.session.request(
            method, url, data=body, headers=headers or {"Content-Type": "application/json"}
        ) as r:
            text = await r.text()
            return r.status, json.loads(text) if text else None

    def sample(self, name: str, **labels: str) -> float:
        return self.app.metrics.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    pd, og, jira = FakePagerDuty(), FakeOpsgenie(), FakeJira()
    async with serve(pd.app()) as pd_url, serve(og.app()) as og_url, serve(jira.app()) as jira_url:
        rules = tmp_path / "rules.yaml"
        rules.write_text(BURST)
        cfg = tmp_path / "stormwatch.yaml"
        cfg.write_text(
            f"listen: 127.0.0.1:{pick_free_port()}\nrules: [{rules}]\ntick_interval: 50ms\n"
            f"sinks:\n  - {{type: file, name: jsonl, path: {tmp_path / 'incidents.jsonl'}}}\n"
            f"  - {{type: pagerduty, name: oncall, routing_key: {PD_KEY}, url: '{pd_url}/v2/enqueue',"
            f" webhook_secret: {SECRET}}}\n"
            f"  - {{type: opsgenie, name: og, api_key: k-123, url: '{og_url}', request_poll_interval: 20ms,"
            " webhook_token: og-token}\n"
            f"  - {{type: jira, name: tickets, url: '{jira_url}', project: OPS, user: bot@example.com,"
            " token: tok, webhook_token: jira-token}\n"
        )
        async with App(load_config(cfg, env={})) as app, aiohttp.ClientSession() as session:
            yield World(app, session, pd, og, jira)


async def opened(w: World) -> str:
    assert (await w.call("POST", "/api/v2/alerts", alerts("checkout")))[0] == 200
    await until(lambda: w.jira.creates == 1 and w.og.created == 1 and w.pd.alerts_created == 1)
    (inc,) = w.app.incidents()
    return inc.key


async def test_an_acknowledgement_in_stormwatch_reaches_the_sinks(world: World) -> None:
    key = await opened(world)
    status, body = await world.call(
        "POST", f"/api/v1/incidents/{key}/ack", b'{"by": "ada", "comment": "on it"}'
    )
    assert status == 200 and body["acknowledged_by"] == "ada" and body["acknowledged_at"]
    assert body["timeline"][-1]["event"] == "acknowledged"
    await until(lambda: world.pd.state(key) == "acknowledged")
    await until(lambda: (a := world.og.alert(key)) is not None and a["acknowledged"])
    await until(
        lambda: any(
            "Acknowledged in stormwatch by ada" in c["body"]
            for c in world.jira.labelled(f"stormwatch-{key}")[0]["comments"]
        )
    )
    assert world.sample("stormwatch_incident_time_to_acknowledge_seconds_count", severity="P4") == 1
    again = await world.call("POST", f"/api/v1/incidents/{key}/ack", b'{"by": "bob"}')
    assert again[0] == 200 and again[1]["acknowledged_by"] == "ada"  # the first one stands
    assert world.sample("stormwatch_incident_time_to_acknowledge_seconds_count", severity="P4") == 1


async def test_an_acknowledgement_at_pagerduty_shows_on_the_incident_and_is_not_echoed(
    world: World,
) -> None:
    key = await opened(world)
    body, headers = webhook("incident.acknowledged", key, SECRET, agent="Ada Oncall")
    status, answer = await world.call("POST", "/api/v1/sinks/oncall/webhook", body, headers)
    assert status == 200 and answer == {"sink": "oncall", "acknowledged": 1, "received": 1}
    (inc,) = world.app.incidents()
    assert inc.acknowledged_by == "Ada Oncall" and inc.timeline[-1].event == "acknowledged"
    assert world.sample("stormwatch_incident_time_to_acknowledge_seconds_count", severity="P4") == 1
    await until(
        lambda: (a := world.og.alert(key)) is not None and a["acknowledged"]
    )  # the others are told
    assert [r["event_action"] for r in world.pd.requests] == ["trigger"]  # PagerDuty is not


async def test_webhooks_are_authenticated(world: World) -> None:
    key = await opened(world)
    body, headers = webhook("incident.acknowledged", key, "not-the-secret")
    status, answer = await world.call("POST", "/api/v1/sinks/oncall/webhook", body, headers)
    assert status == 401 and answer["error"] == "unauthorized"
    og_body = json.dumps(
        {"action": "Acknowledge", "alert": {"alias": key, "username": "ada"}}
    ).encode()
    assert (await world.call("POST", "/api/v1/sinks/og/webhook", og_body))[0] == 401
    assert (
        await world.call(
            "POST", "/api/v1/sinks/og/webhook", og_body, {"Authorization": "Bearer og-token"}
        )
    )[0] == 200
    (inc,) = world.app.incidents()
    assert inc.acknowledged_by == "ada"
    assert (await world.call("POST", "/api/v1/sinks/jsonl/webhook", b"{}"))[0] == 404
    assert (await world.call("POST", "/api/v1/sinks/nope/webhook", b"{}"))[0] == 404


async def test_a_jira_move_to_in_progress_acknowledges(world: World) -> None:
    key = await opened(world)
    payload = {
        "webhookEvent": "jira:issue_updated",
        "user": {"displayName": "Ada Lovelace"},
        "issue": {
            "key": "OPS-1",
            "fields": {
                "labels": [f"stormwatch-{key}"],
                "status": {"statusCategory": {"key": "indeterminate"}},
            },
        },
        "changelog": {"items": [{"field": "status", "toString": "In Progress"}]},
    }
    status, answer = await world.call(
        "POST", "/api/v1/sinks/tickets/webhook?token=jira-token", json.dumps(payload).encode()
    )
    assert status == 200 and answer["acknowledged"] == 1
    assert world.app.incidents()[0].acknowledged_by == "Ada Lovelace"


async def test_the_ack_api_names_what_is_wrong(world: World) -> None:
    key = await opened(world)
    status, body = await world.call("POST", f"/api/v1/incidents/{key}/ack", b'{"by": ""}')
    assert status == 400 and body["field"] == "$.by"
    status, body = await world.call("POST", f"/api/v1/incidents/{key}/ack", b'{"who": "ada"}')
    assert status == 400 and body["error"] == "invalid_payload"
    status, body = await world.call("POST", "/api/v1/incidents/inc-nope/ack", b'{"by": "ada"}')
    assert status == 404 and body["field"] == "key"
    status, sinks = await world.call("GET", "/api/v1/sinks")
    assert status == 200 and {s["sink"]: s["breaker"] for s in sinks} == {
        "jsonl": "closed",
        "oncall": "closed",
        "og": "closed",
        "tickets": "closed",
    }
    assert {s["sink"]: s["type"] for s in sinks}["tickets"] == "jira"


async def test_a_resolved_incident_cannot_be_acknowledged(world: World) -> None:
    key = await opened(world)
    resolved = json.dumps(
        [
            {
                "labels": {"alertname": "Down", "service": "checkout", "severity": "warning"},
                "endsAt": "2020-01-01T00:00:00Z",
            }
        ]
    ).encode()
    assert (await world.call("POST", "/api/v2/alerts", resolved))[0] == 200
    await until(lambda: world.app.incidents()[0].status == "resolved")
    status, body = await world.call("POST", f"/api/v1/incidents/{key}/ack", b'{"by": "ada"}')
    assert status == 409 and body["error"] == "conflict" and body["field"] == "key"


async def test_an_incidents_deliveries_show_where_it_stands_at_each_sink(world: World) -> None:
    key = await opened(world)
    await until(lambda: all(d.backlog == 0 for d in world.app.delivery.drains.values()))
    status, rows = await world.call("GET", f"/api/v1/incidents/{key}/deliveries")
    assert status == 200
    by_sink = {r["sink"]: r for r in rows}
    assert by_sink["tickets"]["remote_id"] == "OPS-1" and by_sink["tickets"]["state"] == "open"
    assert by_sink["og"]["remote_id"] == key and by_sink["oncall"]["state"] == "open"
    assert {r["sequence"] for r in rows} == {1} and all(r["waiting"] == [] for r in rows)
    assert (await world.call("GET", "/api/v1/incidents/inc-nope/deliveries"))[0] == 404
