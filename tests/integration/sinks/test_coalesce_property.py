"""Coalescing is safe: whatever waited and folded (sinks/coalesce.py), every vendor ends
in the same state as when it got every event one by one.

Hypothesis draws an incident's life (updates adding alerts, changing severity, an
acknowledgement, maybe a resolution) and when the sink was reachable; one run delivers
every event, the other folds what arrives while the sink is away, as the outbox does.
Both run against the same vendor fakes over real HTTP. What may differ is how many
notes the vendor got (folded updates make one note), never what it shows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sinks import (
    JiraSink,
    JiraSinkConfig,
    MemoryRemoteStore,
    OpsgenieSink,
    OpsgenieSinkConfig,
    PagerDutySink,
    PagerDutySinkConfig,
    Refs,
    ServiceNowSink,
    ServiceNowSinkConfig,
    Sink,
    SinkContext,
    SlackSink,
    SlackSinkConfig,
)
from sinks.coalesce import coalesce
from stormwatch.wire import IncidentChanges, IncidentEvent
from tests.fakes.faults import serve
from tests.fakes.jira import FakeJira
from tests.fakes.opsgenie import FakeOpsgenie
from tests.fakes.pagerduty import FakePagerDuty
from tests.fakes.servicenow import FakeServiceNow
from tests.fakes.slack import FakeSlack
from tests.support_sinks import alert, deliver_all, incident_event

KEY = "inc-prop"


@st.composite
def lives(draw: st.DrawFn) -> tuple[list[IncidentEvent], list[bool]]:
    """An incident's events, and after each whether the sink was reachable."""
    severity, acked, count = draw(st.sampled_from(["P2", "P3", "P4"])), None, 2
    events = [incident_event("opened", 1, KEY, alerts=count, severity=severity)]
    for i in range(draw(st.integers(0, 5))):
        new = draw(st.sampled_from(["P1", "P2", "P3", "P4"]))
        added = draw(st.booleans())
        acked = acked or (draw(st.integers(0, 3)) == 0 and "ada") or None
        ch = IncidentChanges(
            alerts_added=[alert(count)] if added else [],
            previous_severity=severity if new != severity else None,
            previous_priority=int(severity[1]) if new != severity else None,
        )
        count += added
        severity = new
        events.append(
            incident_event(
                "updated",
                i + 2,
                KEY,
                alerts=count,
                compact=True,
                severity=severity,
                acknowledged_by=acked,
                changes=ch,
            )
        )
    if draw(st.booleans()):
        events.append(
            incident_event(
                "resolved",
                len(events) + 1,
                KEY,
                alerts=count,
                severity=severity,
                acknowledged_by=acked,
            )
        )
    reachable = draw(st.lists(st.booleans(), min_size=len(events), max_size=len(events)))
    return events, reachable


@asynccontextmanager
async def world() -> AsyncIterator[tuple[list[Sink], Refs, dict[str, Any]]]:
    fakes = {
        "pd": FakePagerDuty(),
        "og": FakeOpsgenie(lag=0.0),
        "jira": FakeJira(),
        "snow": FakeServiceNow(),
        "slack": FakeSlack(),
    }
    async with AsyncExitStack() as stack:
        urls = {name: await stack.enter_async_context(serve(f.app())) for name, f in fakes.items()}
        store = MemoryRemoteStore()

        def ctx(name: str) -> SinkContext:
            return SinkContext(refs=Refs(store, name))

        sinks: list[Sink] = [
            PagerDutySink(
                PagerDutySinkConfig(
                    name="pd", routing_key="R" * 32, url=urls["pd"] + "/v2/enqueue"
                ),
                ctx("pd"),
            ),
            OpsgenieSink(
                OpsgenieSinkConfig(
                    name="og", api_key="k-123", url=urls["og"], request_poll_interval=0.001
                ),
                ctx("og"),
            ),
            JiraSink(
                JiraSinkConfig(
                    name="jira",
                    url=urls["jira"],
                    project="OPS",
                    user="bot@example.com",
                    token="tok",
                ),
                ctx("jira"),
            ),
            ServiceNowSink(
                ServiceNowSinkConfig(
                    name="snow", instance_url=urls["snow"], username="stormwatch", password="s3cret"
                ),
                ctx("snow"),
            ),
            SlackSink(
                SlackSinkConfig(
                    name="slack",
                    channel="C0123456789",
                    token="xoxb-test",
                    api_url=urls["slack"] + "/api",
                ),
                ctx("slack"),
            ),
        ]
        try:
            yield sinks, Refs(store, ""), fakes
        finally:
            for s in sinks:
                await s.close()


def shown(fakes: dict[str, Any]) -> dict[str, Any]:
    """What each vendor shows for the incident, notes left out."""
    pd, og, jira, snow, slack = (fakes[k] for k in ("pd", "og", "jira", "snow", "slack"))
    og.settle()
    return {
        "pd": [(a["status"], a["severity"], a["summary"]) for a in pd.alerts.get(KEY, [])],
        "og": [
            (a["status"], a["priority"], a["message"], a["acknowledged"])
            for a in og.alerts.get(KEY, [])
        ],
        "jira": [
            (i["status"], i["fields"]["priority"]["name"], i["fields"]["summary"])
            for i in jira.issues.values()
        ],
        "snow": [
            (r["state"], r["impact"], r["urgency"], r["short_description"])
            for r in snow.records.values()
        ],
        "slack": [
            (m["text"], sorted({r["text"] for r in slack.replies(m["ts"])})) for m in slack.top()
        ],
    }


async def deliver(sinks: list[Sink], refs: Refs, events: list[IncidentEvent]) -> None:
    for s in sinks:
        await deliver_all(s, Refs(refs.store, s.name), events)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(life=lives())
async def test_delivering_what_coalesced_leaves_every_vendor_as_delivering_every_event(
    life: tuple[list[IncidentEvent], list[bool]],
) -> None:
    events, reachable = life
    async with world() as (sinks, refs, fakes):
        await deliver(sinks, refs, events)
        one_by_one = shown(fakes)
    async with world() as (sinks, refs, fakes):
        waiting: list[IncidentEvent] = []
        for event, up in zip(events, reachable, strict=True):
            waiting = coalesce(waiting, event)
            if up:
                await deliver(sinks, refs, waiting)
                waiting = []
        await deliver(sinks, refs, waiting)
        folded = shown(fakes)
    assert folded == one_by_one
    assert all(len(objects) == 1 for objects in folded.values()), folded
