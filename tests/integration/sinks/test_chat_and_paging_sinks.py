"""Opsgenie and Slack sinks against fakes that behave as their APIs are documented."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer

from sinks import (
    OpsgenieSink,
    OpsgenieSinkConfig,
    Retrying,
    RetryPolicy,
    SlackSink,
    SlackSinkConfig,
)
from sinks.opsgenie import build_opsgenie_request
from stormwatch.errors import SinkError
from tests.fakes.opsgenie import FakeOpsgenie
from tests.fakes.webhook import FakeWebhook, Reply, serve_fake
from tests.support_sinks import incident_event
from tests.unit.sinks.test_base_and_retry import STATUS_TABLE

FAST = RetryPolicy(initial_backoff=0.001, max_backoff=0.01, max_attempts=4)
LIFECYCLE = (("opened", 1), ("updated", 2), ("updated", 3), ("resolved", 4))


@pytest.fixture
async def og() -> AsyncIterator[FakeOpsgenie]:
    fake = FakeOpsgenie()
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    fake.url = str(server.make_url(""))
    yield fake
    await server.close()


async def test_opsgenie_one_incident_is_one_alert_noted_and_closed(og: FakeOpsgenie) -> None:
    s = Retrying(OpsgenieSink(OpsgenieSinkConfig(name="og", api_key="k-123", url=og.url)), FAST)
    for kind, seq in LIFECYCLE:
        await s.deliver(incident_event(kind, seq, key="inc-abc"))
    await s.close()
    assert og.created == 1
    assert og.alerts["inc-abc"]["status"] == "closed"
    assert len(og.alerts["inc-abc"]["notes"]) == 2
    assert [p for p, _ in og.requests] == [
        "/v2/alerts",
        "/v2/alerts/inc-abc/notes?identifierType=alias",
        "/v2/alerts/inc-abc/notes?identifierType=alias",
        "/v2/alerts/inc-abc/close?identifierType=alias",
    ]


async def test_opsgenie_retries_429_and_refuses_a_bad_key(og: FakeOpsgenie) -> None:
    og.script = [429, 503]
    s = Retrying(OpsgenieSink(OpsgenieSinkConfig(name="og", api_key="k-123", url=og.url)), FAST)
    receipt = await s.deliver(incident_event("opened", 1, key="inc-r"))
    assert receipt.status == 202 and receipt.detail  # the requestId
    assert og.created == 1
    wrong = Retrying(OpsgenieSink(OpsgenieSinkConfig(name="og", api_key="nope", url=og.url)), FAST)
    with pytest.raises(SinkError) as info:
        await wrong.deliver(incident_event("opened", 1, key="inc-s"))
    assert info.value.status == 401 and not info.value.retryable
    await s.close()
    await wrong.close()


def test_opsgenie_create_body_respects_the_limits() -> None:
    long_title = incident_event("opened", 1, key="inc-l")
    long_title.incident.title = "x" * 300
    path, body = build_opsgenie_request(long_title, OpsgenieSinkConfig(name="og", api_key="k"))
    assert path == "/v2/alerts"
    assert len(body["message"]) <= 130 and body["alias"] == "inc-l" and body["priority"] == "P2"
    assert all(isinstance(v, str) for v in body["details"].values())


@pytest.mark.parametrize(("status", "outcome"), STATUS_TABLE)
async def test_opsgenie_and_slack_follow_the_status_table(status: int, outcome: str) -> None:
    async with serve_fake(FakeWebhook(default=Reply(status))) as fake:
        for s in (
            OpsgenieSink(
                OpsgenieSinkConfig(name="og", api_key="k", url=fake.url.removesuffix("/hook"))
            ),
            SlackSink(SlackSinkConfig(name="slack", webhook_url=fake.url)),
        ):
            try:
                if outcome == "ok":
                    assert (await s.deliver(incident_event())).status == status
                else:
                    with pytest.raises(SinkError) as info:
                        await s.deliver(incident_event())
                    assert info.value.retryable is (outcome == "retryable")
            finally:
                await s.close()


async def test_slack_posts_when_an_incident_opens_and_resolves_only() -> None:
    async with serve_fake(FakeWebhook()) as fake:
        s = SlackSink(
            SlackSinkConfig(name="slack", webhook_url=fake.url, incident_url="https://sw/i/{key}")
        )
        for kind, seq in LIFECYCLE:
            await s.deliver(incident_event(kind, seq, key="inc-q"))
        await s.close()
    texts = [r.body["text"] for r in fake.requests]
    assert len(texts) == 2
    assert texts[0].startswith(":large_orange_circle: [P2] checkout: 5 alerts") and texts[
        0
    ].endswith("opened")
    assert texts[1].startswith(":white_check_mark:") and texts[1].endswith("resolved")
    assert "<https://sw/i/inc-q|inc-q>" in fake.requests[0].body["blocks"][1]["elements"][0]["text"]
