"""The HTTP status mapping and the hardening, through a real aiohttp server and client."""

from __future__ import annotations

import asyncio
import gzip
import json
import zlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ingest.body import BodyLimits
from ingest.intake import Intake
from stormwatch.errors import Overloaded
from stormwatch.metrics import Metrics
from stormwatch.wire import Alert, Duration
from tests.unit.ingest.rawhttp import raw_exchange

GOOD = b'[{"labels": {"alertname": "a", "service": "s"}}, {"labels": {"alertname": "b"}}]'
JSON = {"Content-Type": "application/json"}
LIMITS = BodyLimits(max_bytes=1024, timeout=Duration(0.3), max_depth=16)


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


class IngestTestServer(TestServer):
    """aiohttp's TestServer with the daemon's server options (TestServer drops its own
    keyword arguments, and cancels handlers on disconnect, which the daemon does not)."""

    def __init__(self, app: web.Application, options: Mapping[str, Any]) -> None:
        super().__init__(app)
        self.options = options

    async def _make_runner(self, **kwargs: Any) -> web.AppRunner:
        return web.AppRunner(self.app, **{**kwargs, "handler_cancellation": False, **self.options})


def build(recorder: Recorder, metrics: Metrics, **intake: Any) -> TestServer:
    """The ingest routes behind the guard, plus an API route and one that crashes."""
    it = Intake(recorder, metrics, limits=intake.pop("limits", LIMITS), **intake)

    async def incidents(_: web.Request) -> web.Response:
        return web.json_response([])

    async def crash(_: web.Request) -> web.Response:
        raise ZeroDivisionError

    app = web.Application(middlewares=[it.guard])
    app.add_routes(it.http.routes())
    app.add_routes([web.get("/api/v1/incidents", incidents), web.get("/crash", crash)])
    return IngestTestServer(app, it.server_options)


@pytest.fixture
async def setup() -> AsyncIterator[tuple[TestClient[Any, Any], Recorder, Metrics]]:
    recorder, metrics = Recorder(), Metrics()
    async with TestClient(build(recorder, metrics)) as client:
        yield client, recorder, metrics


def rejected(metrics: Metrics, reason: str, source: str = "alertmanager") -> float | None:
    return metrics.registry.get_sample_value(
        "stormwatch_alerts_rejected_total", {"source": source, "reason": reason}
    )


async def test_good_batch_is_submitted_whole_and_answered_200(setup: Any) -> None:
    client, recorder, metrics = setup
    resp = await client.post("/api/v2/alerts", data=GOOD, headers=JSON)
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
    for _ in range(20):  # let the request reach the gate; it must still be waiting there
        await asyncio.sleep(0)
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
        (b"[" * 17 + b"]" * 17, "application/json", 400, "too_deep"),
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
    assert rejected(metrics, error) == 1


async def test_deep_nesting_is_400_naming_the_limit_not_500(setup: Any) -> None:
    client, _, metrics = setup
    for route in ("/api/v2/alerts", "/webhook/wazuh", "/webhook/generic"):
        resp = await client.post(route, data=b"[" * 500 + b"]" * 500, headers=JSON)
        assert resp.status == 400
        body = await resp.json()
        assert body["error"] == "too_deep" and "max_json_depth" in body["message"]
    assert (
        metrics.registry.get_sample_value("stormwatch_http_server_errors_total", {"status": "500"})
        == 0
    )


async def test_chunked_body_over_the_limit_is_413(setup: Any) -> None:
    client, recorder, _ = setup

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 512

    resp = await client.post("/api/v2/alerts", data=chunks(), headers=JSON)
    assert resp.status == 413
    assert resp.headers["Connection"] == "close"
    assert recorder.batches == []


async def test_a_chunked_body_over_the_limit_sent_whole_is_413(setup: Any) -> None:
    # All of it in one write: the server has the whole body before the handler reads it.
    client, recorder, _ = setup
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    chunk = b"x" * 512
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(4)) + b"0\r\n\r\n"
    writer.write(
        b"POST /api/v2/alerts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + body
    )
    await writer.drain()
    status = await reader.readline()
    writer.close()
    assert status.split()[1] == b"413"
    assert recorder.batches == []


