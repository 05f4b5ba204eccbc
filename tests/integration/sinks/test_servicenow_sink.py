"""The ServiceNow sink against a fake of the Table API that behaves as documented."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer

from sinks import Retrying, RetryPolicy, ServiceNowSink, ServiceNowSinkConfig
from stormwatch.errors import SinkError
from tests.fakes.servicenow import FakeServiceNow
from tests.support_sinks import incident_event

FAST = RetryPolicy(initial_backoff=0.001, max_backoff=0.01, max_attempts=4)


@pytest.fixture
async def snow() -> AsyncIterator[FakeServiceNow]:
    fake = FakeServiceNow()
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    fake.url = str(server.make_url(""))
    yield fake
    await server.close()


def sink(fake: FakeServiceNow, password: str = "s3cret") -> Retrying:
    cfg = ServiceNowSinkConfig(
        name="snow",
        instance_url=fake.url,
        username="stormwatch",
        password=password,
        assignment_group="SRE",
    )
    return Retrying(ServiceNowSink(cfg), FAST)


async def test_one_incident_is_one_record_updated_and_resolved(snow: FakeServiceNow) -> None:
    s = sink(snow)
    for kind, seq in (("opened", 1), ("updated", 2), ("updated", 3), ("resolved", 4)):
        await s.deliver(incident_event(kind, seq, key="inc-snow"))
    await s.close()
    assert snow.creates == 1
    (record,) = snow.records.values()
    assert record["correlation_id"] == "inc-snow" and record["state"] == "6"
    assert (record["impact"], record["urgency"]) == ("1", "2")  # P2 -> ServiceNow priority 2
    assert record["close_code"] and record["close_notes"].startswith("Resolved by stormwatch")
    assert len(record["work_notes_log"]) == 2
    assert record["assignment_group"] == "SRE"


async def test_an_opened_event_delivered_again_after_a_restart_opens_no_second_record(
    snow: FakeServiceNow,
) -> None:
    first = sink(snow)
    await first.deliver(incident_event("opened", 1, key="inc-twice"))
    await first.close()
    again = sink(snow)  # a new process: it knows nothing, the lookup finds the record
    receipt = await again.deliver(incident_event("opened", 1, key="inc-twice"))
    await again.deliver(incident_event("resolved", 2, key="inc-twice"))
    await again.close()
    assert snow.creates == 1
    assert receipt.detail == "already open"
    assert next(iter(snow.records.values()))["state"] == "6"


async def test_rate_limit_is_retried_and_bad_credentials_are_permanent(
    snow: FakeServiceNow,
) -> None:
    snow.script = [429, 503]
    s = sink(snow)
    await s.deliver(incident_event("opened", 1, key="inc-rl"))
    await s.close()
    assert snow.creates == 1
    bad = sink(snow, password="wrong")
    with pytest.raises(SinkError) as info:
        await bad.deliver(incident_event("opened", 1, key="inc-bad"))
    await bad.close()
    assert info.value.status == 401 and not info.value.retryable
