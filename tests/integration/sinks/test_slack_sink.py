"""The Slack sink against a fake of the Web API: one message per incident, edited."""

from __future__ import annotations

import pytest

from sinks import Refs, RemoteStore, SinkContext, SlackSink, SlackSinkConfig
from stormwatch.errors import SinkError
from tests.fakes.slack import FakeSlack
from tests.support_sinks import deliver_all, deliver_retrying, incident_event, lifecycle

CHANNEL = "C0123456789"


def sink(fake: FakeSlack, store: RemoteStore | None = None, **kw: object) -> tuple[SlackSink, Refs]:
    ctx = SinkContext(incident_url="https://sw.example/incidents/{key}")
    if store is not None:
        ctx.refs = Refs(store, "chat")
    cfg = SlackSinkConfig(
        name="chat", channel=CHANNEL, token="xoxb-test", api_url=fake.url, timeout=2, **kw
    )  # type: ignore[arg-type]
    return SlackSink(cfg, ctx), ctx.refs


async def test_one_message_per_incident_edited_as_it_changes(
    slack: FakeSlack, store: RemoteStore
) -> None:
    s, refs = sink(slack, store)
    await deliver_all(s, refs, lifecycle("inc-q"))
    await s.close()
    (msg,) = slack.top()
    assert msg["text"].startswith(":white_check_mark: [P1] checkout: 5 alerts") and msg[
        "text"
    ].endswith("resolved")
    assert msg["edits"] == 3 and msg["metadata"]["event_payload"]["incident_key"] == "inc-q"
    assert "<https://sw.example/incidents/inc-q|inc-q>" in msg["blocks"][1]["elements"][0]["text"]
    assert [r["text"] for r in slack.replies(msg["ts"])] == [
        "Acknowledged by ada",
        "Resolved: resolved",
    ]


@pytest.mark.parametrize("kind", ["post", "update", "reply"])
async def test_a_lost_answer_never_posts_twice(
    slack: FakeSlack, store: RemoteStore, kind: str
) -> None:
    s, refs = sink(slack, store)
    slack.faults.lose[kind] = 1
    for event in lifecycle("inc-q"):
        await deliver_retrying(s, refs, event)
    await s.close()
    assert slack.faults.lose[kind] == 0
    (msg,) = slack.top()
    assert msg["text"].endswith("resolved")
    assert [r["text"] for r in slack.replies(msg["ts"])] == [
        "Acknowledged by ada",
        "Resolved: resolved",
    ]


async def test_a_deleted_message_is_posted_again(slack: FakeSlack) -> None:
    s, refs = sink(slack, thread_replies=False)
    await deliver_all(s, refs, [incident_event("opened", 1, key="inc-d")])
    slack.messages.clear()
    await deliver_all(s, refs, [incident_event("updated", 2, key="inc-d", severity="P1")])
    await s.close()
    (msg,) = slack.top()
    assert "[P1]" in msg["text"]


async def test_slack_errors_are_classified(slack: FakeSlack) -> None:
    s = SlackSink(
        SlackSinkConfig(name="chat", channel="C999", token="xoxb-test", api_url=slack.url)
    )
    with pytest.raises(SinkError) as info:
        await s.deliver(incident_event("opened", 1, key="inc-e"))
    assert not info.value.retryable and "channel_not_found" in str(info.value)
    slack.script = [(429, {"Retry-After": "3"})]
    ok, _ = sink(slack)
    with pytest.raises(SinkError) as info:
        await ok.deliver(incident_event("opened", 1, key="inc-e"))
    assert info.value.retryable and info.value.retry_after_s == 3
    slack.faults.down = True
    with pytest.raises(SinkError) as info:
        await ok.deliver(incident_event("opened", 1, key="inc-e"))
    assert info.value.retryable and "service_unavailable" in str(info.value)
    await s.close()
    await ok.close()