@pytest.mark.parametrize("coding", ["gzip", "x-gzip", "deflate", "deflate-raw", "identity"])
async def test_compressed_bodies_are_decoded(setup: Any, coding: str) -> None:
    client, recorder, _ = setup
    body = {
        "gzip": gzip.compress(GOOD),
        "x-gzip": gzip.compress(GOOD),
        "deflate": zlib.compress(GOOD),
        "deflate-raw": zlib.compress(GOOD)[2:-4],  # some senders leave out zlib's wrapper
        "identity": GOOD,
    }[coding]
    header = "deflate" if coding == "deflate-raw" else coding
    resp = await client.post(
        "/api/v2/alerts", data=body, headers={**JSON, "Content-Encoding": header}
    )
    assert resp.status == 200, await resp.text()
    assert len(recorder.batches[0]) == 2


async def test_the_size_limit_applies_after_decompression(setup: Any) -> None:
    client, recorder, metrics = setup
    bomb = gzip.compress(b"[" + b" " * 1_000_000 + b"]")  # ~1 KB compressed, 1 MB inflated
    assert len(bomb) < LIMITS.max_bytes
    resp = await client.post(
        "/api/v2/alerts", data=bomb, headers={**JSON, "Content-Encoding": "gzip"}
    )
    assert resp.status == 413 and (await resp.json())["error"] == "too_large"
    assert recorder.batches == [] and rejected(metrics, "too_large") == 1


@pytest.mark.parametrize(
    ("coding", "body", "status", "error"),
    [
        ("gzip", b"not gzip at all", 400, "invalid_encoding"),
        ("gzip", gzip.compress(GOOD)[:-8], 400, "invalid_encoding"),  # truncated
        ("br", GOOD, 415, "unsupported_media_type"),
        ("zstd", GOOD, 415, "unsupported_media_type"),
        ("compress", GOOD, 415, "unsupported_media_type"),
    ],
)
async def test_undecodable_or_unknown_encodings(
    setup: Any, coding: str, body: bytes, status: int, error: str
) -> None:
    client, _, metrics = setup
    resp = await client.post(
        "/api/v2/alerts", data=body, headers={**JSON, "Content-Encoding": coding}
    )
    assert resp.status == status
    payload = await resp.json()
    assert payload["error"] == error
    if status == 415:
        assert payload["field"] == "Content-Encoding"
    assert rejected(metrics, error) == 1


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"labels": {"a": "b"}, "startsAt": -1}, "$[0].startsAt"),
        ({"labels": {"a": "b"}, "startsAt": 1e300}, "$[0].startsAt"),
        ({"labels": {"a": "b"}, "endsAt": 1e308}, "$[0].endsAt"),
        ({"labels": {"a": "b"}, "startsAt": 2000, "endsAt": 1000}, "$[0].endsAt"),
        ({"labels": {"a": "b"}, "starts_at": "1969-12-31T23:59:59Z"}, "$[0].starts_at"),
    ],
)
async def test_times_out_of_range_are_400_naming_the_field(
    setup: Any, item: dict[str, Any], field: str
) -> None:
    client, recorder, _ = setup
    resp = await client.post("/webhook/generic", data=json.dumps([item]), headers=JSON)
    assert resp.status == 400
    assert (await resp.json())["field"] == field
    assert recorder.batches == []


async def test_alertmanager_times_more_than_a_day_ahead_are_refused(setup: Any) -> None:
    client, _, _ = setup
    body = json.dumps([{"labels": {"a": "b"}, "startsAt": "2199-01-01T00:00:00Z"}])
    resp = await client.post("/api/v2/alerts", data=body, headers=JSON)
    assert resp.status == 400 and (await resp.json())["field"] == "$[0].startsAt"


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


async def test_unknown_routes_and_methods_answer_json(setup: Any) -> None:
    client, _, _ = setup
    resp = await client.get("/no/such/route")
    assert resp.status == 404 and (await resp.json())["error"] == "not_found"
    resp = await client.get("/api/v2/alerts")
    assert resp.status == 405 and "POST" in resp.headers["Allow"]
    assert (await resp.json())["error"] == "method_not_allowed"


async def test_rejection_logs_are_rate_limited(setup: Any) -> None:
    from structlog.testing import capture_logs

    client, _, _ = setup
    with capture_logs() as logs:
        for _ in range(5):
            await client.post("/api/v2/alerts", data=b"[{", headers=JSON)
    rejected_lines = [e for e in logs if e["event"] == "alert_rejected"]
    assert len(rejected_lines) == 1
    assert rejected_lines[0]["reason"] == "invalid_json"


