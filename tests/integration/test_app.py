"""The daemon in-process: reload, explain, silences and backpressure through real HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from stormwatch.app import App
from stormwatch.config import Config, load_config
from stormwatch.wire import Duration
from tests.conftest import pick_free_port

RULES = """\
- name: burst
  match: ['kind="burst"']
  correlation: {type: event_count, group-by: [service], timespan: 10m, condition: {gte: THRESHOLD}}
  incident: {title: "{service} burst", severity: P1}
- name: steady
  match: ['kind="steady"']
  correlation: {type: event_count, group-by: [service], timespan: 10m, condition: {gte: 3}}
  incident: {title: "{service} steady", severity: P1}
"""


def alerts(kind: str, *names: str, service: str = "s") -> bytes:
    return json.dumps(
        [{"labels": {"alertname": n, "kind": kind, "service": service}} for n in names]
    ).encode()


class Client:
    def __init__(self, app: App, session: aiohttp.ClientSession) -> None:
        self.app, self.session = app, session
        self.base = f"http://{app.config.listen}"

    async def post(self, path: str, body: bytes = b"") -> tuple[int, Any]:
        async with self.session.post(
            self.base + path, data=body, headers={"Content-Type": "application/json"}
        ) as r:
            text = await r.text()
            return r.status, json.loads(text) if text else None

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.session.get(self.base + path) as r:
            return r.status, await r.json()

    def jsonl(self) -> list[dict[str, Any]]:
        path = Path(self.app.config.sinks[0].path)  # type: ignore[union-attr]
        return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []

    async def opened(self, n: int) -> list[dict[str, Any]]:
        for _ in range(200):
            events = [e for e in self.jsonl() if e["event"] == "opened"]
            if len(events) >= n:
                return events
            await asyncio.sleep(0.02)
        return [e for e in self.jsonl() if e["event"] == "opened"]


def app_config(tmp_path: Path, threshold: int = 3) -> Config:
    """The embedded config on a free port, with RULES at `threshold` in tmp_path."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.replace("THRESHOLD", str(threshold)))
    return load_config(
        None,
        env={},
        listen=f"127.0.0.1:{pick_free_port()}",
        rules=[str(rules)],
        incidents_jsonl=str(tmp_path / "incidents.jsonl"),
    )


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    config = app_config(tmp_path, threshold=3)
    app = App(config)
    async with app, aiohttp.ClientSession() as session:
        yield Client(app, session)


async def test_reload_with_a_broken_file_keeps_the_old_rules(client: Client) -> None:
    rules = Path(client.app.rule_paths[0])
    good = rules.read_text()
    rules.write_text(good + "- name: broken\n  correlation: {type: event_count, timespan: 5x}\n")
    status, body = await client.post("/-/reload")
    assert status == 400
    assert "rule broken: correlation.timespan: invalid duration '5x'" in body["message"]
    sample = client.app.metrics.registry.get_sample_value
    assert sample("stormwatch_rules_last_reload_successful") == 0
    assert sample("stormwatch_rules_reloads_total", {"outcome": "failed"}) == 1
    # The old rules still work.
    assert (await client.post("/api/v2/alerts", alerts("burst", "a", "b", "c")))[0] == 200
    assert [e["incident"]["rule"] for e in await client.opened(1)] == ["burst"]


async def test_changed_threshold_applies_and_other_rules_keep_their_windows(client: Client) -> None:
    await client.post("/api/v2/alerts", alerts("steady", "x1", "x2"))  # steady's window: 2 of 3
    await client.post("/api/v2/alerts", alerts("burst", "b1", "b2"))  # burst's window: 2 of 3
    rules = Path(client.app.rule_paths[0])
    rules.write_text(RULES.replace("THRESHOLD", "5"))
    assert (await client.post("/-/reload"))[0] == 200
    assert (
        client.app.metrics.registry.get_sample_value("stormwatch_rules_last_reload_successful") == 1
    )
    await client.post("/api/v2/alerts", alerts("steady", "x3"))  # completes steady's kept window
    await client.post("/api/v2/alerts", alerts("burst", "b3", "b4"))  # burst restarted: 2 of 5
    opened = await client.opened(1)
    await asyncio.sleep(0.1)
    assert [e["incident"]["rule"] for e in client.jsonl() if e["event"] == "opened"] == ["steady"]
    assert opened[0]["incident"]["alert_count"] == 3
    await client.post("/api/v2/alerts", alerts("burst", "b5", "b6", "b7"))
    assert [e["incident"]["rule"] for e in await client.opened(2)] == ["steady", "burst"]


