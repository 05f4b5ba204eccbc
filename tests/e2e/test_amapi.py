"""Alertmanager's API v2 shapes and filters, as a tool built on its openapi.yaml sees them."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tests.conftest import Daemon
from tests.e2e.tools import get_json, iso_now, post_alerts

RULES = """\
- name: outage
  match: ['alertname="Down"']
  correlation: {type: event_count, group-by: [service], timespan: 10m, condition: {gte: 1}}
  incident: {title: "{service} down", severity: P1}
- name: slow
  match: ['alertname="Slow"']
  correlation: {type: event_count, group-by: [service], timespan: 10m, condition: {gte: 2}}
  incident: {title: "{service} slow", severity: P2}
"""


def _alert(name: str, **labels: str) -> dict[str, object]:
    return {"labels": {"alertname": name, **labels}, "startsAt": iso_now()}


def _delete(daemon: Daemon, path: str) -> int:
    req = urllib.request.Request(daemon.url + path, method="DELETE")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def _names(alerts: list[dict[str, object]]) -> list[str]:
    return sorted(f"{a['labels']['alertname']}/{a['labels']['instance']}" for a in alerts)  # type: ignore[index]


def test_alerts_filter_by_matcher_silenced_inhibited_and_active(
    daemon_factory: Callable[..., Daemon], tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    daemon = daemon_factory("--rules", str(rules))
    post_alerts(daemon, [_alert("Down", service="db", instance="a")])
    post_alerts(daemon, [_alert("Slow", service="db", instance=i) for i in ("b", "c")])
    post_alerts(daemon, [_alert("Slow", service="web", instance=i) for i in ("d", "e")])
    status, body, _ = daemon.post(
        "/api/v2/silences",
        json.dumps(
            {
                "matchers": [{"name": "instance", "value": "e", "isRegex": False}],
                "startsAt": iso_now(),
                "endsAt": iso_now(3600),
                "createdBy": "test",
                "comment": "mute one",
            }
        ).encode(),
    )
    assert status == 200, body
    silence_id = json.loads(body)["silenceID"]

    every = get_json(daemon, "/api/v2/alerts")
    assert _names(every) == ["Down/a", "Slow/b", "Slow/c", "Slow/d", "Slow/e"]
    by = {a["labels"]["instance"]: a for a in every}
    outage_key = next(
        i["key"] for i in get_json(daemon, "/api/v1/incidents") if i["rule"] == "outage"
    )
    assert by["b"]["status"] == {
        "state": "suppressed",
        "silencedBy": [],
        "inhibitedBy": [outage_key],
    }
    assert by["e"]["status"] == {
        "state": "suppressed",
        "silencedBy": [silence_id],
        "inhibitedBy": [],
    }
    assert by["a"]["status"] == {"state": "active", "silencedBy": [], "inhibitedBy": []}
    for field in (
        "labels",
        "annotations",
        "receivers",
        "fingerprint",
        "startsAt",
        "endsAt",
        "updatedAt",
    ):
        assert field in by["a"]
    assert by["a"]["receivers"] == [{"name": "jsonl"}]

    assert _names(get_json(daemon, "/api/v2/alerts?inhibited=false")) == [
        "Down/a",
        "Slow/d",
        "Slow/e",
    ]
    assert _names(get_json(daemon, "/api/v2/alerts?silenced=false&inhibited=false")) == [
        "Down/a",
        "Slow/d",
    ]
    assert _names(get_json(daemon, "/api/v2/alerts?active=false")) == ["Slow/b", "Slow/c", "Slow/e"]
    q = urllib.parse.urlencode([("filter", 'service="db"'), ("filter", "alertname=~Sl.*")])
    assert _names(get_json(daemon, f"/api/v2/alerts?{q}")) == ["Slow/b", "Slow/c"]

    status, body = daemon.get("/api/v2/alerts?filter=" + urllib.parse.quote('service=~"(db"'))
    assert status == 400 and json.loads(body)["field"] == "filter"
    status, body = daemon.get("/api/v2/alerts?active=maybe")
    assert status == 400 and json.loads(body)["field"] == "active"

    groups = get_json(daemon, "/api/v2/alerts/groups")
    assert sorted(len(g["alerts"]) for g in groups) == [1, 2, 2]
    assert {"service": "db"} in [g["labels"] for g in groups]


def test_silences_speak_alertmanager_matcher_objects(daemon_factory: Callable[..., Daemon]) -> None:
    daemon = daemon_factory()
    spec = {
        "matchers": [
            {"name": "service", "value": "db", "isRegex": False, "isEqual": True},
            {"name": "env", "value": "stag.*", "isRegex": True, "isEqual": False},
        ],
        "startsAt": iso_now(),
        "endsAt": iso_now(600),
        "createdBy": "ops",
        "comment": "maintenance",
    }
    status, body, _ = daemon.post("/api/v2/silences", json.dumps(spec).encode())
    assert status == 200, body
    sid = json.loads(body)["silenceID"]
    (native,) = get_json(daemon, "/api/v1/silences")
    assert native["matchers"] == ['service="db"', 'env!~"stag.*"']  # stored as our strings
    one = get_json(daemon, f"/api/v2/silence/{sid}")
    assert one["matchers"] == spec["matchers"] and one["status"] == {"state": "active"}
    assert one["createdBy"] == "ops" and one["comment"] == "maintenance"
    q = urllib.parse.quote('service="db"')
    assert [s["id"] for s in get_json(daemon, f"/api/v2/silences?filter={q}")] == [sid]
    q = urllib.parse.quote('service="web"')
    assert get_json(daemon, f"/api/v2/silences?filter={q}") == []

    spec["id"] = sid
    spec["comment"] = "longer maintenance"
    status, body, _ = daemon.post("/api/v2/silences", json.dumps(spec).encode())
    assert status == 200 and json.loads(body)["silenceID"] == sid  # an update, not a second one
    assert [s["comment"] for s in get_json(daemon, "/api/v2/silences")] == ["longer maintenance"]

    assert _delete(daemon, f"/api/v2/silence/{sid}") == 200
    assert get_json(daemon, "/api/v2/silences") == []
    assert _delete(daemon, f"/api/v2/silence/{sid}") == 404


def test_bad_silences_are_refused_with_the_field_named(
    daemon_factory: Callable[..., Daemon],
) -> None:
    daemon = daemon_factory()
    good = {
        "matchers": [{"name": "service", "value": "db", "isRegex": False}],
        "startsAt": iso_now(),
        "endsAt": iso_now(600),
        "createdBy": "ops",
        "comment": "c",
    }
    cases = [
        (
            {**good, "matchers": [{"name": "a", "value": "(x", "isRegex": True}]},
            "$.matchers[0].value",
        ),
        ({**good, "matchers": []}, "$.matchers"),
        ({**good, "endsAt": iso_now(-60)}, "$.endsAt"),
        ({**good, "comment": ""}, "$.comment"),
        ({k: v for k, v in good.items() if k != "createdBy"}, "$"),
        ({**good, "startsAt": "yesterday"}, "$.startsAt"),
    ]
    for spec, field in cases:
        status, body, _ = daemon.post("/api/v2/silences", json.dumps(spec).encode())
        assert status == 400, (spec, body)
        answer = json.loads(body)
        assert answer["field"] == field and answer["message"], answer
    status, body, _ = daemon.post("/api/v2/silences", json.dumps({**good, "id": "nope"}).encode())
    assert status == 404
    assert get_json(daemon, "/api/v2/silences") == []


def test_status_health_and_readiness_where_alertmanager_has_them(
    daemon_factory: Callable[..., Daemon],
) -> None:
    daemon = daemon_factory()
    status = get_json(daemon, "/api/v2/status")
    assert status["cluster"]["status"] == "disabled"
    assert status["versionInfo"]["version"]
    assert "receivers:" in status["config"]["original"] and "jsonl" in status["config"]["original"]
    assert status["uptime"].endswith("Z")
    assert get_json(daemon, "/api/v2/receivers") == [{"name": "jsonl"}]
    assert daemon.get("/-/healthy") == (200, b"OK")
    assert daemon.get("/-/ready") == (200, b"OK")
