"""Redis stopped under HTTP and Kafka load, then restarted empty or with its data: the
daemon answers 503 meanwhile, `/readyz` is 503, it recovers by itself, logs one line
each way, and loses nothing: every HTTP batch is eventually taken (the sender retries
on 503 as Alertmanager does) and every alert, HTTP or Kafka, is in an incident.

The outage lasts STORMWATCH_OUTAGE_S seconds (3 in CI; 30 for the figures in the
notes: `STORMWATCH_OUTAGE_S=30 CI=true python -m pytest -s tests/e2e/test_redis_outage.py`).
The test runs its own redis-server (tests/redis_server.py), never the machine's.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from tests.conftest import Daemon
from tests.e2e.tools import wait_for
from tests.integration.test_kafka import create_topics
from tests.redis_server import OwnRedis

pytestmark = [pytest.mark.redis, pytest.mark.kafka]

OUTAGE_S = float(os.environ.get("STORMWATCH_OUTAGE_S", "3"))
RULE = """\
- name: each
  correlation: {type: event_count, group-by: [service], timespan: 10m, condition: {gte: 1}}
  incident: {title: "{service}", severity: P3}
"""


def _alert(name: str) -> dict[str, Any]:
    # One service per alert: each alert is its own incident, so "in an incident" is exact.
    return {"labels": {"alertname": name, "service": name}}


class HttpLoad(threading.Thread):
    """Batches of 5 alerts, one after another, each retried after Retry-After on 503
    and 429 until it is taken; records every answer."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stop = threading.Event()
        self.taken: list[str] = []
        self.statuses: Counter[int] = Counter()
        self.first_503: float | None = None

    def post(self, body: bytes) -> tuple[int, float]:
        req = urllib.request.Request(
            self.url + "/api/v2/alerts", data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, 0.0
        except urllib.error.HTTPError as err:
            return err.code, float(err.headers.get("Retry-After", "1"))

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            names = [f"http-{i}-{j}" for j in range(5)]
            body = json.dumps([_alert(n) for n in names]).encode()
            while True:
                status, retry = self.post(body)
                self.statuses[status] += 1
                if status == 200:
                    self.taken.extend(names)
                    break
                assert status in (429, 503), status
                if status == 503 and self.first_503 is None:
                    self.first_503 = time.monotonic()
                time.sleep(min(retry, 1.0))  # Alertmanager retries sooner; either works
            i += 1
            time.sleep(0.02)


class KafkaLoad(threading.Thread):
    """One alert per message, 50 a second, until stopped."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.topic = bootstrap, topic
        self.stop = threading.Event()
        self.sent: list[str] = []

    def run(self) -> None:
        asyncio.run(self._produce())

    async def _produce(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap)
        await producer.start()
        try:
            i = 0
            while not self.stop.is_set():
                name = f"kafka-{i}"
                await producer.send_and_wait(self.topic, json.dumps(_alert(name)).encode())
                self.sent.append(name)
                i += 1
                await asyncio.sleep(0.02)
        finally:
            await producer.stop()


def restart_until_ready(server: OwnRedis, restart: str, daemon: Daemon) -> float:
    """Start Redis again (`empty`: without its data); seconds until `daemon` is ready."""
    if restart == "empty":
        server.wipe()
    server.start()
    restarted = time.monotonic()
    wait_for("/readyz 200 again", lambda: daemon.get("/readyz")[0] == 200, 30)
    return time.monotonic() - restarted


def _log_events(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


@pytest.mark.parametrize("restart", ["empty", "with_data"])
def test_redis_outage_under_http_and_kafka_load_loses_nothing(
    daemon_factory: Any, tmp_path: Path, kafka_bootstrap: str, kafka_topic: str, restart: str
) -> None:
    asyncio.run(create_topics(kafka_bootstrap, kafka_topic))
    server = OwnRedis(tmp_path / "redis")
    server.start()
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULE)
    config = tmp_path / "stormwatch.yaml"
    config.write_text(
        f"state: {{backend: redis, url: '{server.url}', key_prefix: outage}}\n"
        "tick_interval: 200ms\n"
        "correlate: {max_groups_per_rule: 1000000}\n"
        "ingest:\n"
        f"  kafka: {{bootstrap: '{kafka_bootstrap}', topics: [{kafka_topic}],"
        " group_id: outage, poll_timeout: 100ms}\n"
    )
    try:
        daemon: Daemon = daemon_factory("--config", str(config), "--rules", str(rules))
        wait_for("/readyz 200 (Kafka consuming)", lambda: daemon.get("/readyz")[0] == 200, 30)
        http, kafka = HttpLoad(daemon.url), KafkaLoad(kafka_bootstrap, kafka_topic)
        http.start()
        kafka.start()
        time.sleep(1.5)  # load before the outage

        server.stop()
        stopped = time.monotonic()
        ready_during: list[int] = []
        while time.monotonic() - stopped < OUTAGE_S:
            ready_during.append(daemon.get("/readyz")[0])
            time.sleep(0.1)
        assert 503 in ready_during and ready_during[-1] == 503
        recovered_after = restart_until_ready(server, restart, daemon)
        time.sleep(1.5)  # load after the recovery
        http.stop.set()
        kafka.stop.set()
        http.join(60)
        kafka.join(60)
        assert not http.is_alive() and not kafka.is_alive()

        expected = set(http.taken) | set(kafka.sent)

        def all_in_incidents() -> bool:
            status, body = daemon.get("/api/v1/incidents?status=all")
            return status == 200 and {i["group"]["service"] for i in json.loads(body)} >= expected

        wait_for("every alert in an incident", all_in_incidents, 60)
        assert daemon.alive()
        events = _log_events(daemon.log)  # before Redis stops again, at the teardown
    finally:
        server.stop()
    names = Counter(e.get("event") for e in events)
    recovered = [e for e in events if e.get("event") == "store_recovered"]
    print(
        f"\n{restart}: outage {OUTAGE_S:.0f}s; HTTP answers {dict(http.statuses)}; "
        f"{len(http.taken)} HTTP + {len(kafka.sent)} Kafka alerts, all in incidents; "
        f"/readyz 503 {ready_during.count(503)}/{len(ready_during)} polls while down; "
        f"ready again {recovered_after:.2f}s after Redis restarted; store_recovered "
        f"duration_s={recovered[0]['duration_s'] if recovered else None}; "
        f"log lines: {sum(names.values())}, kafka_source_paused {names['kafka_source_paused']}"
    )
    assert http.statuses[503] > 0 and http.statuses[200] > 0
    assert names["store_unavailable"] == 1 and names["store_recovered"] == 1
    assert names["store_reset"] == (1 if restart == "empty" else 0)
    assert recovered[0]["duration_s"] >= OUTAGE_S * 0.9
    for bad in ("task_crashed", "batch_failed", "drain_failed", "request_failed"):
        assert names[bad] == 0, bad
    assert not any("exception" in e for e in events)
