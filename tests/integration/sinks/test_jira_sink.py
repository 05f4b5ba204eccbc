"""The Jira sink against a fake of Jira's REST API: eventually consistent search, lost
answers on every kind of request, restarts, people closing issues by hand."""

from __future__ import annotations

import pytest

from sinks import JiraSink, JiraSinkConfig, Refs, RemoteStore, SinkContext
from stormwatch.errors import SinkError
from tests.fakes.jira import FakeJira
from tests.support_sinks import deliver_all, deliver_retrying, incident_event, lifecycle

LABEL = "stormwatch-inc-j"


def sink(fake: FakeJira, store: RemoteStore | None = None, **kw: object) -> tuple[JiraSink, Refs]:
    ctx = SinkContext(incident_url="https://sw.example/incidents/{key}")
    if store is not None:
        ctx.refs = Refs(store, "jira")
    cfg = JiraSinkConfig(
        name="jira",
        url=fake.url,
        project="OPS",
        user="bot@example.com",
        token="tok",
        timeout=2,
        **kw,
    )  # type: ignore[arg-type]
    return JiraSink(cfg, ctx), ctx.refs


def comments(fake: FakeJira) -> list[str]:
    (issue,) = fake.labelled(LABEL)
    return [c["body"] for c in issue["comments"]]


async def test_one_incident_is_one_issue_that_follows_it(
    jira: FakeJira, store: RemoteStore
) -> None:
    jira.lag = 30  # the search never sees the new issue during this test
    s, refs = sink(jira, store)
    await deliver_all(s, refs, lifecycle("inc-j"))
    await s.close()
    (issue,) = jira.labelled(LABEL)
    assert jira.creates == 1 and issue["status"] == "Done"
    f = issue["fields"]
    assert f["summary"].startswith("[P1] ") and f["priority"] == {"name": "Highest"}  # escalated
    assert "https://sw.example/incidents/inc-j" in f["description"]
    texts = comments(jira)
    assert len(texts) == 4  # two updates, the acknowledgement, the resolution
    assert "1 alerts added: A2" in texts[0] and "Severity P2 -> P1" in texts[1]
    assert "Acknowledged in stormwatch by ada" in texts[2] and "Resolved by stormwatch" in texts[3]


@pytest.mark.parametrize("kind", ["create", "update", "comment", "transition"])
async def test_a_lost_answer_makes_no_twin_and_no_second_comment(
    jira: FakeJira, store: RemoteStore, kind: str
) -> None:
    jira.lag = 0.3  # the search lags behind the create
    s, refs = sink(jira, store, search_consistency=2)
    jira.faults.lose[kind] = 1
    for event in lifecycle("inc-j"):
        await deliver_retrying(s, refs, event, attempts=200)
    await s.close()
    assert jira.faults.lose[kind] == 0, "the answer was not lost"
    (issue,) = jira.labelled(LABEL)
    assert issue["status"] == "Done" and issue["fields"]["priority"] == {"name": "Highest"}
    texts = comments(jira)
    assert len(texts) == len(set(texts)) == 4


@pytest.mark.parametrize("kind", ["create", "comment", "transition"])
async def test_a_restart_after_a_lost_answer_finds_what_the_first_process_did(
    jira: FakeJira, redis_url: str, redis_prefix: str, kind: str
) -> None:
    """As a kill -9 would: the first process never sees the answer; the next one has
    only the Redis records."""
    import redis.asyncio as aioredis

    from sinks import RedisRemoteStore

    client = aioredis.from_url(redis_url)
    store = RedisRemoteStore(client, prefix=redis_prefix)
    jira.lag = 0.3
    events = lifecycle("inc-j")
    first, refs = sink(jira, store, search_consistency=2)
    jira.faults.lose[kind] = 1
    done = 0
    for event in events:
        try:
            await deliver_all(first, refs, [event])
            done += 1
        except SinkError:
            break
    await first.close()
    second, refs2 = sink(jira, store, search_consistency=2)
    for event in events[done:]:
        await deliver_retrying(second, refs2, event, attempts=200)
    await second.close()
    await client.aclose()
    (issue,) = jira.labelled(LABEL)
    assert issue["status"] == "Done"
    texts = comments(jira)
    assert len(texts) == len(set(texts)) == 4


async def test_an_update_first_opens_the_issue_with_the_current_state(jira: FakeJira) -> None:
    s, refs = sink(jira)
    event = incident_event("updated", 5, key="inc-j", alerts=4, compact=True, severity="P1")
    await deliver_all(s, refs, [event])
    await s.close()
    (issue,) = jira.labelled(LABEL)
    assert issue["fields"]["priority"] == {"name": "Highest"} and issue["comments"] == []
    assert "*Alerts:* 4" in issue["fields"]["description"]


async def test_an_issue_a_person_closed_still_resolves_cleanly(jira: FakeJira) -> None:
    s, refs = sink(jira)
    await deliver_all(s, refs, [incident_event("opened", 1, key="inc-j")])
    jira.close_by_hand("OPS-1")
    await deliver_all(s, refs, [incident_event("resolved", 2, key="inc-j")])
    await s.close()
    assert jira.labelled(LABEL)[0]["status"] == "Done"


async def test_an_unknown_transition_is_permanent_and_names_the_choices(jira: FakeJira) -> None:
    s, refs = sink(jira, resolve_transition="Erledigt")
    await deliver_all(s, refs, [incident_event("opened", 1, key="inc-t")])
    with pytest.raises(SinkError) as info:
        await s.deliver(incident_event("resolved", 2, key="inc-t"))
    await s.close()
    assert not info.value.retryable and "has: Start Progress, Done" in str(info.value)


async def test_bad_credentials_are_permanent(jira: FakeJira) -> None:
    cfg = JiraSinkConfig(
        name="jira", url=jira.url, project="OPS", user="bot@example.com", token="wrong"
    )
    s = JiraSink(cfg)
    with pytest.raises(SinkError) as info:
        await s.deliver(incident_event("opened", 1, key="inc-x"))
    await s.close()
    assert info.value.status == 401 and not info.value.retryable


async def test_an_outage_is_retryable(jira: FakeJira) -> None:
    jira.faults.down = True
    s, _ = sink(jira)
    with pytest.raises(SinkError) as info:
        await s.deliver(incident_event("opened", 1, key="inc-o"))
    await s.close()
    assert info.value.retryable and jira.creates == 0


async def test_a_create_jira_refused_with_a_status_is_retried_without_waiting(
    jira: FakeJira,
) -> None:
    """Only an unseen answer makes the sink look before creating again: a 503 means
    Jira created nothing."""
    jira.lag = 30
    s, refs = sink(jira, search_consistency=60)
    jira.outage_drops, jira.faults.fail["create"] = False, 1
    with pytest.raises(SinkError) as info:
        await s.deliver(incident_event("opened", 1, key="inc-j"))
    assert info.value.status == 503 and jira.faults.calls["create"] == 1
    await deliver_all(s, refs, [incident_event("opened", 1, key="inc-j")])
    await s.close()
    assert jira.creates == 1
