"""The Opsgenie sink against a fake that processes requests later, as Opsgenie does."""

from __future__ import annotations

import pytest

from sinks import OpsgenieSink, OpsgenieSinkConfig, Refs, RemoteStore, SinkContext
from sinks.opsgenie import build_opsgenie_alert
from stormwatch.errors import SinkError
from tests.fakes.opsgenie import FakeOpsgenie
from tests.fakes.webhook import FakeWebhook, Reply, serve_fake
from tests.support_sinks import deliver_all, deliver_retrying, incident_event, lifecycle
from tests.unit.sinks.test_base_and_retry import STATUS_TABLE


def sink(
    fake: FakeOpsgenie, store: RemoteStore | None = None, key: str = "k-123", **kw: object
) -> tuple[OpsgenieSink, Refs]:
    ctx = SinkContext(incident_url="https://sw.example/incidents/{key}")
    if store is not None:
        ctx.refs = Refs(store, "og")
    cfg = OpsgenieSinkConfig(
        name="og",
        api_key=key,
        url=fake.url,
        request_poll_interval=0.02,
        timeout=2,
        **kw,  # type: ignore[arg-type]
    )
    return OpsgenieSink(cfg, ctx), ctx.refs


async def test_one_incident_is_one_alert_that_follows_it(
    og: FakeOpsgenie, store: RemoteStore
) -> None:
    s, refs = sink(og, store)
    await deliver_all(s, refs, lifecycle("inc-abc"))
    await s.close()
    og.settle()
    (alert,) = og.alerts["inc-abc"]
    assert alert["status"] == "closed" and alert["acknowledged"] and alert["count"] == 1
    assert alert["priority"] == "P1" and alert["message"].startswith("[P1] ")  # escalated
    assert len(alert["notes"]) == 2


async def test_an_accepted_request_is_only_done_once_opsgenie_processed_it(
    og: FakeOpsgenie,
) -> None:
    og.lag = 0.3
    s, refs = sink(og, request_timeout=0.1)
    failures = await deliver_retrying(
        s, refs, incident_event("opened", 1, key="inc-p"), attempts=50
    )
    await s.close()
    assert failures >= 1, "the create counted as done before Opsgenie processed it"
    creates = [r for r in og.requests if r[1] == "/v2/alerts"]
    assert len(creates) == 1, "the pending request was sent again instead of polled"
    assert og.alert("inc-p") is not None and og.created == 1


@pytest.mark.parametrize("kind", ["create", "notes", "close"])
async def test_a_lost_answer_makes_no_twin_and_no_second_note(
    og: FakeOpsgenie, store: RemoteStore, kind: str
) -> None:
    s, refs = sink(og, store)
    og.faults.lose[kind] = 1
    for event in lifecycle("inc-abc"):
        await deliver_retrying(s, refs, event)
    await s.close()
    og.settle()
    assert og.faults.lose[kind] == 0
    (alert,) = og.alerts["inc-abc"]
    assert alert["status"] == "closed" and len(alert["notes"]) == len(set(alert["notes"])) == 2


async def test_a_resolved_it_never_had_is_created_then_closed(og: FakeOpsgenie) -> None:
    s, refs = sink(og)
    await deliver_all(s, refs, [incident_event("resolved", 3, key="inc-l")])
    await s.close()
    og.settle()
    assert [a["status"] for a in og.alerts["inc-l"]] == ["closed"]


def test_create_body_respects_the_limits_and_links_back() -> None:
    event = incident_event("opened", 1, key="inc-l")
    event.incident.title = "x" * 300
    body = build_opsgenie_alert(
        event, OpsgenieSinkConfig(name="og", api_key="k"), "https://sw/i/inc-l"
    )
    assert len(body["message"]) <= 130 and body["alias"] == "inc-l" and body["priority"] == "P2"
    assert all(isinstance(v, str) for v in body["details"].values())
    assert body["details"]["stormwatch"] == "https://sw/i/inc-l"


async def test_a_bad_key_is_permanent(og: FakeOpsgenie) -> None:
    s, _ = sink(og, key="nope")
    with pytest.raises(SinkError) as info:
        await s.deliver(incident_event("opened", 1, key="inc-s"))
    await s.close()
    assert info.value.status == 401 and not info.value.retryable


@pytest.mark.parametrize(("status", "outcome"), STATUS_TABLE)
async def test_the_status_table(status: int, outcome: str) -> None:
    async with serve_fake(FakeWebhook(default=Reply(status, body={}))) as fake:
        s = OpsgenieSink(
            OpsgenieSinkConfig(name="og", api_key="k", url=fake.url.removesuffix("/hook"))
        )
        try:
            if outcome == "ok":
                await s.deliver(incident_event())
            else:
                with pytest.raises(SinkError) as info:
                    await s.deliver(incident_event())
                assert info.value.retryable is (outcome == "retryable")
        finally:
            await s.close()