async def test_explain_says_which_rule_window_and_why(client: Client) -> None:
    await client.post("/api/v2/alerts", alerts("burst", "a", "b", "c"))
    key = (await client.opened(1))[0]["incident"]["key"]
    status, body = await client.get(f"/api/v1/incidents/{key}/explain")
    assert status == 200
    assert body["rule"]["name"] == "burst" and body["rule"]["line"] == 1
    assert body["rule"]["file"].endswith("rules.yaml")
    assert body["why"].startswith("3 matching alerts within 10m (event_count gte 3)")
    assert sorted(w["labels"]["alertname"] for w in body["window"]) == ["a", "b", "c"]
    assert (await client.get("/api/v1/incidents/inc-nope/explain"))[0] == 404


async def test_silence_over_http_mutes_matching_alerts(client: Client) -> None:
    status, silence = await client.post(
        "/api/v1/silences",
        json.dumps(
            {
                "matchers": ['service="quiet"'],
                "duration": "1h",
                "created_by": "sre",
                "comment": "maintenance",
            }
        ).encode(),
    )
    assert status == 201 and silence["id"].startswith("sil-")
    await client.post("/api/v2/alerts", alerts("burst", "a", "b", "c", service="quiet"))
    await client.post("/api/v2/alerts", alerts("burst", "a", "b", "c", service="loud"))
    opened = await client.opened(1)
    await asyncio.sleep(0.1)
    assert [e["incident"]["group"]["service"] for e in opened] == ["loud"]
    assert [s["id"] for s in (await client.get("/api/v1/silences"))[1]] == [silence["id"]]
    bad = await client.post(
        "/api/v1/silences", json.dumps({"matchers": ['x=~"("'], "duration": "1h"}).encode()
    )
    assert bad[0] == 400 and bad[1]["field"] == "$.matchers"
    no_end = await client.post("/api/v1/silences", json.dumps({"matchers": ['a="b"']}).encode())
    assert no_end[0] == 400 and no_end[1]["field"] == "$.ends_at"


async def _until(predicate: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_full_queue_answers_429_and_loses_nothing_accepted(client: Client) -> None:
    pipeline = client.app.pipeline
    await pipeline.lock.acquire()  # the correlator is busy: requests pile up
    try:
        pipeline._queue.maxsize = 2
        taken = asyncio.ensure_future(client.post("/api/v2/alerts", alerts("burst", "q0")))
        # the correlator took it and waits for the lock; the queue is empty again
        await _until(lambda: pipeline.queued_alerts == 1 and pipeline.pending == 0)
        queued = [
            asyncio.ensure_future(client.post("/api/v2/alerts", alerts("burst", f"q{i}")))
            for i in (1, 2)
        ]
        await _until(lambda: pipeline.pending == 2)
        status, body = await client.post("/api/v2/alerts", alerts("burst", "overflow"))
        assert status == 429 and body["error"] == "overloaded"
    finally:
        pipeline.lock.release()
    results = await asyncio.gather(taken, *queued)
    assert [r[0] for r in results] == [200, 200, 200]


async def test_restart_with_the_same_store_keeps_windows_and_incidents(tmp_path: Path) -> None:
    from correlate.store import MemoryStore

    store = MemoryStore()

    def make() -> App:
        return App(app_config(tmp_path), store=store)

    async with make() as first, aiohttp.ClientSession() as session:
        c = Client(first, session)
        await c.post("/api/v2/alerts", alerts("burst", "a", "b"))  # 2 of 3 in the window
        await c.post("/api/v2/alerts", alerts("steady", "x", "y", "z"))  # opens
        await c.opened(1)
    async with make() as second, aiohttp.ClientSession() as session:
        c = Client(second, session)
        await c.post("/api/v2/alerts", alerts("steady", "x"))  # a re-send, not a new alert
        await c.post("/api/v2/alerts", alerts("burst", "c"))  # completes the restored window
        opened = await c.opened(2)
        await asyncio.sleep(0.1)
    assert [e["incident"]["rule"] for e in opened] == ["steady", "burst"]
    assert [e["incident"]["rule"] for e in c.jsonl() if e["event"] == "opened"] == [
        "steady",
        "burst",
    ]


async def test_a_changed_rule_file_is_reloaded_without_a_signal(tmp_path: Path) -> None:
    config = app_config(tmp_path, threshold=3)
    config = msgspec.structs.replace(config, rules_watch_interval=Duration(0.05))
    rules = tmp_path / "rules.yaml"
    async with App(config) as app:
        rules.write_text(
            RULES.replace("THRESHOLD", "3") + "- name: added\n  match: ['kind=\"new\"']\n"
            "  correlation: {type: event_count, timespan: 1m, condition: {gte: 1}}\n"
        )
        for _ in range(100):
            if "added" in app.ruleset.by_name():
                break
            await asyncio.sleep(0.02)
        assert "added" in app.ruleset.by_name()
        assert app.metrics.registry.get_sample_value("stormwatch_rules_loaded") == 3


async def test_a_refusing_receiver_dead_letters_and_replay_delivers_once_fixed(
    tmp_path: Path,
) -> None:
    from tests.fakes.webhook import FakeWebhook, Reply, serve_fake

    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.replace("THRESHOLD", "1"))
    async with serve_fake(FakeWebhook(default=Reply(400))) as fake:
        cfg = tmp_path / "stormwatch.yaml"
        cfg.write_text(
            f"listen: 127.0.0.1:{pick_free_port()}\nrules: [{rules}]\n"
            f"sinks:\n  - {{type: file, name: jsonl, path: {tmp_path / 'incidents.jsonl'}}}\n"
            f"  - {{type: webhook, name: hook, url: '{fake.url}', retry: {{max_attempts: 1}}}}\n"
        )
        async with App(load_config(cfg, env={})) as app, aiohttp.ClientSession() as session:
            c = Client(app, session)
            await c.post("/api/v2/alerts", alerts("burst", "a"))
            for _ in range(100):
                if (await c.get("/api/v1/deadletters/hook"))[1]["dead_letters"]:
                    break
                await asyncio.sleep(0.02)
            status, body = await c.get("/api/v1/deadletters/hook")
            assert status == 200 and [d["reason"] for d in body["dead_letters"]] == ["permanent"]
            fake.default = Reply(202)  # the receiver is fixed
            assert (await c.post("/api/v1/deadletters/hook/replay"))[1]["replayed"] == 1
            for _ in range(100):
                if len(fake.requests) == 2:
                    break
                await asyncio.sleep(0.02)
            assert [r.body["event"] for r in fake.requests] == ["opened", "opened"]
            assert (
                fake.requests[0].headers["Idempotency-Key"]
                == fake.requests[1].headers["Idempotency-Key"]
            )
            assert (await c.get("/api/v1/deadletters/hook"))[1]["dead_letters"] == []
            assert (await c.get("/api/v1/deadletters/nope"))[0] == 404


