"""Delivery you can trust, with `stormwatch run` as a real process and every vendor's
fake failing as the vendor does.

The clock is compressed 60 times in the daemon's config (30 s probes become 500 ms,
60 s backoffs 1 s, the 24 h deadline 24 min), never the count of failures: an outage
lasts its (compressed) ten minutes and every request during it fails.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Daemon
from tests.fakes.pagerduty import webhook
from tests.fakes.world import PD_SECRET, VENDORS, Vendors, escalated, problems, vendors

pytestmark = pytest.mark.redis

RULE = """\
- name: service-down
  correlation: {type: event_count, group-by: [service], timespan: 10m, condition: {gte: 1}}
  incident: {title: "{service} down", severity: P4}
  classify:
    - when: {alert_severity: [critical]}
      severity: P1
      impact: 1
      urgency: 2
"""
# 60x: probes every 30 s -> 500 ms, backoff to 60 s -> 1 s, deadline 24 h -> 24 min.
COMPRESSED = "retry: {initial_backoff: 10ms, max_backoff: 1s, deadline: 24m}, breaker: {failures: 5, probe_interval: 500ms}, timeout: 2s"
OUTAGE_S = 10.0  # ten minutes, compressed


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def wait_for(what: str, predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def start(
    daemon_factory: Any,
    tmp_path: Path,
    world: Vendors,
    redis_url: str,
    prefix: str,
    route: str = "",
) -> Daemon:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULE)
    config = tmp_path / "stormwatch.yaml"
    config.write_text(
        f"state: {{backend: redis, url: '{redis_url}', key_prefix: '{prefix}'}}\n"
        "tick_interval: 100ms\ncorrelate: {update_interval: 0s, duplicates_interval: 0s}\n"
        "shutdown_grace: 2s\nexternal_url: https://stormwatch.example\n"
        + world.sinks_yaml(timings=COMPRESSED, route=route)
    )
    daemon: Daemon = daemon_factory("--config", str(config), "--rules", str(rules))
    return daemon


class Alerts:
    """The alerts of one service: a warning opens its incident (P4), a critical one
    escalates it (P1), resolving both resolves it. Times are fixed, so a restarted
    daemon deduplicates re-sends."""

    def __init__(self, services: list[str]) -> None:
        self.services = services
        self.t = time.time() - 60

    def _post(self, daemon: Daemon, alerts: list[dict[str, Any]]) -> None:
        for i in range(0, len(alerts), 100):
            status, body, _ = daemon.post(
                "/api/v2/alerts", json.dumps(alerts[i : i + 100]).encode()
            )
            assert status == 200, body

    def _alert(self, s: str, name: str, severity: str, resolved: bool = False) -> dict[str, Any]:
        a = {
            "labels": {"alertname": name, "service": s, "severity": severity},
            "startsAt": iso(self.t),
        }
        if resolved:
            a["endsAt"] = iso(self.t + 1)
        return a

    def open(self, daemon: Daemon) -> None:
        self._post(daemon, [self._alert(s, "Down", "warning") for s in self.services])

    def escalate(self, daemon: Daemon) -> None:
        self._post(daemon, [self._alert(s, "Crash", "critical") for s in self.services])

    def resolve(self, daemon: Daemon) -> None:
        self._post(
            daemon,
            [
                self._alert(s, n, sev, resolved=True)
                for s in self.services
                for n, sev in (("Down", "warning"), ("Crash", "critical"))
            ],
        )


def incidents(daemon: Daemon, status: str = "all") -> dict[str, dict[str, Any]]:
    code, body = daemon.get(f"/api/v1/incidents?status={status}")
    assert code == 200
    return {i["group"]["service"]: i for i in json.loads(body)}


def sinks(daemon: Daemon) -> dict[str, dict[str, Any]]:
    code, body = daemon.get("/api/v1/sinks")
    assert code == 200
    return {s["sink"]: s for s in json.loads(body)}


def metric(daemon: Daemon, line_start: str) -> float:
    text = daemon.get("/metrics")[1].decode()
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start)
    )


def dead_letters(daemon: Daemon) -> dict[str, int]:
    out = {}
    for name in sinks(daemon):
        out[name] = len(json.loads(daemon.get(f"/api/v1/deadletters/{name}")[1])["dead_letters"])
    return out


def test_a_ten_minute_outage_of_every_vendor_loses_nothing(
    daemon_factory: Any, tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    services = [f"svc-{i:02d}" for i in range(50)]
    with vendors() as world:
        daemon = start(daemon_factory, tmp_path, world, redis_url, redis_prefix)
        world.set_down(True)
        down_at = time.monotonic()
        alerts = Alerts(services)
        alerts.open(daemon)  # 50 incidents open...
        wait_for("50 open incidents", lambda: len(incidents(daemon, "open")) == 50)
        alerts.escalate(daemon)  # ...escalate to P1...
        wait_for(
            "escalations", lambda: all(i["severity"] == "P1" for i in incidents(daemon).values())
        )
        alerts.resolve(daemon)  # ...and resolve, all while every vendor is down.
        wait_for("50 resolved incidents", lambda: len(incidents(daemon, "resolved")) == 50)
        during = wait_for(
            "every sink to hold 50 incidents behind an open breaker",
            lambda: (
                (h := sinks(daemon))
                and all(
                    h[n]["pending_incidents"] == 50 and h[n]["breaker"] == "open"
                    for n in ("oncall", "og", "tickets", "snow", "chat")
                )
                and h
            ),
        )
        assert (
            metric(daemon, 'stormwatch_outbox_pending_events{sink="tickets"}') == 100
        )  # [opened, resolved] each
        assert metric(daemon, 'stormwatch_sink_breaker_state{sink="og"}') == 2
        assert during["chat"]["oldest_pending_age_s"] > 0
        time.sleep(
            max(0.0, OUTAGE_S - (time.monotonic() - down_at))
        )  # the outage lasts its ten minutes
        refused = {v: f.refused for v, f in world.faults().items()}
        world.set_down(False)
        # One probe per 500 ms interval (PagerDuty's Retry-After: 1 s spaces its own),
        # after the 5 failures that opened the breaker: not a storm of calls.
        for vendor, n in refused.items():
            assert 5 <= n <= 5 + OUTAGE_S / 0.5 + 5, f"{vendor} got {n} calls during the outage"
        keys = {i["key"] for i in incidents(daemon).values()}
        wait_for("every vendor to converge", lambda: not problems(world.state(), keys), timeout=40)
        state = world.state()
        assert {o[0]["priority"] for o in state["jira"].values()} == {"Highest"}
        assert {(o[0]["impact"], o[0]["urgency"]) for o in state["servicenow"].values()} == {
            ("1", "2")
        }  # the rule's own
        assert {o[0]["severity"] for o in state["pagerduty"].values()} == {"critical"}
        wait_for(
            "outboxes to empty",
            lambda: all(s["pending_incidents"] == 0 for s in sinks(daemon).values()),
        )
        assert dead_letters(daemon) == dict.fromkeys(sinks(daemon), 0)
        assert (
            metric(daemon, 'stormwatch_sink_requests_total{outcome="retryable",sink="tickets"}')
            >= 5
        )


# kind of request -> (the lifecycle step that makes it, vendor -> the fake's name for it)
KINDS: dict[str, tuple[int, dict[str, str]]] = {
    "create": (
        0,
        {
            "pagerduty": "trigger",
            "opsgenie": "create",
            "jira": "create",
            "servicenow": "create",
            "slack": "post",
        },
    ),
    "update": (
        1,
        {"opsgenie": "priority", "jira": "update", "servicenow": "update", "slack": "update"},
    ),
    "comment": (1, {"opsgenie": "notes", "jira": "comment"}),
    "transition": (
        2,
        {
            "pagerduty": "resolve",
            "opsgenie": "close",
            "jira": "transition",
            "servicenow": "update",
            "slack": "reply",
        },
    ),
}


def steps(
    daemon: Daemon, alerts: Alerts, world: Vendors, which: range, keys: set[str] | None = None
) -> None:
    """Post lifecycle steps, each once every vendor shows the one before."""
    actions = [alerts.open, alerts.escalate, alerts.resolve]
    shown: list[Callable[[dict[str, Any]], bool]] = [
        lambda s: all(len(s[v]) == len(alerts.services) for v in VENDORS),
        escalated,
        lambda s: not problems(s, keys or set()),
    ]
    for step in which:
        actions[step](daemon)
        if step < 2 or keys is not None:
            wait_for(f"step {step} at every vendor", lambda step=step: shown[step](world.state()))
            # ...and delivered as far as the daemon knows: the next step is a new event,
            # not one more to fold into what still waits.
            wait_for(
                "outboxes to empty",
                lambda: all(s["pending_incidents"] == 0 for s in sinks(daemon).values()),
            )


def test_lost_answers_on_every_kind_of_request_make_no_twin_and_no_second_note(
    daemon_factory: Any, tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    with vendors() as world:
        for _, names in KINDS.values():
            for vendor, name in names.items():
                world.faults()[vendor].lose[name] += 1
        daemon = start(daemon_factory, tmp_path, world, redis_url, redis_prefix)
        alerts = Alerts(["checkout", "cart"])
        steps(daemon, alerts, world, range(3))
        keys = {i["key"] for i in incidents(daemon).values()}
        wait_for("every vendor to converge", lambda: not problems(world.state(), keys))
        lost = {v: sum(f.lose.values()) for v, f in world.faults().items()}
        assert lost == dict.fromkeys(VENDORS, 0), f"answers not lost yet: {lost}"
        state = world.state()
        assert all(len(o[0]["notes"]) == 2 for o in state["jira"].values()), state[
            "jira"
        ]  # escalation, resolution
        assert all(len(o[0]["notes"]) == 1 for o in state["slack"].values()), state[
            "slack"
        ]  # the resolution
        assert dead_letters(daemon) == dict.fromkeys(sinks(daemon), 0)


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_kill_9_while_an_answer_is_on_its_way_makes_no_twin_and_no_second_note(
    daemon_factory: Any, tmp_path: Path, redis_url: str, redis_prefix: str, kind: str
) -> None:
    """Every vendor carries the request out and holds its answer; the daemon is killed
    then, and the next one must finish the job from what Redis holds."""
    step, names = KINDS[kind]
    with vendors() as world:
        faults = world.faults()
        for vendor, name in names.items():
            faults[vendor].hold.add(name)
        daemon = start(daemon_factory, tmp_path, world, redis_url, redis_prefix)
        alerts = Alerts(["checkout"])
        steps(daemon, alerts, world, range(step))
        [alerts.open, alerts.escalate, alerts.resolve][step](daemon)
        wait_for(
            "every vendor to hold an answer", lambda: all(faults[v].held.is_set() for v in names)
        )
        daemon.proc.kill()
        daemon.proc.wait()
        for f in faults.values():
            f.release.set()
        again = start(daemon_factory, tmp_path, world, redis_url, redis_prefix)
        keys = {i["key"] for i in incidents(again).values()}
        if step < 2:
            wait_for(
                f"step {step} at every vendor",
                lambda: [lambda s: all(len(s[v]) == 1 for v in VENDORS), escalated][step](
                    world.state()
                ),
            )
        steps(again, alerts, world, range(step + 1, 3), keys)
        wait_for("every vendor to converge", lambda: not problems(world.state(), keys))
        assert dead_letters(again) == dict.fromkeys(sinks(again), 0)


def test_an_escalation_opens_the_p1_routes_tickets_then_with_p1s_priority(
    daemon_factory: Any, tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    route = (
        "route:\n  sink: [jsonl]\n  routes:\n"
        "    - {match: ['severity=\"P1\"'], sink: [tickets, snow], continue: true}\n"
        "    - {match: ['rule=~\".+\"'], sink: [jsonl]}\n"
    )
    with vendors() as world:
        daemon = start(daemon_factory, tmp_path, world, redis_url, redis_prefix, route=route)
        alerts = Alerts(["checkout"])
        alerts.open(daemon)
        wait_for(
            "the P4 incident in the file",
            lambda: '"opened"' in (daemon.jsonl.read_text() if daemon.jsonl.exists() else ""),
        )
        state = world.state()
        assert state["jira"] == {} and state["servicenow"] == {}, "a P4 reached the P1 route"
        alerts.escalate(daemon)
        (inc,) = incidents(daemon).values()
        wait_for("the tickets", lambda: (s := world.state())["jira"] and s["servicenow"])
        state = world.state()
        assert [o["priority"] for o in state["jira"][inc["key"]]] == ["Highest"]
        assert [(o["impact"], o["urgency"]) for o in state["servicenow"][inc["key"]]] == [
            ("1", "2")
        ]
        assert state["jira"][inc["key"]][0]["notes"] == []  # opened at escalation, not "updated"
        alerts.resolve(daemon)
        wait_for(
            "the tickets closed",
            lambda: (
                not problems({v: world.state()[v] for v in ("jira", "servicenow")}, {inc["key"]})
            ),
        )


def test_an_acknowledgement_at_pagerduty_shows_on_the_incident_and_in_the_histogram(
    daemon_factory: Any, tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    with vendors() as world:
        daemon = start(daemon_factory, tmp_path, world, redis_url, redis_prefix)
        Alerts(["checkout"]).open(daemon)
        (inc,) = incidents(daemon).values()
        wait_for("the PagerDuty alert", lambda: inc["key"] in world.state()["pagerduty"])
        assert (
            metric(daemon, 'stormwatch_incident_time_to_acknowledge_seconds_count{severity="P4"}')
            == 0
        )
        body, headers = webhook("incident.acknowledged", inc["key"], PD_SECRET, agent="Ada Oncall")
        req_status, _, _ = daemon.post(
            "/api/v1/sinks/oncall/webhook", body, headers["Content-Type"]
        )
        assert req_status == 401, "an unsigned webhook was taken"
        import urllib.request

        request = urllib.request.Request(
            daemon.url + "/api/v1/sinks/oncall/webhook", data=body, method="POST", headers=headers
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            assert json.loads(resp.read())["acknowledged"] == 1
        code, raw = daemon.get(f"/api/v1/incidents/{inc['key']}")
        shown = json.loads(raw)
        assert code == 200 and shown["acknowledged_by"] == "Ada Oncall" and shown["acknowledged_at"]
        assert shown["timeline"][-1]["event"] == "acknowledged"
        assert (
            metric(daemon, 'stormwatch_incident_time_to_acknowledge_seconds_count{severity="P4"}')
            == 1
        )
        wait_for(
            "the other vendors told",
            lambda: world.state()["opsgenie"][inc["key"]][0]["acknowledged"],
        )
