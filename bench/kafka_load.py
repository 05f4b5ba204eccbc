"""Kafka intake of one correlator process, in alerts per second.

    python -m bench.kafka_load --alerts 300000 --rounds 3

The topic (6 partitions, keyed by `service`) holds what receivers write for the seeded
Prometheus-fleet workload (bench/workload.py: 80 % re-sends, storms and bursts, requests
of 100 alerts each with its own arrival time), split per partition into Alert arrays,
with a tick to every partition each 30 s of its time. One correlator (role correlator,
Redis state, the shipped rules that group by service: deploy/scaleout/rules.yaml, no
sinks, so the figure is intake, not delivery) reads it from the start; timed from its
assignment to the last offset committed to Redis: fetch + decode + correlate + commit.
Each round uses a fresh group and key prefix on the same topic. Printed as JSON, with
the median. `--without engine` / `--without decode` give the floors: what fetching,
decoding and committing cost with no correlation, and fetching and committing alone;
`--breakdown` times the parts of the same run (engine, decode, commit, the rest).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from aiokafka.structs import ConsumerRecord

from bench.scaleout import PARTITIONS, EndOffsets, committed, produce, tansu
from bench.workload import Workload
from correlate import Effects, Engine
from stormwatch.app import App
from stormwatch.config import load_config
from stormwatch.gctune import tune_gc
from stormwatch.partitions import Shard
from stormwatch.wire import Alert, IncidentEvent
from tests.conftest import pick_free_port


async def one_round(
    bootstrap: str, redis_url: str, topic: str, total: int, workdir: Path
) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    prefix = f"stormwatch:kafka-load:{tag}"
    rules = Path(__file__).resolve().parents[1] / "deploy/scaleout/rules.yaml"
    cfg = workdir / f"{tag}.yaml"
    cfg.write_text(
        "role: correlator\n"
        f"listen: 127.0.0.1:{pick_free_port()}\n"
        f"rules: [{rules}]\nrules_watch_interval: 0s\n"
        f"partitioning: {{bootstrap: '{bootstrap}', topic: {topic}, group_id: load-{tag}}}\n"
        f"state: {{backend: redis, url: '{redis_url}', key_prefix: '{prefix}'}}\n"
        "sinks: []\n"
        "log_level: warning\n"
    )
    client = aioredis.from_url(redis_url)
    app = App(load_config(cfg, env={}))
    try:
        async with app:
            assert app.correlator is not None
            while not app.correlator.consuming:
                await asyncio.sleep(0.01)
            started = time.perf_counter()
            while await committed(client, prefix, topic) < total:
                await asyncio.sleep(0.01)
            elapsed = time.perf_counter() - started
    finally:
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
        for i in range(0, len(keys), 1000):
            await client.delete(*keys[i : i + 1000])
        await client.aclose()
    return {"seconds": round(elapsed, 3)}


async def run(bootstrap: str, redis_url: str, alerts: int, rounds: int) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="kafka-load-"))
    topic = f"load-{uuid.uuid4().hex[:8]}"
    requests = ((r[0].received_at, r) for r in Workload(request_size=100).requests(alerts))
    sent = await produce(bootstrap, topic, requests, tick_every=600.0, tail=0.0)
    ends = EndOffsets(bootstrap, topic)
    await ends.start()
    total = await ends.total()
    await ends.stop()
    results = [await one_round(bootstrap, redis_url, topic, total, workdir) for _ in range(rounds)]
    rates = [round(sent / r["seconds"]) for r in results]
    return {
        "alerts": sent,
        "messages": total,
        "partitions": PARTITIONS,
        "seconds": [r["seconds"] for r in results],
        "alerts_per_s": rates,
        "median_alerts_per_s": statistics.median(rates),
    }


def _without(part: str) -> None:
    """Take a part out of every correlator of this process, to see what the rest costs:
    `engine` (batches are decoded, not correlated), `decode` (messages only move the
    partition's offset)."""

    def no_engine(self: Shard, alerts: list[Alert]) -> list[IncidentEvent]:
        return []

    async def offsets_only(
        self: Shard, messages: list[ConsumerRecord[bytes, bytes]]
    ) -> list[IncidentEvent]:
        if messages:
            self.next_offset = messages[-1].offset + 1
        return []

    if part in ("engine", "decode"):
        Shard._process = no_engine  # type: ignore[method-assign]
    if part == "decode":
        Shard.take = offsets_only  # type: ignore[method-assign]


_SPENT: dict[str, float] = {}


def _timing() -> None:
    """`--breakdown`: seconds inside the correlators' engine calls, their decoding (the
    rest of `Shard.take`) and their fenced commits; the remainder of the round is
    fetching, the event loop and Kafka offset commits."""
    spent = _SPENT
    process, take, commit = Shard._process, Shard.take, Shard.commit

    def timed_process(self: Shard, alerts: list[Alert]) -> list[IncidentEvent]:
        t = time.perf_counter()
        try:
            return process(self, alerts)
        finally:
            spent["engine_s"] = spent.get("engine_s", 0.0) + time.perf_counter() - t

    async def timed_take(
        self: Shard, messages: list[ConsumerRecord[bytes, bytes]]
    ) -> list[IncidentEvent]:
        t = time.perf_counter()
        try:
            return await take(self, messages)
        finally:
            spent["take_s"] = spent.get("take_s", 0.0) + time.perf_counter() - t

    async def timed_commit(self: Shard, store: Any, events: list[IncidentEvent]) -> None:
        t = time.perf_counter()
        try:
            await commit(self, store, events)
        finally:
            spent["commit_s"] = spent.get("commit_s", 0.0) + time.perf_counter() - t

    tick = Engine.tick

    def timed_tick(self: Engine, now: float) -> Effects:
        t = time.perf_counter()
        try:
            return tick(self, now)
        finally:
            spent["tick_s"] = spent.get("tick_s", 0.0) + time.perf_counter() - t

    Engine.tick = timed_tick  # type: ignore[method-assign]
    Shard._process = timed_process  # type: ignore[method-assign]
    Shard.take = timed_take  # type: ignore[method-assign]
    Shard.commit = timed_commit  # type: ignore[method-assign]


def _breakdown(total_s: float) -> dict[str, float]:
    engine = _SPENT.get("engine_s", 0.0)
    ticks = _SPENT.get("tick_s", 0.0)
    decode = _SPENT.get("take_s", 0.0) - engine - ticks  # control messages included
    commit = _SPENT.get("commit_s", 0.0)
    return {
        "engine_s": round(engine, 3),
        "ticks_s": round(ticks, 3),
        "decode_s": round(decode, 3),
        "commit_s": round(commit, 3),
        "fetch_and_rest_s": round(total_s - engine - ticks - decode - commit, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument(
        "--without",
        choices=["engine", "decode"],
        help="floor figures: no correlation (`engine`), or no decode either (`decode`)",
    )
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also print where one round's time went (give --rounds 1): engine, decode, commit, the rest",
    )
    parser.add_argument(
        "--default-gc",
        action="store_true",
        help="leave the garbage collector as CPython sets it (`stormwatch run` tunes it)",
    )
    args = parser.parse_args()
    if not args.default_gc:
        tune_gc()  # as `stormwatch run` does: the figure is a correlator process's
    if args.without:
        _without(args.without)
    if args.breakdown:
        _timing()
    with tansu() as bootstrap:
        out = asyncio.run(run(bootstrap, args.redis, args.alerts, args.rounds))
    if args.breakdown:
        out["breakdown"] = _breakdown(sum(out["seconds"]))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
