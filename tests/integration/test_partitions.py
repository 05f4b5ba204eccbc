"""Partitioned correlation: fenced shard commits, and a receiver feeding correlators."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from correlate.delta import StateDelta
from correlate.store.fence import Fenced, ShardFence
from correlate.store.keys import ShardKeys
from correlate.store.redis import RedisStore
from stormwatch.app import App
from stormwatch.config import load_config
from stormwatch.errors import RuleError
from stormwatch.partitions import PartitionClock
from tests.conftest import pick_free_port

pytestmark = pytest.mark.redis


def _delta(clock: float) -> StateDelta:
    return StateDelta(full=False, clock=clock, watermark=clock, last_gc=0.0)


async def test_a_later_claim_fences_the_earlier_owner_and_a_stale_claim_is_refused(
    redis_url: str, redis_prefix: str
) -> None:
    store = RedisStore(redis_url, prefix=redis_prefix)
    old = ShardFence(store.client, redis_prefix, "t.0", group="g", generation=3)
    await old.claim()
    old.next_offset = 10
    await store.commit("t.0", _delta(1.0), fence=old)
    assert await old.stored_offset() == 10

    new = ShardFence(store.client, redis_prefix, "t.0", group="g", generation=4)
    await new.claim()
    old.next_offset = 20
    with pytest.raises(Fenced):
        await store.commit("t.0", _delta(2.0), fence=old)
    # The zombie's offset and state did not land: the new owner resumes at 10.
    assert await new.stored_offset() == 10
    loaded = await store.load("t.0")
    assert loaded is not None and loaded.clock == 1.0

    new.next_offset = 15
    await store.commit("t.0", _delta(3.0), fence=new)
    assert await new.stored_offset() == 15
    stale = ShardFence(store.client, redis_prefix, "t.0", group="g", generation=3)
    with pytest.raises(Fenced):
        await stale.claim()
    await store.close()


class _ClaimedMidCommit(ShardFence):
    """Lets a rival claim the shard after the owner check and before EXEC (a whole
    write's MULTI/EXEC; a delta's script checks and writes in one atomic step)."""

    rival: ShardFence

    async def guard(self, pipe: Any) -> None:
        await super().guard(pipe)
        await self.rival.claim()


async def test_a_claim_between_the_owner_check_and_exec_aborts_a_whole_write(
    redis_url: str, redis_prefix: str
) -> None:
    store = RedisStore(redis_url, prefix=redis_prefix)
    rival_client = aioredis.from_url(redis_url)
    owner = _ClaimedMidCommit(store.client, redis_prefix, "t.1", group="g", generation=1)
    owner.rival = ShardFence(rival_client, redis_prefix, "t.1", group="g", generation=2)
    await owner.claim()
    owner.next_offset = 7
    whole = StateDelta(full=True, clock=5.0, watermark=5.0, last_gc=0.0)
    with pytest.raises(Fenced):
        await store.commit("t.1", whole, fence=owner)
    assert await owner.stored_offset() is None
    assert not await store.client.exists(ShardKeys(redis_prefix, "t.1").meta)
    await rival_client.aclose()
    await store.close()


def test_a_partitions_clock_is_strictly_increasing_and_a_function_of_its_messages() -> None:
    clock = PartitionClock()
    stamps = [clock(ms) for ms in (1000, 1000, 999, 2000)]
    assert stamps == [1.0, 1.0 + 1e-6, 1.0 + 1e-6 + 1e-6, 2.0]
    resumed = PartitionClock(stamps[1])  # a new owner starts from the stored clock
    assert [resumed(ms) for ms in (999, 2000)] == stamps[2:]


RULES = """\
- name: burst
  correlation: {type: event_count, group-by: [service], timespan: 10m, condition: {gte: 3}}
  incident: {title: "{service} burst", severity: P2}
