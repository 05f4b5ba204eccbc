"""Small builders shared by the test tiers: alerts, rules and engine runs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from correlate import Engine, EngineConfig
from ingest.fingerprint import fingerprint_labels
from ingest.normalize.severity import normalize_severity
from rules import RuleSet
from rules.schema import Condition, EventCount, IncidentSpec, ResolveSpec, Rule
from stormwatch.wire import Alert, Duration, IncidentEvent

T0 = 1_790_000_000.0
"""An arbitrary, fixed epoch second every scenario counts from."""


def alert(
    name: str = "HighErrorRate",
    *,
    t: float = 0.0,
    status: str = "firing",
    source: str = "alertmanager",
    ends_at: float | None = None,
    **labels: str,
) -> Alert:
    """An alert `t` seconds after T0; its fingerprint is Alertmanager's over its labels."""
    all_labels = {"alertname": name, **labels}
    return Alert(
        source=source,
        fingerprint=fingerprint_labels(all_labels),
        status=status,  # type: ignore[arg-type]
        labels=all_labels,
        starts_at=T0 + t,
        ends_at=None if ends_at is None else T0 + ends_at,
        received_at=T0 + t,
        severity=normalize_severity(all_labels.get("severity")),
    )


def count_rule(
    name: str = "burst",
    *,
    gte: float = 5,
    timespan: float = 60,
    group_by: Sequence[str] = ("service",),
    match: Sequence[str] = (),
    quiet: float | None = None,
    title: str = "{service}: {count} alerts",
) -> Rule:
    return Rule(
        name=name,
        match=list(match),
        correlation=EventCount(
            group_by=list(group_by), timespan=Duration(timespan), condition=Condition(gte=gte)
        ),
        incident=IncidentSpec(title=title, severity="P2", category="availability"),
        resolve=ResolveSpec(quiet=Duration(quiet)) if quiet is not None else None,
    )


def engine(*rules: Rule, **config: float) -> Engine:
    """An engine over `rules`; `updated` events flush on every tick unless told otherwise."""
    config.setdefault("update_interval", 0)
    config.setdefault("duplicates_interval", 0)
    return Engine(RuleSet(rules=tuple(rules)), EngineConfig(**config))  # type: ignore[arg-type]


def run(
    eng: Engine, batches: Iterable[Sequence[Alert]], *, tick: bool = True
) -> list[IncidentEvent]:
    """Feed batches at `now` = the batch's latest event time, ticking after each (as the
    daemon does every second); return every event."""
    out: list[IncidentEvent] = []
    for batch in batches:
        if not batch:
            continue
        now = max(a.received_at for a in batch)
        out.extend(eng.process(batch, now).events)
        if tick:
            out.extend(eng.tick(now).events)
    return out


def summary(events: Iterable[IncidentEvent]) -> list[tuple[str, str, tuple[str, ...], int]]:
    """What a test compares: event, incident key, its alert fingerprints, alert count."""
    return [
        (
            e.event,
            e.incident.key,
            tuple(sorted(a.fingerprint for a in e.incident.alerts)),
            e.incident.alert_count,
        )
        for e in events
    ]
