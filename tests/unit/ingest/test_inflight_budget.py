"""Overload: a request that does not fit the in-flight budget (alerts and bytes) is
refused with 429 before its body is read, and the budget holds under a crowd."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from correlate import Engine
from correlate.delta import StateDelta
from ingest.body import BodyLimits
from ingest.limits import InflightBudget, estimate_alerts
from rules import RuleSet
from stormwatch.errors import Overloaded
from stormwatch.metrics import Metrics
from stormwatch.pipeline import Pipeline
from stormwatch.wire import Duration, IncidentEvent
from tests.support import alert
from tests.unit.ingest.rawhttp import raw_exchange
from tests.unit.ingest.test_http_source import JSON, Recorder, _post, build

LIMITS = BodyLimits(max_bytes=1 << 20, timeout=Duration(5), max_depth=16)


async def until(what: str, check: Any) -> None:
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never: {what}")


def body(n: int) -> bytes:
    return json.dumps([{"labels": {"alertname": f"a{i}"}} for i in range(n)]).encode()


def test_the_budget_refuses_what_does_not_fit_and_takes_a_lone_request_whatever_its_size() -> None:
    budget = InflightBudget(max_alerts=10, max_bytes=1000)
    big = budget.reserve(50, 5000)  # alone: taken (the body limit bounds it)
    with pytest.raises(Overloaded):
        budget.reserve(1, 1)
    big.release()
    big.release()  # twice is once
    a = budget.reserve(6, 400)
    with pytest.raises(Overloaded, match="queue_max_alerts 10"):
        budget.reserve(5, 100)
    with pytest.raises(Overloaded):
        budget.reserve(1, 700)
    b = budget.reserve(4, 600)
    b.resize(2, 100)
    with pytest.raises(Overloaded):
        b.resize(5, 100)  # grew past the budget once decoded: refused, hold released
    assert (budget.alerts, budget.bytes, budget.tickets) == (6, 400, 1)
    a.release()
    assert (budget.alerts, budget.bytes, budget.tickets) == (0, 0, 0)


def test_the_estimate_counts_compressed_bodies_larger() -> None:
    assert estimate_alerts(3000) == 10
    assert estimate_alerts(3000, "gzip") == 80
    assert estimate_alerts(10) == 1


@pytest.fixture
async def held() -> AsyncIterator[tuple[TestClient[Any, Any], Recorder, InflightBudget]]:
    """A server whose submit blocks until `recorder.gate` is set: what it takes stays in
    flight, as batches waiting for a busy correlator do."""
    recorder, metrics = Recorder(), Metrics()
    recorder.gate = asyncio.Event()
    budget = InflightBudget(max_alerts=10, max_bytes=64 * 1024)
    async with TestClient(build(recorder, metrics, limits=LIMITS, budget=budget)) as client:
        yield client, recorder, budget
        recorder.gate.set()


async def test_a_full_budget_refuses_before_the_body_is_read(held: Any) -> None:
    client, recorder, budget = held
    first = asyncio.ensure_future(client.post("/api/v2/alerts", data=body(10), headers=JSON))
    await until("the first decoded and waiting in submit", lambda: budget.alerts == 10)
    # Headers declaring 500 kB, and no body at all: reading it would wait for the body
    # timeout (5 s, then 408); refusing before reading answers at once.
    request = _post("/api/v2/alerts", b"", **{"Content-Length": "500000"})
    (resp,) = await raw_exchange(client.server, request, answers=1, keep_open=True, timeout=3)
    assert resp.status == 429
    assert resp.headers["retry-after"] == "1" and resp.headers["connection"] == "close"
    assert json.loads(resp.body)["error"] == "overloaded"
    recorder.gate.set()
    assert (await first).status == 200
    assert [len(b) for b in recorder.batches] == [10]
    assert (budget.alerts, budget.bytes, budget.tickets) == (0, 0, 0)


async def test_the_budget_in_alerts_and_bytes_holds_under_a_crowd(held: Any) -> None:
    client, recorder, budget = held
    peak = {"alerts": 0, "bytes": 0}

    async def watch() -> None:
        while True:
            peak["alerts"] = max(peak["alerts"], budget.alerts)
            peak["bytes"] = max(peak["bytes"], budget.bytes)
            await asyncio.sleep(0)

    watcher = asyncio.ensure_future(watch())
    posts = [
        asyncio.ensure_future(client.post("/api/v2/alerts", data=body(3), headers=JSON))
        for _ in range(20)
    ]
    # All but the three that fit are refused.
    await until("17 answers", lambda: sum(p.done() for p in posts) == 17)
    refused = [p.result().status for p in posts if p.done()]
    assert refused == [429] * 17
    assert budget.alerts == 9 and peak["alerts"] <= 10 and peak["bytes"] <= 64 * 1024
    recorder.gate.set()
    statuses = [(await p).status for p in posts]
    watcher.cancel()
    assert statuses.count(200) == 3 and [len(b) for b in recorder.batches] == [3, 3, 3]
    assert budget.tickets == 0


async def test_the_queue_is_bounded_in_alerts_for_every_source() -> None:
    release = asyncio.Event()

    async def slow_commit(events: list[IncidentEvent], delta: StateDelta) -> None:
        await release.wait()

    pipeline = Pipeline(Engine(RuleSet(rules=())), slow_commit, Metrics(), max_queued_alerts=5)
    runner = asyncio.ensure_future(pipeline.run())
    taken = [asyncio.ensure_future(pipeline.submit([alert(f"a{i}") for i in range(3)]))]
    await asyncio.sleep(0)
    with pytest.raises(Overloaded, match="queue_max_alerts"):
        await pipeline.submit([alert(f"b{i}") for i in range(3)])
    taken.append(asyncio.ensure_future(pipeline.submit([alert("c0"), alert("c1")])))
    await until("both queued", lambda: pipeline.queued_alerts == 5)
    release.set()
    await asyncio.gather(*taken)
    assert pipeline.queued_alerts == 0
    runner.cancel()
