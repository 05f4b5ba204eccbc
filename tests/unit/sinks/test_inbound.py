"""Vendors' acknowledgement webhooks: verified as each vendor signs them, then parsed."""

from __future__ import annotations

import json

import pytest

from sinks.inbound import (
    Ack,
    Unauthorized,
    check_token,
    jira_acks,
    opsgenie_acks,
    pagerduty_acks,
    servicenow_acks,
)
from stormwatch.errors import PayloadError
from tests.fakes.pagerduty import webhook

SECRET = "whsec-0123456789"


def test_pagerduty_acknowledgement_with_a_valid_signature_among_several() -> None:
    body, headers = webhook("incident.acknowledged", "inc-7f3c", SECRET, agent="Ada Oncall")
    assert pagerduty_acks(body, headers["X-PagerDuty-Signature"], SECRET) == [
        Ack(key="inc-7f3c", by="Ada Oncall")
    ]


@pytest.mark.parametrize("signature", [None, "", "v1=" + "0" * 64, "v0=abc"])
def test_pagerduty_without_the_right_signature_is_refused(signature: str | None) -> None:
    body, _ = webhook("incident.acknowledged", "inc-7f3c", SECRET)
    with pytest.raises(Unauthorized):
        pagerduty_acks(body, signature, SECRET)


def test_pagerduty_a_changed_body_no_longer_matches_its_signature() -> None:
    body, headers = webhook("incident.acknowledged", "inc-7f3c", SECRET)
    with pytest.raises(Unauthorized):
        pagerduty_acks(
            body.replace(b"inc-7f3c", b"inc-0000"), headers["X-PagerDuty-Signature"], SECRET
        )


def test_pagerduty_other_events_acknowledge_nothing() -> None:
    body, headers = webhook("incident.resolved", "inc-7f3c", SECRET)
    assert pagerduty_acks(body, headers["X-PagerDuty-Signature"], SECRET) == []


def test_tokens_as_bearer_or_query_and_compared_whole() -> None:
    check_token("t0k", "Bearer t0k", None)
    check_token("t0k", None, "t0k")
    for auth, query in ((None, None), ("Bearer t0", None), ("Basic t0k", None), (None, "t0k-more")):
        with pytest.raises(Unauthorized):
            check_token("t0k", auth, query)


def test_opsgenie_alert_action() -> None:
    body = json.dumps(
        {
            "action": "Acknowledge",
            "alert": {
                "alertId": "a1",
                "alias": "inc-9",
                "username": "ada@example.com",
                "tinyId": "3",
            },
            "source": {"name": "", "type": "web"},
            "integrationName": "stormwatch",
            "integrationType": "Webhook",
        }
    ).encode()
    assert opsgenie_acks(body) == [Ack(key="inc-9", by="ada@example.com")]
    assert opsgenie_acks(body.replace(b"Acknowledge", b"AddNote")) == []


def test_jira_issue_moved_out_of_to_do() -> None:
    payload = {
        "webhookEvent": "jira:issue_updated",
        "user": {"accountId": "5b10", "displayName": "Ada Lovelace"},
        "issue": {
            "id": "10001",
            "key": "OPS-1",
            "fields": {
                "labels": ["stormwatch", "stormwatch-inc-j"],
                "status": {"name": "In Progress", "statusCategory": {"key": "indeterminate"}},
            },
        },
        "changelog": {
            "items": [{"field": "status", "fromString": "To Do", "toString": "In Progress"}]
        },
    }
    assert jira_acks(json.dumps(payload).encode()) == [Ack(key="inc-j", by="Ada Lovelace")]
    payload["issue"]["fields"]["status"]["statusCategory"]["key"] = "new"  # type: ignore[index]
    assert jira_acks(json.dumps(payload).encode()) == []
    payload["changelog"] = {"items": [{"field": "summary"}]}
    assert jira_acks(json.dumps(payload).encode()) == []


def test_servicenow_record_leaving_new() -> None:
    assert servicenow_acks(
        b'{"correlation_id": "inc-s", "state": "2", "sys_updated_by": "ada"}'
    ) == [Ack(key="inc-s", by="ada")]
    assert servicenow_acks(b'{"result": {"correlation_id": "inc-s", "state": "1"}}') == []


@pytest.mark.parametrize("parse", [opsgenie_acks, jira_acks, servicenow_acks])
def test_a_body_that_is_not_the_vendors_is_a_payload_error(parse) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PayloadError) as info:
        parse(b"{not json")
    assert info.value.reason == "invalid_json"
    with pytest.raises(PayloadError):
        parse(b"[1, 2]")
