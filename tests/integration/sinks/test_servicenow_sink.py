"""The ServiceNow sink against a fake of the Table API that behaves as documented."""

from __future__ import annotations

import pytest

from sinks import Refs, RemoteStore, ServiceNowSink, ServiceNowSinkConfig, SinkContext
from stormwatch.errors import SinkError
from stormwatch.wire import Incident
from tests.fakes.servicenow import FakeServiceNow
from tests.support_sinks import deliver_all, deliver_retrying, incident_event, lifecycle


def sink(
    fake: FakeServiceNow,
    store: RemoteStore | None = None,
    password: str = "s3cret",
    itil: dict[str, tuple[int, int]] | None = None,
) -> tuple[ServiceNowSink, Refs]:
    def rule_itil(inc: Incident) -> tuple[int, int] | None:
        return (itil or {}).get(inc.severity)

    ctx = SinkContext(incident_url="https://sw.example/incidents/{key}", itil=rule_itil)
    if store is not None:
        ctx.refs = Refs(store, "snow")
    cfg = ServiceNowSinkConfig(
        name="snow",
        instance_url=fake.url,
        username="stormwatch",
        password=password,
        assignment_group="SRE",
        timeout=2,
    )
    return ServiceNowSink(cfg, ctx), ctx.refs


async def test_one_incident_is_one_record_that_follows_it(
    snow: FakeServiceNow, store: RemoteStore
) -> None:
    s, refs = sink(snow, store)
    await deliver_all(s, refs, lifecycle("inc-s"))
    await s.close()
    (record,) = snow.by_key("inc-s")
    assert record["state"] == "6" and record["close_code"] and record["close_notes"]
    assert record["short_description"].startswith("[P1] ")  # escalated
    assert (record["impact"], record["urgency"], record["priority"]) == ("1", "1", "1")
    assert (
        record["assignment_group"] == "SRE"
        and "https://sw.example/incidents/inc-s" in record["description"]
    )
    notes = snow.notes(record["sys_id"])
    assert len(notes) == 3  # two updates and the acknowledgement
    assert "Acknowledged in stormwatch by ada" in notes[2]


async def test_the_rules_own_impact_and_urgency_win(snow: FakeServiceNow) -> None:
    s, refs = sink(snow, itil={"P2": (2, 1)})
    await deliver_all(s, refs, [incident_event("opened", 1, key="inc-i")])
    await s.close()
    (record,) = snow.by_key("inc-i")
    assert (record["impact"], record["urgency"], record["priority"]) == ("2", "1", "2")


@pytest.mark.parametrize("kind", ["create", "update"])
async def test_a_lost_answer_makes_no_twin_and_no_second_work_note(
    snow: FakeServiceNow, store: RemoteStore, kind: str
) -> None:
    s, refs = sink(snow, store)
    snow.faults.lose[kind] = 1
    for event in lifecycle("inc-s"):
        await deliver_retrying(s, refs, event)
    await s.close()
    assert snow.faults.lose[kind] == 0
    (record,) = snow.by_key("inc-s")
    notes = snow.notes(record["sys_id"])
    assert record["state"] == "6" and len(notes) == len(set(notes)) == 3


async def test_a_record_someone_closed_is_not_patched_again(snow: FakeServiceNow) -> None:
    s, refs = sink(snow)
    await deliver_all(s, refs, [incident_event("opened", 1, key="inc-c")])
    (record,) = snow.by_key("inc-c")
    record["state"] = "7"  # closed by a person
    await deliver_all(s, refs, [incident_event("resolved", 2, key="inc-c")])
    await s.close()
    assert record["state"] == "7"


async def test_a_resolved_it_never_had_opens_and_resolves_one_record(snow: FakeServiceNow) -> None:
    s, refs = sink(snow)
    await deliver_all(s, refs, [incident_event("resolved", 4, key="inc-l")])
    await s.close()
    (record,) = snow.by_key("inc-l")
    assert record["state"] == "6" and snow.creates == 1


async def test_bad_credentials_are_permanent_and_outages_retryable(snow: FakeServiceNow) -> None:
    s, _ = sink(snow, password="nope")
    with pytest.raises(SinkError) as info:
        await s.deliver(incident_event("opened", 1))
    await s.close()
    assert info.value.status == 401 and not info.value.retryable
    snow.faults.down = True
    ok, _ = sink(snow)
    with pytest.raises(SinkError) as info:
        await ok.deliver(incident_event("opened", 1))
    await ok.close()
    assert (
        info.value.status == 503
        and info.value.retryable
        and "Service Unavailable" in str(info.value)
    )
