"""Drive a running daemon over HTTP with the seeded workload; print throughput and latency.

    stormwatch run --listen 127.0.0.1:9095 --incidents-jsonl /tmp/inc.jsonl &
    python -m bench.load --url http://127.0.0.1:9095 --alerts 200000 --connections 4
    python -m bench.load --fleet --alerts 1000000                 # a million distinct alerts
    python -m bench.load --fleet --first 1000000 --rate 75000     # open loop at 75k alerts/s

Each request is a batch of `--batch` alerts in Alertmanager v2 format, as Prometheus
sends them: the seeded workload's records compressed into the last `--span` seconds, or
with `--fleet` distinct alerts that all stay firing for a day (bench/fleet.py), so the
daemon holds one live fingerprint per alert sent. Closed loop by default (each connection
sends its next request when the last is answered); `--rate` sends on a fixed schedule
instead and times each request from when it was due, so a daemon that falls behind shows
its queueing in the latency. Bounded in count (`--alerts`) and in time (`--max-seconds`);
loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import cast

import aiohttp
import msgspec

from bench.fleet import fleet_bodies
from bench.workload import Workload


async def _worker(
    session: aiohttp.ClientSession,
    url: str,
    bodies: list[bytes],
    latencies: list[float],
    statuses: dict[int, int],
    deadline: float,
) -> None:
    headers = {"Content-Type": "application/json"}
    for body in bodies:
        if time.monotonic() > deadline:
            return
        started = time.perf_counter()
        async with session.post(url + "/api/v2/alerts", data=body, headers=headers) as resp:
            await resp.read()
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
            if resp.status == 429:
                await asyncio.sleep(float(resp.headers.get("Retry-After", "1")))
        latencies.append(time.perf_counter() - started)


async def _paced(
    session: aiohttp.ClientSession,
    url: str,
    bodies: list[bytes],
    slots: itertools.count[int],
    due_of: Callable[[int], float],
    latencies: list[float],
    statuses: dict[int, int],
    deadline: float,
) -> None:
    """Open loop: request `i` is due at `due_of(i)`; its latency counts from then."""
    headers = {"Content-Type": "application/json"}
    for i in slots:
        if i >= len(bodies) or time.monotonic() > deadline:
            return
        due = due_of(i)
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        async with session.post(url + "/api/v2/alerts", data=bodies[i], headers=headers) as resp:
            await resp.read()
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
        latencies.append(time.perf_counter() - due)


def fleet_for(n: int, batch: int, first: int, span_s: float) -> list[bytes]:
    """`n` distinct fleet alerts from record `first`, started over the last `span_s`
    seconds, all ending an hour from now (sent again, they are re-sends)."""
    now = time.time()
    made = fleet_bodies(
        n, start=now - span_s, span_s=span_s, batch=batch, first=first, ends_at=now + 3600
    )
    return [body for _, body in made]


def bodies_for(n: int, batch: int, span_s: float) -> list[bytes]:
    """The workload's first `n` records as Alertmanager API bodies of up to `batch` alerts,
    compressed into the last `span_s` seconds so its event times are recent."""
    wl = Workload(request_size=batch)
    requests = list(wl.requests(n))
    first, last = requests[0][0].received_at, requests[-1][-1].received_at
    scale = span_s / max(last - first, 1.0)
    now = time.time()

    def moved(t: float) -> float:
        return now - span_s + (t - first) * scale

    bodies = []
    for r in requests:
        bodies.append(
            wl.am_payload(
                [
                    msgspec.structs.replace(
                        a,
                        starts_at=moved(a.starts_at),
                        ends_at=moved(a.ends_at) if a.ends_at is not None else None,
                    )
                    for a in r
                ]
            )
        )
    return bodies


async def run(
    url: str,
    n: int,
    batch: int,
    connections: int,
    max_seconds: float,
    span_s: float,
    *,
    fleet: bool = False,
    first: int = 0,
    rate: float | None = None,
) -> dict[str, object]:
    bodies = fleet_for(n, batch, first, span_s) if fleet else bodies_for(n, batch, span_s)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        deadline = time.monotonic() + max_seconds
        if rate is None:
            shards = [bodies[i::connections] for i in range(connections)]
            workers = [_worker(session, url, s, latencies, statuses, deadline) for s in shards]
        else:
            interval = batch / rate
            slots = itertools.count()

            def due_of(i: int) -> float:
                return started + i * interval

            workers = [
                _paced(session, url, bodies, slots, due_of, latencies, statuses, deadline)
                for _ in range(connections)
            ]
        await asyncio.gather(*workers)
        elapsed = time.perf_counter() - started
    sent = round(len(latencies) * n / len(bodies))
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return {
        "alerts": sent,
        "requests": len(latencies),
        "seconds": round(elapsed, 3),
        "alerts_per_s": round(sent / elapsed),
        "batch": batch,
        "connections": connections,
        "latency_ms": {
            "p50": round(q[49] * 1000, 2),
            "p90": round(q[89] * 1000, 2),
            "p99": round(q[98] * 1000, 2),
        },
        "statuses": statuses,
        "span_s": span_s,
        "fleet": fleet,
        "rate": rate,
    }


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--url", default="http://127.0.0.1:9095")
    p.add_argument("--alerts", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--max-seconds", type=float, default=120)
    p.add_argument(
        "--span",
        type=float,
        default=600.0,
        help="seconds of event time the workload is compressed into, ending now",
    )
    p.add_argument(
        "--fleet", action="store_true", help="distinct alerts, all firing (bench/fleet.py)"
    )
    p.add_argument("--first", type=int, default=0, help="with --fleet: the first record's number")
    p.add_argument(
        "--rate", type=float, help="alerts/s on a fixed schedule (open loop) instead of closed loop"
    )
    args = p.parse_args()
    if not args.url.startswith(("http://127.", "http://localhost", "http://[::1]")):
        sys.exit("bench.load only drives a daemon on this machine's loopback")
    result = asyncio.run(
        run(
            args.url,
            args.alerts,
            args.batch,
            args.connections,
            args.max_seconds,
            args.span,
            fleet=args.fleet,
            first=args.first,
            rate=args.rate,
        )
    )
    lat = cast(dict[str, float], result["latency_ms"])
    print(
        f"{result['alerts']:,} alerts in {result['seconds']}s: {result['alerts_per_s']:,} alerts/s over "
        f"{args.connections} connections, batches of {args.batch}; latency p50 {lat['p50']} ms, "
        f"p90 {lat['p90']} ms, p99 {lat['p99']} ms; statuses {result['statuses']}",
        file=sys.stderr,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
