"""Every vendor fake at once, each on its own thread, for tests of a `stormwatch run`
process: the sinks' config that points at them, and what each vendor holds per
incident (read on the fake's own thread, between two of its requests)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tests.fakes.faults import Faults, Threaded, threaded
from tests.fakes.jira import FakeJira
from tests.fakes.opsgenie import FakeOpsgenie
from tests.fakes.pagerduty import FakePagerDuty
from tests.fakes.servicenow import FakeServiceNow
from tests.fakes.slack import FakeSlack

PD_KEY = "R0123456789ABCDEF0123456789ABCDE"
PD_SECRET = "pd-webhook-secret"
VENDORS = ("pagerduty", "opsgenie", "jira", "servicenow", "slack")


@dataclass
class Vendors:
    pd: FakePagerDuty
    og: FakeOpsgenie
    jira: FakeJira
    snow: FakeServiceNow
    slack: FakeSlack
    servers: list[Threaded]

    def faults(self) -> dict[str, Faults]:
        return {
            "pagerduty": self.pd.faults,
            "opsgenie": self.og.faults,
            "jira": self.jira.faults,
            "servicenow": self.snow.faults,
            "slack": self.slack.faults,
        }

    def set_down(self, down: bool) -> None:
        for f in self.faults().values():
            f.down = down

    def sinks_yaml(self, *, timings: str = "", route: str = "") -> str:
        """The `sinks:` section for these fakes (`timings`: extra keys for every sink)."""
        pd, og, jira, snow, slack = (s.url for s in self.servers)
        t = f", {timings}" if timings else ""
        return (
            "sinks:\n"
            f"  - {{type: pagerduty, name: oncall, routing_key: {PD_KEY}, url: '{pd}/v2/enqueue',"
            f" webhook_secret: {PD_SECRET}{t}}}\n"
            f"  - {{type: opsgenie, name: og, api_key: k-123, url: '{og}', request_poll_interval: 10ms,"
            f" request_timeout: 500ms{t}}}\n"
            f"  - {{type: jira, name: tickets, url: '{jira}', project: OPS, user: bot@example.com, token: tok,"
            f" search_consistency: 5s{t}}}\n"
            f"  - {{type: servicenow, name: snow, instance_url: '{snow}', username: stormwatch,"
            f" password: s3cret{t}}}\n"
            f"  - {{type: slack, name: chat, channel: C0123456789, token: xoxb-test, api_url: '{slack}/api'{t}}}\n"
            + route
        )

    def state(self) -> dict[str, dict[str, list[dict[str, Any]]]]:
        """vendor -> incident key -> the objects the vendor holds for it."""
        pd, og, jira, snow, slack = self.servers
        return {
            "pagerduty": pd.call(
                lambda: {
                    k: [{"status": a["status"], "severity": a.get("severity")} for a in v]
                    for k, v in self.pd.alerts.items()
                }
            ),
            "opsgenie": og.call(self._opsgenie),
            "jira": jira.call(self._jira),
            "servicenow": snow.call(self._snow),
            "slack": slack.call(self._slack),
        }

    def _opsgenie(self) -> dict[str, list[dict[str, Any]]]:
        self.og.settle()
        return {
            k: [
                {
                    "status": a["status"],
                    "notes": list(a["notes"]),
                    "priority": a["priority"],
                    "acknowledged": a["acknowledged"],
                }
                for a in v
            ]
            for k, v in self.og.alerts.items()
        }

    def _jira(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for issue in self.jira.issues.values():
            label = next(x for x in issue["fields"]["labels"] if x.startswith("stormwatch-"))
            out.setdefault(label.removeprefix("stormwatch-"), []).append(
                {
                    "status": issue["status"],
                    "priority": issue["fields"]["priority"]["name"],
                    "notes": [c["body"] for c in issue["comments"]],
                }
            )
        return out

    def _snow(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for r in self.snow.records.values():
            out.setdefault(r["correlation_id"], []).append(
                {
                    "status": r["state"],
                    "impact": r["impact"],
                    "urgency": r["urgency"],
                    "notes": self.snow.notes(r["sys_id"]),
                }
            )
        return out

    def _slack(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for m in self.slack.top():
            key = m["metadata"]["event_payload"]["incident_key"]
            out.setdefault(key, []).append(
                {
                    "status": m["text"].rsplit(" — ", 1)[-1],
                    "text": m["text"],
                    "notes": [r["text"] for r in self.slack.replies(m["ts"])],
                }
            )
        return out


CLOSED = {
    "pagerduty": "resolved",
    "opsgenie": "closed",
    "jira": "Done",
    "servicenow": "6",
    "slack": "resolved",
}


def escalated(state: dict[str, dict[str, list[dict[str, Any]]]]) -> bool:
    """Every object at every vendor shows P1."""
    checks = {
        "pagerduty": lambda o: o["severity"] == "critical",
        "opsgenie": lambda o: o["priority"] == "P1",
        "jira": lambda o: o["priority"] == "Highest",
        "servicenow": lambda o: o["impact"] == "1",
        "slack": lambda o: "[P1]" in o["text"],
    }
    return all(
        checks[v](o) for v, held in state.items() for objects in held.values() for o in objects
    )


def problems(
    state: dict[str, dict[str, list[dict[str, Any]]]],
    keys: set[str],
    final: dict[str, str] = CLOSED,
) -> list[str]:
    """What is wrong: an incident missing or held twice at a vendor, not in its final
    state, or a note (comment, work note, reply) written twice."""
    out = []
    for vendor, held in state.items():
        if set(held) != keys:
            out.append(f"{vendor}: incidents {sorted(set(held) ^ keys)[:5]} missing or extra")
        for key, objects in held.items():
            if len(objects) != 1:
                out.append(f"{vendor}: {key} has {len(objects)} objects (a twin)")
            for o in objects:
                if o["status"] != final[vendor]:
                    out.append(f"{vendor}: {key} is {o['status']!r}, not {final[vendor]!r}")
                notes = o.get("notes", [])
                if len(notes) != len(set(notes)):
                    out.append(f"{vendor}: {key} has a note twice: {notes}")
    return out


@contextmanager
def vendors() -> Iterator[Vendors]:
    pd, og, jira, snow, slack = (
        FakePagerDuty(),
        FakeOpsgenie(lag=0.01),
        FakeJira(lag=0.5),
        FakeServiceNow(),
        FakeSlack(),
    )
    with threaded(pd.app(), og.app(), jira.app(), snow.app(), slack.app()) as servers:
        for fake, server in zip((pd, og, jira, snow, slack), servers, strict=True):
            fake.url = server.url
        yield Vendors(pd, og, jira, snow, slack, servers)
