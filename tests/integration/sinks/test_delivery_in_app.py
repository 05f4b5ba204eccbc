"""Delivery inside a whole App, over real HTTP: backpressure instead of dead letters, and
routes that an incident enters late (escalation) or leaves (de-escalation)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from stormwatch.app import App
from stormwatch.config import load_config
from tests.conftest import pick_free_port
from tests.fakes.faults import serve
from tests.fakes.jira import FakeJira
from tests.fakes.webhook import FakeWebhook, Reply, serve_fake

BURST = """\
- name: burst
  correlation: {type: event_count, group-by: [service], timespan: 10m, condition: {gte: 1}}
  incident: {title: "{service} burst", severity: P4}
  classify:
    - when: {alert_severity: [critical]}
      severity: P1
      impact: 1
      urgency: 1
"""


def alerts(*services: str, severity: str = "warning", name: str = "Down") -> bytes:
    return json.dumps(
        [{"labels": {"alertname": name, "service": s, "severity": severity}} for s in services]
    ).encode()


async def until(predicate: Callable[[], Any], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def config(tmp_path: Path, body: str) -> Any:
    rules = tmp_path / "rules.yaml"
    rules.write_text(BURST)
    cfg = tmp_path / "stormwatch.yaml"
    cfg.write_text(
        f"listen: 127.0.0.1:{pick_free_port()}\nrules: [{rules}]\ntick_interval: 50ms\n"
        "correlate: {update_interval: 0s, duplicates_interval: 0s}\n" + body
    )
    return load_config(cfg, env={})


async def post(
    session: aiohttp.ClientSession, app: App, body: bytes
) -> tuple[int, dict[str, str], Any]:
    async with session.post(
        f"http://{app.config.listen}/api/v2/alerts",
        data=body,
        headers={"Content-Type": "application/json"},
    ) as r:
        text = await r.text()
        return r.status, dict(r.headers), json.loads(text) if text else None


async def test_a_full_outbox_pushes_back_and_loses_nothing(tmp_path: Path) -> None:
    async with serve_fake(FakeWebhook(default=Reply(503))) as fake:
        cfg = config(
            tmp_path,
            f"outbox: {{capacity: 2, retry_after: 7s}}\n"
            f"sinks:\n  - {{type: file, name: jsonl, path: {tmp_path / 'incidents.jsonl'}}}\n"
            f"  - {{type: webhook, name: hook, url: '{fake.url}',"
            " retry: {initial_backoff: 10ms, max_backoff: 50ms}, breaker: {failures: 0}}\n",
        )
        async with App(cfg) as app, aiohttp.ClientSession() as session:
            # One batch with five new incidents: taken in whole, over the capacity of 2.
            status, _, _ = await post(session, app, alerts(*[f"s{i}" for i in range(5)]))
            assert status == 200
            drain = app.delivery.drains["hook"]
            await until(lambda: drain.pending == 5)
            status, headers, body = await post(session, app, alerts("s9"))
            assert status == 429 and headers["Retry-After"] == "7"
            assert (
                body["error"] == "overloaded" and "outbox of sink 'hook' is full" in body["message"]
            )
            fake.default = Reply(202)  # the receiver is back
            await until(
                lambda: len({r.body["incident"]["key"] for r in fake.requests if r.body}) == 5
            )
            await until(lambda: drain.backlog == 0)
            assert (await post(session, app, alerts("s9")))[0] == 200
            await until(
                lambda: len({r.body["incident"]["key"] for r in fake.requests if r.body}) == 6
            )
            for sink in ("jsonl", "hook"):
                assert await app.outbox.dead_letters(sink) == []
            sample = app.metrics.registry.get_sample_value
            assert (
                sample("stormwatch_sink_requests_total", {"sink": "hook", "outcome": "retryable"})
                >= 5
            )
            assert (
                sample(
                    "stormwatch_alerts_rejected_total",
                    {"source": "alertmanager", "reason": "overloaded"},
                )
                == 1
            )


async def test_an_escalated_incident_opens_its_ticket_when_the_route_starts_matching(
    tmp_path: Path,
) -> None:
    jira = FakeJira()
    async with serve(jira.app()) as url:
        jira.url = url
        cfg = config(
            tmp_path,
            f"external_url: https://sw.example\n"
            f"sinks:\n  - {{type: file, name: jsonl, path: {tmp_path / 'incidents.jsonl'}}}\n"
            f"  - {{type: jira, name: tickets, url: '{url}', project: OPS, user: bot@example.com, token: tok}}\n"
            "route:\n  sink: [jsonl]\n  routes:\n"
            "    - {match: ['severity=\"P1\"'], sink: [tickets], continue: true}\n"
            "    - {match: ['rule=~\".+\"'], sink: [jsonl]}\n",
        )
        async with App(cfg) as app, aiohttp.ClientSession() as session:
            assert (await post(session, app, alerts("checkout")))[0] == 200  # P4: no ticket
            jsonl = tmp_path / "incidents.jsonl"
            await until(lambda: jsonl.exists() and '"opened"' in jsonl.read_text())
            # Routed in the same commit as the file's line: nothing went the tickets' way.
            assert app.delivery.drains["tickets"].backlog == 0 and jira.faults.calls == {}
            assert (
                await post(session, app, alerts("checkout", severity="critical", name="Crash"))
            )[0] == 200
            await until(lambda: jira.creates == 1)
            (inc,) = app.incidents()
            (issue,) = jira.labelled(f"stormwatch-{inc.key}")
            assert issue["fields"]["priority"] == {"name": "Highest"}
            assert issue["fields"]["summary"].startswith("[P1] checkout burst")
            assert f"https://sw.example/incidents/{inc.key}" in issue["fields"]["description"]
            # It resolves: the ticket closes, once.
            resolved = json.dumps(
                [
                    {
                        "labels": {"alertname": n, "service": "checkout", "severity": s},
                        "endsAt": "2020-01-01T00:00:00Z",
                    }
                    for n, s in (("Down", "warning"), ("Crash", "critical"))
                ]
            ).encode()
            assert (await post(session, app, resolved))[0] == 200
            await until(lambda: issue["status"] == "Done")
            assert jira.creates == 1


async def test_dead_letters_keep_the_vendors_error_and_replay_once_the_config_is_fixed(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    jira = FakeJira()
    async with serve(jira.app()) as url:

        def with_token(token: str) -> Any:
            return config(
                tmp_path,
                f"state: {{backend: redis, url: '{redis_url}', key_prefix: '{redis_prefix}'}}\n"
                f"sinks:\n  - {{type: file, name: jsonl, path: {tmp_path / 'incidents.jsonl'}}}\n"
                f"  - {{type: jira, name: tickets, url: '{url}', project: OPS, user: bot@example.com, token: {token}}}\n",
            )

        resolved = json.dumps(
            [
                {
                    "labels": {"alertname": "Down", "service": "checkout", "severity": "warning"},
                    "endsAt": "2020-01-01T00:00:00Z",
                }
            ]
        ).encode()
        async with App(with_token("wrong")) as app, aiohttp.ClientSession() as session:
            assert (await post(session, app, alerts("checkout")))[0] == 200
            await until(lambda: app.delivery.drains["tickets"].pending == 0 and app.incidents())
            assert (await post(session, app, resolved))[0] == 200
            await until(lambda: app.incidents()[0].status == "resolved")

            async def letters() -> list[Any]:
                return await app.outbox.dead_letters("tickets")

            for _ in range(250):
                if len(await letters()) == 2:
                    break
                await asyncio.sleep(0.02)
            dead = await letters()
            assert [(d.reason, d.entry.event.event) for d in dead] == [
                ("permanent", "opened"),
                ("permanent", "resolved"),
            ]
            assert "You are not authenticated" in dead[0].error
        async with (
            App(with_token("tok")) as app,
            aiohttp.ClientSession() as session,
        ):  # fixed, restarted
            async with session.post(
                f"http://{app.config.listen}/api/v1/deadletters/tickets/replay"
            ) as r:
                assert r.status == 200 and (await r.json())["replayed"] == 2
            await until(lambda: jira.creates == 1 and jira.issues["OPS-1"]["status"] == "Done")
            await until(lambda: app.delivery.drains["tickets"].pending == 0)
            assert await app.outbox.dead_letters("tickets") == []
            async with session.post(
                f"http://{app.config.listen}/api/v1/deadletters/tickets/replay"
            ) as r:
                assert (await r.json())["replayed"] == 0
            assert jira.creates == 1


async def test_a_ticket_still_closes_when_its_incident_left_the_route_before_a_restart(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    """The P1 route opened a ticket; the rules changed (the incident is P4 now) and the
    daemon restarted, forgetting who follows what: the sink's record still says it has
    the incident, so the resolution reaches it."""
    jira = FakeJira()
    async with serve(jira.app()) as url:
        body = (
            f"state: {{backend: redis, url: '{redis_url}', key_prefix: '{redis_prefix}'}}\n"
            f"sinks:\n  - {{type: file, name: jsonl, path: {tmp_path / 'incidents.jsonl'}}}\n"
            f"  - {{type: jira, name: tickets, url: '{url}', project: OPS, user: bot@example.com, token: tok}}\n"
            "route:\n  sink: [jsonl]\n  routes:\n"
            "    - {match: ['severity=\"P1\"'], sink: [tickets], continue: true}\n"
            "    - {match: ['rule=~\".+\"'], sink: [jsonl]}\n"
        )
        async with App(config(tmp_path, body)) as app, aiohttp.ClientSession() as session:
            assert (await post(session, app, alerts("checkout", severity="critical")))[0] == 200
            await until(lambda: jira.creates == 1)
            await until(lambda: app.delivery.drains["tickets"].backlog == 0)
        cfg = config(tmp_path, body)
        (tmp_path / "rules.yaml").write_text(BURST.split("  classify:")[0])  # no P1 any more
        async with App(cfg) as app, aiohttp.ClientSession() as session:
            assert app.incidents()[0].severity == "P4"
            resolved = json.dumps(
                [
                    {
                        "labels": {
                            "alertname": "Down",
                            "service": "checkout",
                            "severity": "critical",
                        },
                        "endsAt": "2020-01-01T00:00:00Z",
                    }
                ]
            ).encode()
            assert (await post(session, app, resolved))[0] == 200
            await until(lambda: jira.issues["OPS-1"]["status"] == "Done")
