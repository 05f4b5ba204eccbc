"""Overload: offer a daemon ~10x what it can take, open loop, and see what it keeps doing.

    python -m bench.overload --seconds 30 --factor 10

Starts `stormwatch run` on a free loopback port (memory state, the shipped rules, a
JSONL file in a temporary folder; `--config` for another), then:

1. capacity: closed loop over a few connections for `--probe` seconds; the goodput
   (alerts/s answered 200) is what the daemon can take;
2. overload: requests arrive on a fixed schedule at `--factor` times that capacity
   (in alerts/s) for `--seconds`, each on its own connection (at most `--connections`
   open at once), never waiting for earlier answers (open loop: a sender that backs off
   would hide the overload), never honouring Retry-After. The client writes prepared
   request bytes on raw sockets, so it is not what limits the offered load.

Prints, for the overload phase, the offered and accepted alerts/s (goodput), p50/p99/max
latency of accepted batches (from sending to the answer), refusals by status, client
errors, answers per second, the share of a core the daemon used meanwhile, and its peak
RSS (VmHWM in /proc/PID/status) and RSS at the end. Goodput and rates are over the
whole phase, until the last answer (requests offered and not yet sent wait client-side).
Bodies are the seeded workload's first `--alerts` alerts (bench/workload.py) in
Alertmanager v2 format, as Prometheus batches them (up to `--batch` alerts), sent
round-robin, so later rounds are re-sends, as Prometheus' are.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.load import bodies_for
from bench.procs import cpu_seconds, status_kib
from tests.conftest import pick_free_port

HEADERS = {"Content-Type": "application/json"}


class Tally:
    def __init__(self) -> None:
        self.accepted_latency: list[float] = []
        self.accepted_alerts = 0
        self.last_answer = 0.0
        self.statuses: dict[int, int] = {}
        self.errors: dict[str, int] = {}

    def add(self, status: int, alerts: int, latency: float) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.last_answer = time.perf_counter()
        if status == 200:
            self.accepted_alerts += alerts
            self.accepted_latency.append(latency)


def _request(port: int, body: bytes) -> bytes:
    head = (
        f"POST /api/v2/alerts HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


async def _post(port: int, request: bytes, n: int, t: Tally) -> None:
    """One request on its own connection; the answer's status is all that is read."""
    started = time.perf_counter()
    writer = None
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        status_line = await reader.readline()
        t.add(int(status_line.split()[1]), n, time.perf_counter() - started)
    except (OSError, IndexError, ValueError) as err:
        name = type(err).__name__
        t.errors[name] = t.errors.get(name, 0) + 1
    finally:
        if writer is not None:
            writer.close()


async def capacity(port: int, requests: list[tuple[bytes, int]], seconds: float) -> float:
    """Closed loop over 4 connections: alerts/s answered 200."""
    t = Tally()
    deadline = time.monotonic() + seconds

    async def worker(i: int) -> None:
        k = i
        while time.monotonic() < deadline:
            request, n = requests[k % len(requests)]
            await _post(port, request, n, t)
            k += 4

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(4)))
    return t.accepted_alerts / (time.perf_counter() - started)


async def overload(
    port: int, requests: list[tuple[bytes, int]], rate: float, seconds: float, connections: int
) -> tuple[Tally, float, int]:
    """Alerts at `rate` per second for `seconds`, open loop; (tally, elapsed, offered)."""
    t = Tally()
    room = asyncio.Semaphore(connections)
    tasks: set[asyncio.Task[None]] = set()

    async def one(request: bytes, n: int) -> None:
        async with room:
            await _post(port, request, n, t)

    started = time.perf_counter()
    offered = k = 0
    while (now := time.perf_counter() - started) < seconds:
        while offered < now * rate:
            request, n = requests[k % len(requests)]
            task = asyncio.ensure_future(one(request, n))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            offered += n
            k += 1
        await asyncio.sleep(0.005)
    await asyncio.gather(*tasks)
    return t, max(t.last_answer - started, seconds), offered


def _start_daemon(config: str | None, workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = pick_free_port()
    args = [
        sys.executable,
        "-m",
        "stormwatch.cli",
        "run",
        "--listen",
        f"127.0.0.1:{port}",
        "--incidents-jsonl",
        str(workdir / "incidents.jsonl"),
        "--log-level",
        "warning",
    ]
    if config:
        args += ["--config", config]
    log = (workdir / "daemon.log").open("wb")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    sys.exit(f"the daemon did not listen within 30 s; see {workdir / 'daemon.log'}")


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="overload-"))
    proc, port = _start_daemon(args.config, workdir)
    try:
        bodies = bodies_for(args.alerts, args.batch, 300.0)
        requests = [(_request(port, b), len(json.loads(b))) for b in bodies]
        cap = await capacity(port, requests, args.probe)
        cpu = cpu_seconds(proc.pid)
        t, elapsed, offered = await overload(
            port, requests, cap * args.factor, args.seconds, args.connections
        )
        cpu = cpu_seconds(proc.pid) - cpu
        q = (
            statistics.quantiles(t.accepted_latency, n=100)
            if len(t.accepted_latency) > 1
            else [0.0] * 99
        )
        return {
            "capacity_alerts_per_s": round(cap),
            "factor": args.factor,
            "seconds": round(elapsed, 1),
            "alerts_per_request": round(sum(n for _, n in requests) / len(requests)),
            "offered_alerts_per_s": round(offered / args.seconds),
            "goodput_alerts_per_s": round(t.accepted_alerts / elapsed),
            "accepted_batches": len(t.accepted_latency),
            "accepted_latency_s": {
                "p50": round(q[49], 3),
                "p99": round(q[98], 3),
                "max": round(max(t.accepted_latency, default=0.0), 3),
            },
            "statuses": dict(sorted(t.statuses.items())),
            "answered_per_s": round(sum(t.statuses.values()) / elapsed),
            "daemon_cpu_share": round(cpu / elapsed, 2),
            "client_errors": t.errors,
            "daemon_peak_rss_mb": round(status_kib(proc.pid, "VmHWM") / 1024),
            "daemon_rss_end_mb": round(status_kib(proc.pid, "VmRSS") / 1024),
        }
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--factor", type=float, default=10, help="offered load / capacity")
    p.add_argument("--batch", type=int, default=1000, help="at most this many alerts a request")
    p.add_argument("--connections", type=int, default=1200, help="at most this many at once")
    p.add_argument("--probe", type=float, default=5, help="seconds of the capacity phase")
    p.add_argument("--alerts", type=int, default=200_000, help="distinct alerts sent")
    p.add_argument("--config", help="a config file for the daemon (default: embedded)")
    args = p.parse_args()
    result = asyncio.run(main_async(args))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
