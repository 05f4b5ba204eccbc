"""The words every ticketing sink writes about an incident, in one place.

A note (Jira comment, ServiceNow work note, Opsgenie note, Slack reply) ends with a
marker naming the incident and the event, `[stormwatch inc-… #7]`: after a lost answer
the sink looks for its marker before posting again, so a note is never written twice.
Works from compact `updated` events too: their `changes` say what happened, the
alert list may be empty.
"""

from __future__ import annotations

from stormwatch.wire import Incident, IncidentEvent

__all__ = ["alert_rows", "marker", "note_text", "shared_labels", "summary_line", "title_line"]


def shared_labels(inc: Incident) -> dict[str, str]:
    """The labels all listed alerts share, with the incident's group over them."""
    labels: dict[str, str] = {}
    if inc.alerts:
        common = inc.alerts[0].labels.items()
        for a in inc.alerts[1:]:
            common = common & a.labels.items()  # type: ignore[assignment]
        labels.update(common)
    labels.update(inc.group)
    return labels


def title_line(inc: Incident) -> str:
    """`[P2] checkout: 5 alerts within 60s`: what a ticket's summary says."""
    return f"[{inc.severity}] {inc.title}"


def summary_line(inc: Incident) -> str:
    return f"{title_line(inc)} ({inc.alert_count} alerts)"


def alert_rows(inc: Incident, limit: int = 30) -> list[str]:
    """One `k=v, k=v` line per listed alert (none for a compact update)."""
    return [", ".join(f"{k}={v}" for k, v in a.labels.items()) for a in inc.alerts[:limit]]


def marker(key: str, sequence: int, what: str = "") -> str:
    return f"[stormwatch {key} #{sequence}{' ' + what if what else ''}]"


def note_text(event: IncidentEvent) -> str:
    """What changed, for a note on the ticket."""
    inc, ch = event.incident, event.changes
    if event.event == "resolved":
        head = f"Resolved: {event.reason}"
    else:
        head = f"Updated ({event.reason}): {inc.alert_count} alerts, severity {inc.severity}"
    lines = [head]
    if ch is not None:
        if ch.previous_severity is not None:
            lines.append(f"Severity {ch.previous_severity} -> {inc.severity}")
        if ch.previous_priority is not None:
            lines.append(f"Priority {ch.previous_priority} -> {inc.priority}")
        if ch.alerts_added:
            names = ", ".join(
                a.labels.get("alertname", a.fingerprint) for a in ch.alerts_added[:10]
            )
            lines.append(f"{len(ch.alerts_added)} alerts added: {names}")
        if ch.alerts_resolved:
            lines.append(f"{len(ch.alerts_resolved)} alerts resolved")
    lines.append(marker(inc.key, event.sequence))
    return "\n".join(lines)
