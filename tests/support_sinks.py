"""Incident events for sink tests."""

from __future__ import annotations

from stormwatch.wire import Incident, IncidentAlert, IncidentEvent

T0 = 1_790_000_000.0


def incident_event(
    kind: str = "opened", sequence: int = 1, key: str = "inc-abc", alerts: int = 1
) -> IncidentEvent:
    inc = Incident(
        key=key,
        rule="service-alert-burst",
        group={"service": "checkout"},
        status="resolved" if kind == "resolved" else "open",
        severity="P2",
        category="availability",
        title="checkout: 5 alerts",
        alerts=[
            IncidentAlert(
                fingerprint=f"{i:016x}",
                labels={"alertname": f"A{i}", "service": "checkout"},
                status="firing",
                starts_at=T0,
                last_seen=T0,
            )
            for i in range(alerts)
        ],
        alert_count=alerts,
        first_seen=T0,
        last_seen=T0,
        opened_at=T0,
        resolved_at=T0 + 60 if kind == "resolved" else None,
    )
    return IncidentEvent(event=kind, at=T0 + sequence, reason=kind, sequence=sequence, incident=inc)  # type: ignore[arg-type]
