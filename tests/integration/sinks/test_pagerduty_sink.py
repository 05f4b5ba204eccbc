"""The PagerDuty sink against a fake of the Events API v2 that behaves as documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from sinks import PagerDutySink, PagerDutySinkConfig, Refs, RemoteStore, SinkContext
from sinks.pagerduty import build_pagerduty_event
from stormwatch.errors import ConfigError, SinkError
from tests.fakes.pagerduty import FakePagerDuty
from tests.fakes.webhook import FakeWebhook, Reply, serve_fake
from tests.support_sinks import deliver_all, deliver_retrying, incident_event, lifecycle
from tests.unit.sinks.test_base_and_retry import STATUS_TABLE

KEY = "R0123456789ABCDEF0123456789ABCDE"


def sink(url: str, store: RemoteStore | None = None, **kw: object) -> tuple[PagerDutySink, Refs]:
    ctx = SinkContext(incident_url="https://sw.example/incidents/{key}")
    if store is not None:
        ctx.refs = Refs(store, "pd")
    cfg = PagerDutySinkConfig(name="pd", routing_key=KEY, url=url, **kw)  # type: ignore[arg-type]
    return PagerDutySink(cfg, ctx), ctx.refs


async def test_one_incident_is_one_alert_that_follows_it(
    pd: FakePagerDuty, store: RemoteStore
) -> None:
    s, refs = sink(pd.url, store)
    await deliver_all(s, refs, lifecycle("inc-7f3c9a1e2b"))
    await s.close()
    assert pd.alerts_created == 1
    (alert,) = pd.alerts["inc-7f3c9a1e2b"]
    assert alert["status"] == "resolved"
    assert alert["severity"] == "critical" and alert["summary"].startswith("[P1] ")  # escalated
    actions = [r["event_action"] for r in pd.requests]
    assert actions == ["trigger", "trigger", "trigger", "acknowledge", "resolve"]


async def test_429_and_5xx_are_retried_with_the_same_dedup_key(pd: FakePagerDuty) -> None:
    pd.script = [(429, {"Retry-After": "0"}), (503, {})]
    s, refs = sink(pd.url)
    failures = await deliver_retrying(s, refs, incident_event("opened", 1, key="inc-a"))
    await s.close()
    assert failures == 2
    assert [r["dedup_key"] for r in pd.requests] == ["inc-a"] * 3
    assert pd.alerts_created == 1


async def test_an_invalid_event_is_permanent(pd: FakePagerDuty) -> None:
    s = PagerDutySink(PagerDutySinkConfig(name="pd", routing_key="short", url=pd.url))
    with pytest.raises(SinkError) as info:
        await s.deliver(incident_event("opened", 1))
    await s.close()
    assert not info.value.retryable and info.value.status == 400
    assert "routing_key" in str(info.value)  # the vendor's error, for the dead letter


async def test_a_lost_resolve_answer_and_a_replayed_opened_never_reopen_it(
    pd: FakePagerDuty, store: RemoteStore
) -> None:
    s, refs = sink(pd.url, store)
    await deliver_all(s, refs, [incident_event("opened", 1, key="inc-r")])
    pd.faults.lose["resolve"] = 1
    assert await deliver_retrying(s, refs, incident_event("resolved", 2, key="inc-r")) == 1
    again, _ = sink(pd.url, store)  # a restart: a new process, the same records
    await again.deliver(incident_event("opened", 1, key="inc-r"))  # a stale replay
    await s.close()
    await again.close()
    assert len(pd.alerts["inc-r"]) == 1 and pd.state("inc-r") == "resolved"


async def test_a_resolved_it_never_had_is_triggered_then_resolved(pd: FakePagerDuty) -> None:
    s, refs = sink(pd.url)
    await deliver_all(s, refs, [incident_event("resolved", 3, key="inc-late")])
    await s.close()
    assert [r["event_action"] for r in pd.requests] == ["trigger", "resolve"]
    assert pd.state("inc-late") == "resolved" and pd.alerts_created == 1


def test_trigger_body_follows_the_events_api_with_labels_and_a_link() -> None:
    cfg = PagerDutySinkConfig(
        name="pd", routing_key=KEY, group_label="service", class_label="alertname"
    )
    event = incident_event("opened", 1, key="inc-k", alerts=1)
    body = build_pagerduty_event(event, KEY, cfg, link="https://sw.example/incidents/inc-k")
    assert (body["routing_key"], body["event_action"], body["dedup_key"]) == (
        KEY,
        "trigger",
        "inc-k",
    )
    p = body["payload"]
    assert (
        p["severity"] == "error" and p["source"] == "checkout" and p["summary"].startswith("[P2] ")
    )
    assert (p["component"], p["group"], p["class"]) == ("checkout", "checkout", "A0")
    assert p["custom_details"]["alert_count"] == 1
    assert body["client_url"] == "https://sw.example/incidents/inc-k"
    assert body["links"][0] == {
        "href": "https://sw.example/incidents/inc-k",
        "text": "stormwatch incident",
    }
    resolve = build_pagerduty_event(incident_event("resolved", 2, key="inc-k"), KEY, cfg)
    assert resolve == {"routing_key": KEY, "event_action": "resolve", "dedup_key": "inc-k"}


async def test_a_compact_update_is_enough_to_trigger(pd: FakePagerDuty) -> None:
    s, refs = sink(pd.url)
    await deliver_all(
        s, refs, [incident_event("updated", 2, key="inc-c", alerts=7, compact=True, severity="P1")]
    )
    await s.close()
    (alert,) = pd.alerts["inc-c"]
    assert alert["severity"] == "critical" and "(7 alerts)" in alert["summary"]
    assert alert["payload"]["class"] == "service-alert-burst"  # no alert listed: the rule


@pytest.mark.parametrize(("status", "outcome"), STATUS_TABLE)
async def test_every_status_through_the_real_client(status: int, outcome: str) -> None:
    body = {"status": "success"} if status < 300 else {"status": "error"}
    async with serve_fake(FakeWebhook(default=Reply(status, body=body))) as fake:
        s = PagerDutySink(PagerDutySinkConfig(name="pd", routing_key=KEY, url=fake.url))
        try:
            if outcome == "ok":
                assert (await s.deliver(incident_event())).status == status
            else:
                with pytest.raises(SinkError) as info:
                    await s.deliver(incident_event())
                assert info.value.retryable is (outcome == "retryable")
        finally:
            await s.close()


def test_routing_key_from_a_file_and_exactly_one_of_the_two(tmp_path: Path) -> None:
    secret = tmp_path / "pd"
    secret.write_text(KEY + "\n")
    assert PagerDutySinkConfig(name="pd", routing_key_file=str(secret)).key() == KEY
    with pytest.raises(ConfigError, match="exactly one of routing_key and routing_key_file"):
        PagerDutySinkConfig(name="pd", routing_key=KEY, routing_key_file=str(secret)).key()
    assert KEY not in repr(PagerDutySinkConfig(name="pd", routing_key=KEY))
