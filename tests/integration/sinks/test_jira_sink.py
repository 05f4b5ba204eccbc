"""The Jira sink against a fake of Jira's REST API (eventually consistent search)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer

from sinks import JiraSink, JiraSinkConfig, Retrying, RetryPolicy
from stormwatch.errors import SinkError
from tests.fakes.jira import FakeJira
from tests.support_sinks import incident_event

FAST = RetryPolicy(initial_backoff=0.001, max_backoff=0.01, max_attempts=3)


@pytest.fixture
async def jira() -> AsyncIterator[FakeJira]:
    fake = FakeJira()
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    fake.url = str(server.make_url("")).rstrip("/")
    yield fake
    await server.close()


def sink(fake: FakeJira, **kw: object) -> Retrying:
    cfg = JiraSinkConfig(
        name="jira", url=fake.url, project="OPS", user="bot@example.com", token="tok", **kw
    )  # type: ignore[arg-type]
    return Retrying(JiraSink(cfg), FAST)


async def test_one_incident_is_one_issue_commented_and_transitioned(jira: FakeJira) -> None:
    jira.lag = 3  # the search does not see a new issue for a while, as on Jira Cloud
    s = sink(jira)
    for kind, seq in (
        ("opened", 1),
        ("opened", 1),
        ("updated", 2),
        ("updated", 3),
        ("resolved", 4),
    ):
        await s.deliver(incident_event(kind, seq, key="inc-j"))
    await s.close()
    assert jira.creates == 1  # the redelivered `opened` found the remembered issue
    (issue,) = jira.issues.values()
    assert issue["status"] == "Done"
    assert "stormwatch-inc-j" in issue["fields"]["labels"]
    assert issue["fields"]["priority"] == {"name": "High"}
    assert len(issue["comments"]) == 3  # two updates, one resolution note


async def test_a_restarted_sink_finds_the_issue_by_its_label(jira: FakeJira) -> None:
    first = sink(jira)
    await first.deliver(incident_event("opened", 1, key="inc-r"))
    await first.close()
    second = sink(jira)
    receipt = await second.deliver(incident_event("opened", 1, key="inc-r"))
    await second.deliver(incident_event("resolved", 2, key="inc-r"))
    await second.close()
    assert jira.creates == 1 and receipt.detail == "already open"
    assert next(iter(jira.issues.values()))["status"] == "Done"


async def test_an_unknown_transition_is_permanent_and_names_the_choices(jira: FakeJira) -> None:
    s = sink(jira, resolve_transition="Erledigt")
    await s.deliver(incident_event("opened", 1, key="inc-t"))
    with pytest.raises(SinkError) as info:
        await s.deliver(incident_event("resolved", 2, key="inc-t"))
    await s.close()
    assert not info.value.retryable and "has: In Progress, Done" in str(info.value)


async def test_bad_credentials_are_permanent(jira: FakeJira) -> None:
    cfg = JiraSinkConfig(
        name="jira", url=jira.url, project="OPS", user="bot@example.com", token="wrong"
    )
    s = Retrying(JiraSink(cfg), FAST)
    with pytest.raises(SinkError) as info:
        await s.deliver(incident_event("opened", 1, key="inc-x"))
    await s.close()
    assert info.value.status == 401 and not info.value.retryable