async def test_every_5xx_is_counted_and_json(setup: Any) -> None:
    client, recorder, metrics = setup
    recorder.broken = True
    resp = await client.post("/api/v2/alerts", data=GOOD, headers=JSON)
    assert resp.status == 500
    assert (await resp.json())["error"] == "internal"
    resp = await client.get("/crash")
    assert resp.status == 500 and (await resp.json())["error"] == "internal"
    errors = metrics.registry.get_sample_value(
        "stormwatch_http_server_errors_total", {"status": "500"}
    )
    assert errors == 2
    assert rejected(metrics, "internal") == 1
    recorder.broken = False
    assert (await client.post("/api/v2/alerts", data=GOOD, headers=JSON)).status == 200


# -- one TCP connection at a time: what a client sees on the wire ------------------------


def _post(path: str, body: bytes, **headers: str) -> bytes:
    head = {"Host": "x", "Content-Type": "application/json", "Content-Length": str(len(body))}
    head.update(headers)
    lines = "".join(f"{k}: {v}\r\n" for k, v in head.items())
    return f"POST {path} HTTP/1.1\r\n{lines}\r\n".encode() + body


async def test_an_error_after_the_whole_body_keeps_the_connection_usable(setup: Any) -> None:
    client, _, _ = setup
    two = _post("/api/v2/alerts", b"[{") + _post("/api/v2/alerts", GOOD)
    first, second = await raw_exchange(client.server, two, answers=2)
    assert first.status == 400 and first.headers.get("connection") != "close"
    assert second.status == 200


async def test_an_error_before_the_body_is_read_says_connection_close(setup: Any) -> None:
    client, _, _ = setup
    half = _post("/api/v2/alerts", b"", **{"Content-Type": "text/xml", "Content-Length": "600"})
    (resp,) = await raw_exchange(client.server, half + b"x" * 300, answers=1, keep_open=True)
    assert resp.status == 415
    assert resp.headers["connection"] == "close"  # the rest of the body never came


async def test_a_connection_the_server_closes_was_announced(setup: Any) -> None:
    client, _, _ = setup
    for request in (
        _post("/api/v2/alerts", b"x" * 600, **{"Content-Type": "text/xml"}),
        _post("/webhook/nagios", b"{}"),
        _post("/api/v2/alerts", b"[{"),
        _post("/api/v2/alerts", b"x" * 5000),
    ):
        answers = await raw_exchange(
            client.server, request + _post("/api/v2/alerts", GOOD), answers=2, check_close=True
        )
        first = answers[0]
        if first.closed_after:
            assert first.headers.get("connection") == "close", first
        else:
            assert answers[1].status == 200


async def test_a_huge_declared_body_gets_413_and_connection_close(setup: Any) -> None:
    client, recorder, _ = setup
    request = _post("/api/v2/alerts", b"", **{"Content-Length": str(100 * 1024 * 1024)})
    (resp,) = await raw_exchange(client.server, request + b"[" * 65536, answers=1)
    assert resp.status == 413
    assert resp.headers["connection"] == "close"
    assert json.loads(resp.body)["error"] == "too_large"
    assert recorder.batches == []


async def test_a_stalled_body_times_out_with_408(setup: Any) -> None:
    client, recorder, metrics = setup
    request = _post("/api/v2/alerts", b"", **{"Content-Length": "500"}) + b'[{"labels":'
    (resp,) = await raw_exchange(client.server, request, answers=1, keep_open=True)
    assert resp.status == 408
    assert resp.headers["connection"] == "close"
    assert json.loads(resp.body)["error"] == "timeout"
    assert recorder.batches == [] and rejected(metrics, "timeout") == 1


async def test_a_client_gone_mid_body_is_counted_and_the_server_goes_on(setup: Any) -> None:
    client, _, metrics = setup
    _, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(_post("/api/v2/alerts", b"", **{"Content-Length": "500"}) + b"[{")
    await writer.drain()
    writer.close()
    deadline = asyncio.get_running_loop().time() + 5
    while rejected(metrics, "incomplete_body") != 1:
        assert asyncio.get_running_loop().time() < deadline, "the cut body was not counted"
        await asyncio.sleep(0.01)
    assert (await client.post("/api/v2/alerts", data=GOOD, headers=JSON)).status == 200
