"""`stormwatch rules test`: unit tests for rules, in the spirit of `promtool test rules`.

A test file is YAML:

```yaml
rule_files: [../defaults/monitoring.yaml]   # relative to this file
tests:
  - name: five warnings of one service within a minute open one P2
    config: {update_interval: 0s}           # optional: the `correlate:` settings
    alerts:                                 # `at` is time since the test's start
      - {at: 0s, labels: {alertname: A, service: checkout, severity: warning}}
      - {at: 50s, labels: {alertname: A, service: checkout, severity: warning}, status: resolved}
    until: 5m                               # keep the clock running (timers, absences)
    expect:                                 # incident events, in order; fields given must match
      - {event: opened, rule: service-alert-burst, group: {service: checkout}, alert_count: 5}
```

The engine runs on the test's own clock: each alert arrives at its `at`, and timers
tick every second from the first alert to `until` (or the last alert).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import msgspec

from correlate import Engine, EngineConfig
from ingest.fingerprint import fingerprint_labels
from ingest.normalize.severity import normalize_severity
from rules import load_rules
from rules.schema import AlertSeverityName
from stormwatch.errors import RuleError
from stormwatch.wire import Alert, Duration, IncidentEvent, decode_hook, encode_hook

__all__ = ["TestResult", "run_test_file"]

EPOCH = 1_767_225_600.0
"""2026-01-01T00:00:00Z: where every rule test's clock starts."""


class TestAlert(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    at: Duration = Duration(0)
    labels: dict[str, str]
    annotations: dict[str, str] = {}
    status: Literal["firing", "resolved"] = "firing"
    source: str = "alertmanager"
    severity: AlertSeverityName | None = None
    """Normalised severity; default: read from the `severity` label, as the normalisers do."""
    starts_at: Duration | None = None
    """Event time if not `at` (an alert that arrives late)."""


class Expected(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    event: Literal["opened", "updated", "resolved"]
    rule: str | None = None
    group: dict[str, str] | None = None
    alert_count: int | None = None
    severity: str | None = None
    category: str | None = None
    priority: int | None = None
    title: str | None = None
    reason: str | None = None
    at: Duration | None = None


class RuleTest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str
    alerts: list[TestAlert]
    expect: list[Expected] = []
    config: dict[str, Any] = {}
    until: Duration | None = None


class TestFile(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    rule_files: list[str]
    tests: list[RuleTest]


class TestResult(msgspec.Struct, kw_only=True):
    file: str
    name: str
    ok: bool
    diff: str = ""


_FIELDS = (
    "event",
    "rule",
    "group",
    "alert_count",
    "severity",
    "category",
    "priority",
    "title",
    "reason",
    "at",
)


def _actual(e: IncidentEvent) -> dict[str, Any]:
    i = e.incident
    return {
        "event": e.event,
        "rule": i.rule,
        "group": i.group,
        "alert_count": i.alert_count,
        "severity": i.severity,
        "category": i.category,
        "priority": i.priority,
        "title": i.title,
        "reason": e.reason,
        "at": e.at - EPOCH,
    }


def _render(d: dict[str, Any]) -> str:
    return msgspec.json.encode(
        {k: v for k, v in d.items() if v is not None}, enc_hook=encode_hook
    ).decode()


def _run(test: RuleTest, rules: Any) -> list[IncidentEvent]:
    config = msgspec.convert(test.config, EngineConfig, dec_hook=decode_hook)
    engine = Engine(rules, config)
    arrivals = sorted(test.alerts, key=lambda a: a.at)
    end = max([float(test.until or 0), *(a.at for a in arrivals)])
    events: list[IncidentEvent] = []
    i, second = 0, 0.0
    while second <= end:
        batch = []
        while i < len(arrivals) and arrivals[i].at <= second:
            a = arrivals[i]
            starts = a.starts_at if a.starts_at is not None else a.at
            batch.append(
                Alert(
                    source=a.source,
                    fingerprint=fingerprint_labels(a.labels),
                    status=a.status,
                    labels=a.labels,
                    annotations=a.annotations,
                    starts_at=EPOCH + starts,
                    ends_at=EPOCH + a.at if a.status == "resolved" else None,
                    received_at=EPOCH + a.at,
                    severity=a.severity or normalize_severity(a.labels.get("severity")),
                )
            )
            i += 1
        now = EPOCH + second
        if batch:
            events.extend(engine.process(batch, now).events)
        events.extend(engine.tick(now).events)
        engine.discard_changes()
        second += 1.0
    return events


def _compare(expected: list[Expected], got: list[IncidentEvent]) -> str:
    lines, ok = [], len(expected) == len(got)
    for n in range(max(len(expected), len(got))):
        want = msgspec.structs.asdict(expected[n]) if n < len(expected) else None
        have = _actual(got[n]) if n < len(got) else None
        if want is not None and have is not None:
            picked = {k: have[k] for k in _FIELDS if want.get(k) is not None}
            match = all(want[k] == picked[k] for k in picked)
            ok = ok and match
            lines.append(f"  {'  ' if match else '! '}expected {_render(want)}")
            if not match:
                lines.append(f"    got      {_render(picked)}")
        elif want is not None:
            lines.append(f"  - expected {_render(want)}  (no such event)")
        elif have is not None:
            lines.append(f"  + unexpected {_render(have)}")
    return "" if ok else "\n".join(lines)


def run_test_file(path: str | Path) -> list[TestResult]:
    """Run every test in one file. Raises RuleError when the file or its rules are invalid."""
    path = Path(path)
    try:
        spec = msgspec.yaml.decode(path.read_bytes(), type=TestFile, dec_hook=decode_hook)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as err:
        raise RuleError(str(err), file=str(path)) from err
    rules = load_rules([path.parent / f for f in spec.rule_files])
    results = []
    for test in spec.tests:
        diff = _compare(test.expect, _run(test, rules))
        results.append(TestResult(file=str(path), name=test.name, ok=not diff, diff=diff))
    return results
