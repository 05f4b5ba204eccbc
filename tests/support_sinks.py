"""Incident events for sink tests, and a way to deliver them as a drain would."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import msgspec

from sinks import Refs, Sink
from stormwatch.errors import SinkError
from stormwatch.wire import Incident, IncidentAlert, IncidentChanges, IncidentEvent

T0 = 1_790_000_000.0


def alert(i: int, status: str = "firing", severity: str = "warning") -> IncidentAlert:
    return IncidentAlert(
        fingerprint=f"{i:016x}",
        labels={"alertname": f"A{i}", "service": "checkout", "severity": severity},
        status=status,  # type: ignore[arg-type]
        starts_at=T0 + i,
        last_seen=T0 + i,
    )


def incident_event(
    kind: str = "opened",
    sequence: int = 1,
    key: str = "inc-abc",
    alerts: int = 1,
    *,
    severity: str = "P2",
    priority: int | None = None,
    title: str = "checkout: 5 alerts",
    acknowledged_by: str | None = None,
    changes: IncidentChanges | None = None,
    compact: bool = False,
) -> IncidentEvent:
    """One event of an incident; `compact` makes an `updated` as the new engine sends
    it (no alert list, no timeline: `changes` says what happened)."""
    every = [alert(i) for i in range(alerts)]
    listed = [] if compact else every
    shared = dict(every[0].labels.items() & every[1].labels.items()) if alerts > 1 else {}
    labels = {**(every[0].labels if alerts == 1 else shared), "service": "checkout"}
    inc = Incident(
        key=key,
        rule="service-alert-burst",
        group={"service": "checkout"},
        status="resolved" if kind == "resolved" else "open",
        severity=severity,  # type: ignore[arg-type]
        category="availability",
        priority=priority if priority is not None else int(severity[1]),
        title=title,
        labels=labels,
        alerts=listed,
        alert_count=alerts,
        first_seen=T0,
        last_seen=T0,
        opened_at=T0 + 5,
        detected_at=T0 + 5,
        resolved_at=T0 + 60 if kind == "resolved" else None,
        acknowledged_at=T0 + 30 if acknowledged_by else None,
        acknowledged_by=acknowledged_by or "",
    )
    return IncidentEvent(
        event=kind,  # type: ignore[arg-type]
        at=T0 + sequence,
        reason="acknowledged" if acknowledged_by and kind == "updated" else kind,
        sequence=sequence,
        incident=inc,
        processed_at=T0 + sequence,
        changes=changes,
    )


def lifecycle(key: str = "inc-abc") -> list[IncidentEvent]:
    """Opened, two updates (an alert more, then escalated to P1 and acknowledged), resolved."""
    return [
        incident_event("opened", 1, key, alerts=2),
        incident_event(
            "updated",
            2,
            key,
            alerts=3,
            compact=True,
            changes=IncidentChanges(alerts_added=[alert(2)]),
        ),
        incident_event(
            "updated",
            3,
            key,
            alerts=3,
            compact=True,
            severity="P1",
            acknowledged_by="ada",
            changes=IncidentChanges(previous_severity="P2", previous_priority=2),
        ),
        incident_event("resolved", 4, key, alerts=3, severity="P1", acknowledged_by="ada"),
    ]


async def deliver_all(sink: Sink, refs: Refs, events: Iterable[IncidentEvent]) -> None:
    """Deliver in order, recording sequences as the drain does (retries not included)."""
    for event in events:
        ref = await refs.get(event.incident.key)
        if event.sequence <= ref.sequence:
            continue
        await sink.deliver(event)
        ref = await refs.get(event.incident.key)
        await refs.put(event.incident.key, msgspec.structs.replace(ref, sequence=event.sequence))


async def deliver_retrying(sink: Sink, refs: Refs, event: IncidentEvent, attempts: int = 20) -> int:
    """Deliver one event as the drain would, retrying retryable errors (after at most
    50 ms of the Retry-After they ask for); returns the failures seen."""
    failures = 0
    for _ in range(attempts):
        try:
            await deliver_all(sink, refs, [event])
            return failures
        except SinkError as err:
            if not err.retryable:
                raise
            failures += 1
            await asyncio.sleep(min(err.retry_after_s or 0.0, 0.05))
    raise AssertionError(f"still failing after {attempts} attempts")
