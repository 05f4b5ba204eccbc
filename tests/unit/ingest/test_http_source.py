"""The HTTP status mapping, through a real aiohttp server and client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ingest import HttpSource
from stormwatch.errors import Overloaded
from stormwatch.metrics import Metrics
from stormwatch.wire import Alert

GOOD = b'[{"labels": {"alertname": "a", "service": "s"}}, {"labels": {"alertname": "b"}}]'
JSON = {"Content-Type": "application/json"}


class Recorder:
    def __init__(self) -> None:
        self.batches: list[list[Alert]] = []
        self.overloaded = False
        self.broken = False
        self.gate: asyncio.Event | None = None

    async def __call__(self, alerts: list[Alert]) -> None:
        if self.overloaded:
            raise Overloaded(retry_after_s=2.5)
        if self.broken:
            raise RuntimeError("a bug in the correlator")
        if self.gate is not None:
            await self.gate.wait()
        self.batches.append(alerts)


@pytest.fixture
async def setup() -> AsyncIterator[tuple[TestClient[Any, Any], Recorder, Metrics]]:
    recorder, metrics = Recorder(), Metrics()
    app = web.Application()
    app.add_routes(HttpSource(recorder, metrics, max_body_bytes=1024).routes())
    async with TestClient(TestServer(app)) as client:
        yield client, recorder, metrics


async def test_good_batch_is_submitted_whole_and_answered_200(setup: Any) -> None:
    client, recorder, metrics = setup
    resp = await client.post(
        "/api/v2/alerts", data=GOOD, headers={"Content-Type": "application/json"}
    )
    assert resp.status == 200
    assert [a.labels["alertname"] for a in recorder.batches[0]] == ["a", "b"]
    assert (
        metrics.registry.get_sample_value(
            "stormwatch_alerts_received_total", {"source": "alertmanager", "status": "firing"}
        )
        == 2
    )


async def test_200_only_after_submit_returns(setup: Any) -> None:
    client, recorder, _ = setup
    recorder.gate = asyncio.Event()
    request = asyncio.ensure_future(client.post("/api/v2/alerts", data=GOOD, headers=JSON))
    await asyncio.sleep(0.05)
    assert not request.done()
    recorder.gate.set()
    assert (await request).status == 200


@pytest.mark.parametrize(
    ("body", "ctype", "status", "error"),
    [
        (b"[{", "application/json", 400, "invalid_json"),
        (b'[{"labels": {"alertname": 1}}]', "application/json", 400, "invalid_payload"),
        (b"x" * 2048, "application/json", 413, "too_large"),
        (GOOD, "application/xml", 415, "unsupported_media_type"),
    ],
)
async def test_rejections_have_one_shape_and_submit_nothing(
    setup: Any, body: bytes, ctype: str, status: int, error: str
) -> None:
    client, recorder, metrics = setup
    resp = await client.post("/api/v2/alerts", data=body, headers={"Content-Type": ctype})
    assert resp.status == status
    payload = await resp.json()
    assert set(payload) == {"error", "field", "message"}
    assert payload["error"] == error
    assert recorder.batches == []
    assert (
        metrics.registry.get_sample_value(
            "stormwatch_alerts_rejected_total", {"source": "alertmanager", "reason": error}
        )
        == 1
    )


async def test_chunked_body_over_the_limit_is_413(setup: Any) -> None:
    client, recorder, _ = setup

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 512

    resp = await client.post("/api/v2/alerts", data=chunks(), headers=JSON)
    assert resp.status == 413
    assert recorder.batches == []


async def test_overloaded_is_429_with_retry_after(setup: Any) -> None:
    client, recorder, _ = setup
    recorder.overloaded = True
    resp = await client.post("/api/v2/alerts", data=GOOD, headers=JSON)
    assert resp.status == 429
    assert resp.headers["Retry-After"] == "3"
    assert (await resp.json())["error"] == "overloaded"


async def test_webhook_formats_and_unknown_format(setup: Any) -> None:
    client, recorder, _ = setup
    resp = await client.post("/webhook/generic", data=b'{"labels": {"a": "b"}}', headers=JSON)
    assert resp.status == 200
    assert recorder.batches[0][0].source == "generic"
    resp = await client.post("/webhook/nagios", data=b"{}", headers=JSON)
    assert resp.status == 404
    assert (await resp.json())["field"] == "format"


async def test_rejection_logs_are_rate_limited(setup: Any) -> None:
    from structlog.testing import capture_logs

    client, _, _ = setup
    with capture_logs() as logs:
        for _ in range(5):
            await client.post("/api/v2/alerts", data=b"[{", headers=JSON)
    rejected = [e for e in logs if e["event"] == "alert_rejected"]
    assert len(rejected) == 1
    assert rejected[0]["reason"] == "invalid_json"


async def test_a_failing_batch_is_500_json_and_the_server_goes_on(setup: Any) -> None:
    client, recorder, _ = setup
    recorder.broken = True
    resp = await client.post("/api/v2/alerts", data=GOOD, headers=JSON)
    assert resp.status == 500
    assert (await resp.json())["error"] == "internal"
    recorder.broken = False
    assert (await client.post("/api/v2/alerts", data=GOOD, headers=JSON)).status == 200
