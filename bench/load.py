"""Drive a running daemon over HTTP with the seeded workload; print throughput and latency.

    stormwatch run --listen 127.0.0.1:9095 --incidents-jsonl /tmp/inc.jsonl &
    python -m bench.load --url http://127.0.0.1:9095 --alerts 200000 --connections 4

Each request is a batch of `--batch` alerts in Alertmanager v2 format, as Prometheus
sends them. Bounded in count (`--alerts`) and in time (`--max-seconds`); loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time

import aiohttp
import msgspec

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
    url: str, n: int, batch: int, connections: int, max_seconds: float, span_s: float
) -> dict[str, object]:
    bodies = bodies_for(n, batch, span_s)
    shards = [bodies[i::connections] for i in range(connections)]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        deadline = time.monotonic() + max_seconds
        await asyncio.gather(
            *(_worker(session, url, s, latencies, statuses, deadline) for s in shards)
        )
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
        )
    )
    lat = result["latency_ms"]
    print(
        f"{result['alerts']:,} alerts in {result['seconds']}s: {result['alerts_per_s']:,} alerts/s over "
        f"{args.connections} connections, batches of {args.batch}; latency p50 {lat['p50']} ms, "  # type: ignore[index]
        f"p90 {lat['p90']} ms, p99 {lat['p99']} ms; statuses {result['statuses']}",
        file=sys.stderr,
    )  # type: ignore[index]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