"""


def _config(tmp_path: Path, name: str, role: str, extra: str) -> Path:
    rules = tmp_path / "rules.yaml"
    if not rules.exists():
        rules.write_text(RULES)
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(
        f"role: {role}\nlisten: 127.0.0.1:{pick_free_port()}\nrules: [{rules}]\n"
        f"rules_watch_interval: 0s\n{extra}"
    )
    return cfg


def _receiver_and_correlator(
    tmp_path: Path, bootstrap: str, topic: str, redis_url: str, redis_prefix: str
) -> tuple[App, App, Path]:
    """A receiver and a correlator on a 3-partition topic; the correlator writes its
    incident events to the returned JSONL file."""
    part = (
        f"partitioning: {{bootstrap: '{bootstrap}', topic: {topic}, partitions: 3, "
        f"group_id: {topic}, tick_interval: 100ms}}\n"
    )
    state = f"state: {{backend: redis, url: '{redis_url}', key_prefix: '{redis_prefix}'}}\n"
    jsonl = tmp_path / "incidents.jsonl"
    sinks = f"sinks: [{{type: file, name: jsonl, path: '{jsonl}'}}]\n"
    receiver = App(load_config(_config(tmp_path, "r", "receiver", part), env={}))
    correlator = App(
        load_config(_config(tmp_path, "c", "correlator", part + state + sinks), env={})
    )
    return receiver, correlator, jsonl


def test_a_rule_that_does_not_group_by_the_shard_key_is_refused_by_name(tmp_path: Path) -> None:
    rules = tmp_path / "cluster.yaml"
    rules.write_text(RULES.replace("burst", "by-cluster").replace("[service]", "[cluster]"))
    cfg = tmp_path / "r.yaml"
    cfg.write_text(
        f"role: receiver\nrules: [{rules}]\ncorrelate: {{inhibit: []}}\n"
        "partitioning: {bootstrap: '127.0.0.1:1', shard_key: service}\n"
    )
    with pytest.raises(RuleError) as err:
        App(load_config(cfg, env={}))
    assert "'by-cluster'" in str(err.value) and "shard key 'service'" in str(err.value)


@pytest.mark.kafka
async def test_a_receiver_feeds_a_correlator_one_shard_per_partition(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic: str, redis_url: str, redis_prefix: str
) -> None:
    receiver, correlator, jsonl = _receiver_and_correlator(
        tmp_path, kafka_bootstrap, kafka_topic, redis_url, redis_prefix
    )
    async with receiver, correlator:
        alerts = [
            {
                "labels": {"alertname": f"A{i}", "service": f"svc{s}"},
                "startsAt": "2026-01-01T00:00:00Z",
            }
            for s in range(4)
            for i in range(3)
        ]
        status, body = await _post(correlator, alerts)
        assert status == 421 and body["error"] == "misdirected", body
        assert "send them to a receiver" in body["message"]
        assert (await _post(receiver, alerts))[0] == 200
        for _ in range(400):
            if jsonl.exists() and len(jsonl.read_text().splitlines()) >= 4:
                break
            await asyncio.sleep(0.05)
        lines = [json.loads(x) for x in jsonl.read_text().splitlines()]
        opened = sorted(e["incident"]["title"] for e in lines if e["event"] == "opened")
        assert opened == [f"svc{s} burst" for s in range(4)]
        assert correlator.correlator is not None
        shards = {s.id for s in correlator.correlator.shards.values()}
        assert shards == {f"{kafka_topic}.{p}" for p in range(3)}
        client = aioredis.from_url(redis_url)
        offsets = [await client.get(ShardKeys(redis_prefix, s).offset) for s in shards]
        await client.aclose()
        assert all(o is not None and int(o) > 0 for o in offsets)


async def _post(app: App, alerts: list[dict[str, Any]]) -> tuple[int, Any]:
    return await _call(app, "POST", "/api/v2/alerts", alerts)


async def _call(app: App, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    import aiohttp

    host, port = app.config.host_port
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, f"http://{host}:{port}{path}", json=body) as resp,
    ):
        return resp.status, await resp.json(content_type=None)


async def _text(app: App, path: str) -> str:
    import aiohttp

    host, port = app.config.host_port
    async with aiohttp.ClientSession() as session, session.get(f"http://{host}:{port}{path}") as r:
        assert r.status == 200, r.status
        return await r.text()


async def _until(condition: Any, what: str) -> None:
    for _ in range(600):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within 30 s: {what}")


@pytest.mark.kafka
async def test_silences_and_acknowledgements_reach_every_shard_through_the_topic(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic: str, redis_url: str, redis_prefix: str
) -> None:
    """A silence made on any process mutes its alerts on whichever shard holds them, and
    an acknowledgement sent to a receiver reaches the shard holding the incident."""
    receiver, correlator, jsonl = _receiver_and_correlator(
        tmp_path, kafka_bootstrap, kafka_topic, redis_url, redis_prefix
    )

    def events() -> list[dict[str, Any]]:
        if not jsonl.exists():
            return []
        return [json.loads(x) for x in jsonl.read_text().splitlines()]

    def opened(service: str) -> list[dict[str, Any]]:
        title = f"{service} burst"
        return [e for e in events() if e["event"] == "opened" and e["incident"]["title"] == title]

    async with receiver, correlator:
        assert correlator.correlator is not None
        corr = correlator.correlator
        await _until(lambda: len(corr.shards) == 3, "the correlator holds the 3 partitions")
        await _until(
            lambda: (
                correlator.broadcaster is not None and correlator.broadcaster._producer is not None
            ),
            "the correlator's producer started",
        )
        silence = {
            "matchers": [{"name": "service", "value": "svc0", "isRegex": False}],
            "startsAt": "2026-01-01T00:00:00Z",
            "endsAt": "2099-01-01T00:00:00Z",
            "createdBy": "ops",
            "comment": "maintenance",
        }
        status, body = await _call(correlator, "POST", "/api/v2/silences", silence)
        assert status == 200, body
        sid = body["silenceID"]
        engines = corr.engines()
        await _until(
            lambda: all([s.id for s in e.state.silences] == [sid] for e in engines),
            "every shard holds the silence",
        )
        status, listed = await _call(correlator, "GET", "/api/v2/silences")
        assert [s["id"] for s in listed] == [sid]
        status, body = await _call(receiver, "GET", "/api/v2/silences")
        assert status == 421 and "read them from a correlator" in body["message"], body
        assert "This process is a receiver" in await _text(receiver, "/")
        # amtool's `silence update` posts the id: a receiver sends it on to every shard.
        status, body = await _call(
            receiver, "POST", "/api/v2/silences", {**silence, "id": sid, "comment": "longer"}
        )
        assert status == 200 and body["silenceID"] == sid, body
        await _until(
            lambda: all([s.comment for s in e.state.silences] == ["longer"] for e in engines),
            "every shard holds the updated silence",
        )

        alerts = [
            {"labels": {"alertname": f"A{i}", "service": svc}, "startsAt": "2026-01-01T00:00:00Z"}
            for svc in ("svc0", "svc1")
            for i in range(3)
        ]
        assert (await _post(receiver, alerts))[0] == 200
        await _until(lambda: len(opened("svc1")) == 1, "svc1's burst opened")
        status, firing = await _call(correlator, "GET", "/api/v2/alerts")
        muted = sorted(a["labels"]["alertname"] for a in firing if a["status"]["silencedBy"])
        assert muted == ["A0", "A1", "A2"], firing
        assert all(a["labels"]["service"] == "svc0" for a in firing if a["status"]["silencedBy"])
        assert opened("svc0") == []

        # Expired through the receiver, which holds no silences: the shards end it, and
        # the alerts it held feed the rule then.
        status, _ = await _call(receiver, "DELETE", f"/api/v2/silence/{sid}")
        assert status == 200
        await _until(lambda: len(opened("svc0")) == 1, "svc0's burst opened once the silence ended")
        assert all(e.state.silences == [] for e in engines)
        status, _ = await _call(correlator, "DELETE", f"/api/v2/silence/{sid}")
        assert status == 404  # a correlator holding shards knows it is gone

        key = opened("svc1")[0]["incident"]["key"]
        status, explained = await _call(correlator, "GET", f"/api/v1/incidents/{key}/explain")
        assert status == 200 and explained["incident"]["key"] == key, explained
        status, body = await _call(
            receiver, "POST", f"/api/v1/incidents/{key}/ack", {"by": "ada", "comment": "on it"}
        )
        assert status == 202 and body["queued"] is True, body

        def acknowledged() -> bool:
            inc = correlator.incident(key)
            return inc is not None and inc.acknowledged_by == "ada"

        await _until(acknowledged, "the incident acknowledged on its shard")
        await _until(
            lambda: any(
                e["incident"]["key"] == key and e["incident"].get("acknowledged_by") == "ada"
                for e in events()
                if e["event"] == "updated"
            ),
            "an updated event saying so",
        )
        # Sink health sums the shards' outboxes (each shard drains its own).
        status, health = await _call(correlator, "GET", "/api/v1/sinks")
        assert status == 200 and [h["sink"] for h in health] == ["jsonl"], health
        assert health[0]["dead_letters"] == 0 and health[0]["breaker"] == "closed"
