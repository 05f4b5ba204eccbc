"""How fast one sink's drain delivers through the Redis outbox: events/s and CPU-s.

    python -m bench.drain_load [--alerts 200000] [--events 5000] [--rounds 3]

The events are real: a fleet of `--alerts` alerts (bench/fleet.py) correlated by the
default rules, as `stormwatch run` would, the first `--events` of them kept (most are
`opened`, with the incident's alerts listed: 3 KiB median). Each round appends them to
a file sink's inbox in Redis (REDIS_URL, a key prefix of its own, removed after) and
times the drain from the first round to an empty outbox, in this process: the same
`OutboxDrain`, `RedisOutbox`, `RedisRemoteStore` and `FileSink` the daemon runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

import redis.asyncio as aioredis

from bench.fleet import fleet_bodies
from correlate import Engine
from ingest.normalize.alertmanager import normalize_alertmanager_v2
from rules.loader import load_rules
from sinks.drain import OutboxDrain
from sinks.file import FileSink, FileSinkConfig
from sinks.redis_outbox import RedisOutbox
from sinks.remote import RedisRemoteStore, Refs
from stormwatch.app import DEFAULT_RULES
from stormwatch.metrics import Metrics
from stormwatch.wire import IncidentEvent


def fleet_events(alerts: int, limit: int) -> list[IncidentEvent]:
    engine = Engine(load_rules([DEFAULT_RULES]))
    events: list[IncidentEvent] = []
    start = 1_800_000_000.0
    for at, body in fleet_bodies(alerts, start=start, span_s=3600):
        events += engine.process(normalize_alertmanager_v2(body, at), at).events
        events += engine.tick(at).events
        if len(events) >= limit:
            break
    return events[:limit]


async def one_round(events: list[IncidentEvent], url: str, out: Path) -> dict[str, float]:
    client = aioredis.from_url(url)
    prefix = f"bench-drain-{os.getpid()}-{time.monotonic_ns()}"
    outbox = RedisOutbox(client, prefix=prefix)
    sink = FileSink(FileSinkConfig(name="jsonl", path=str(out)))
    refs = Refs(RedisRemoteStore(client, prefix=prefix), "jsonl")
    drain = OutboxDrain(outbox, sink, Metrics(), refs)
    try:
        for i in range(0, len(events), 400):  # as commits append them
            await outbox.put("jsonl", events[i : i + 400])
        wall, cpu = time.perf_counter(), time.process_time()
        while True:
            wait = await drain.step()
            idle = wait is not False and drain.pending == 0
            if idle and not await client.llen(outbox.inbox_key("jsonl")):
                break
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        await sink.close()
        async for key in client.scan_iter(match=f"{prefix}*", count=1000):
            await client.unlink(key)
        await client.aclose()
    return {
        "events_per_s": round(len(events) / wall),
        "seconds": round(wall, 3),
        "cpu_s": round(cpu, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--alerts", type=int, default=200_000)
    ap.add_argument("--events", type=int, default=5_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    events = fleet_events(args.alerts, args.events)
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            out = Path(tmp) / f"round-{r}.jsonl"
            rounds.append(asyncio.run(one_round(events, url, out)))
            lines = sum(1 for _ in out.open("rb"))
            rounds[-1]["lines"] = lines
    rates = sorted(r["events_per_s"] for r in rounds)
    print(
        json.dumps(
            {"events": len(events), "rounds": rounds, "median_events_per_s": rates[len(rates) // 2]}
        )
    )


if __name__ == "__main__":
    main()
