"""Restart to consuming: how long after a SIGKILL and restart the Kafka source takes
alerts again.

    python -m bench.kafka_restart --rounds 5

A producer writes an alert every 50 ms to a topic; `stormwatch run` (memory
state, the topic as its Kafka source) consumes it. Each round kills the daemon with
SIGKILL once it is consuming and starts it again at once; measured from the restart
(the new process spawned) to the first alert it counts in
`stormwatch_alerts_received_total{source="kafka"}`, and from its /readyz to that. The
figures are printed as JSON, with the median of the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.scaleout import tansu
from tests.conftest import pick_free_port

_RECEIVED = re.compile(rb'stormwatch_alerts_received_total\{source="kafka",status="firing"\} (\S+)')


def _received(url: str) -> float:
    try:
        with urllib.request.urlopen(url + "/metrics", timeout=1) as resp:
            m = _RECEIVED.search(resp.read())
    except OSError:
        return -1.0
    return float(m.group(1)) if m else 0.0


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=1) as resp:
            return resp.status == 200
    except OSError:
        return False


async def _produce(bootstrap: str, topic: str, stop: asyncio.Event) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        i = 0
        while not stop.is_set():
            alert = {
                "labels": {"alertname": f"A{i}", "service": "svc"},
                "startsAt": "2026-01-01T00:00:00Z",
            }
            await producer.send_and_wait(topic, json.dumps(alert).encode())
            i += 1
            await asyncio.sleep(0.05)
    finally:
        await producer.stop()


async def _until(predicate: object, limit: float = 60.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if await asyncio.to_thread(predicate):  # type: ignore[arg-type]
            return time.monotonic()
        await asyncio.sleep(0.05)
    msg = "condition not met within the limit"
    raise TimeoutError(msg)


async def measure(bootstrap: str, rounds: int, workdir: Path, kafka: str = "") -> dict[str, object]:
    topic = f"restart-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 6, 1)])
    await admin.close()
    port = pick_free_port()
    url = f"http://127.0.0.1:{port}"
    cfg = workdir / "stormwatch.yaml"
    cfg.write_text(
        f"listen: 127.0.0.1:{port}\nrules_watch_interval: 0s\n"
        f"ingest: {{kafka: {{bootstrap: '{bootstrap}', topics: [{topic}], group_id: {topic}{kafka}}}}}\n"
        f"sinks: [{{type: file, name: jsonl, path: '{workdir / 'incidents.jsonl'}'}}]\n"
    )
    stop = asyncio.Event()
    producing = asyncio.ensure_future(_produce(bootstrap, topic, stop))

    def spawn() -> subprocess.Popen[bytes]:
        log = (workdir / "daemon.log").open("ab")
        return subprocess.Popen(
            [sys.executable, "-m", "stormwatch.cli", "run", "--config", str(cfg)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    from_spawn: list[float] = []
    from_ready: list[float] = []
    proc = spawn()
    try:
        await _until(lambda: _received(url) > 0)
        for _ in range(rounds):
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            spawned = time.monotonic()
            proc = spawn()
            ready = await _until(lambda: _ready(url))
            consumed = await _until(lambda: _received(url) > 0)
            from_spawn.append(round(consumed - spawned, 2))
            from_ready.append(round(consumed - ready, 2))
            await asyncio.sleep(1.0)
    finally:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=20)
        if proc.poll() is None:
            proc.kill()
        stop.set()
        await producing
    return {
        "rounds": rounds,
        "restart_to_consuming_s": from_spawn,
        "median_s": statistics.median(from_spawn),
        "ready_to_consuming_s": from_ready,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--kafka", default="", help="more source settings, e.g. ', session_timeout: 2s'"
    )
    args = parser.parse_args()
    with tansu() as bootstrap:
        out = asyncio.run(measure(bootstrap, args.rounds, Path(tempfile.mkdtemp()), args.kafka))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