async def test_the_route_tree_sends_each_event_to_its_sinks(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "- name: crit\n  match: ['severity=\"critical\"']\n"
        "  correlation: {type: event_count, group-by: [service], timespan: 1m, condition: {gte: 1}}\n"
        "  incident: {severity: P1}\n"
        "- name: warn\n  match: ['severity=\"warning\"']\n"
        "  correlation: {type: event_count, group-by: [service], timespan: 1m, condition: {gte: 1}}\n"
        "  incident: {severity: P3}\n"
    )
    cfg = tmp_path / "stormwatch.yaml"
    cfg.write_text(
        f"listen: 127.0.0.1:{pick_free_port()}\nrules: [{rules}]\n"
        f"sinks:\n  - {{type: file, name: all, path: {tmp_path / 'all.jsonl'}}}\n"
        f"  - {{type: file, name: pages, path: {tmp_path / 'pages.jsonl'}}}\n"
        "route:\n  sink: [all]\n  routes:\n    - {match: ['severity=\"P1\"'], sink: [pages], continue: true}\n"
        "    - {match: ['rule=~\".*\"'], sink: [all]}\n"
    )
    async with App(load_config(cfg, env={})) as app, aiohttp.ClientSession() as session:
        c = Client(app, session)
        body = json.dumps(
            [
                {"labels": {"alertname": "Down", "service": "a", "severity": "critical"}},
                {"labels": {"alertname": "Slow", "service": "b", "severity": "warning"}},
            ]
        ).encode()
        assert (await c.post("/api/v2/alerts", body))[0] == 200
        for _ in range(100):
            if (tmp_path / "all.jsonl").exists() and len(
                (tmp_path / "all.jsonl").read_text().splitlines()
            ) >= 2:
                break
            await asyncio.sleep(0.02)
    pages = [
        json.loads(x)["incident"]["rule"]
        for x in (tmp_path / "pages.jsonl").read_text().splitlines()
    ]
    every = [
        json.loads(x)["incident"]["rule"] for x in (tmp_path / "all.jsonl").read_text().splitlines()
    ]
    assert pages == ["crit"]
    assert sorted(every) == ["crit", "warn"]


def test_a_route_to_an_unknown_sink_is_a_config_error(tmp_path: Path) -> None:
    from stormwatch.errors import ConfigError

    cfg = tmp_path / "stormwatch.yaml"
    cfg.write_text("route: {sink: [pager]}\n")
    with pytest.raises(ConfigError) as info:
        load_config(cfg, env={})
    assert info.value.field == "$.route.sink" and "pager" in info.value.message
    assert str(cfg) in str(info.value)
