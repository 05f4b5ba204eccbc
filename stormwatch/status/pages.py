"""The status page's pages, each rendered from what the App's read functions return."""

from __future__ import annotations

from typing import Any

from correlate.suppress import Silence
from stormwatch.status.html import ago, at, esc, labels, page, severity, table, until
from stormwatch.views import RulesStatus, SinkHealth, SourceIntake
from stormwatch.wire import Incident

__all__ = ["health_page", "incident_page", "overview_page", "rules_page", "silences_page"]

_RECENT = 50


def _delivery(key: str, routed: list[str], pending: dict[str, dict[str, str]]) -> str:
    states = pending.get(key, {})
    out = []
    for sink in routed:
        state = states.get(sink, "delivered")
        cls = "ok" if state == "delivered" else "bad"
        out.append(f'{esc(sink)}: <span class="{cls}">{esc(state)}</span>')
    return "<br>".join(out) or '<span class="muted">no sink routed</span>'


def _incident_rows(
    incidents: list[Incident],
    now: float,
    routed: dict[str, list[str]],
    pending: dict[str, dict[str, str]],
) -> list[list[str]]:
    return [
        [
            severity(i.severity),
            f'<a href="/status/incidents/{esc(i.key)}">{esc(i.title)}</a>',
            esc(i.rule),
            f'<span class="num">{i.alert_count}</span>',
            ago(i.opened_at, now),
            ago(i.resolved_at, now) if i.resolved_at else esc(i.status),
            _delivery(i.key, routed.get(i.key, []), pending),
        ]
        for i in incidents
    ]


def overview_page(
    incidents: list[Incident],
    now: float,
    routed: dict[str, list[str]],
    pending: dict[str, dict[str, str]],
) -> str:
    open_ = sorted(
        (i for i in incidents if i.status == "open"), key=lambda i: (i.severity, -i.opened_at)
    )
    done = sorted((i for i in incidents if i.status != "open"), key=lambda i: -(i.resolved_at or 0))
    header = ["sev", "incident", "rule", "alerts", "age", "status", "delivery"]
    header_done = ["sev", "incident", "rule", "alerts", "age", "resolved", "delivery"]
    return page(
        "incidents",
        f"<h1>Open incidents ({len(open_)})</h1>"
        + table(header, _incident_rows(open_, now, routed, pending), "No open incident.")
        + f"<h2>Recently resolved ({len(done)})</h2>"
        + table(
            header_done,
            _incident_rows(done[:_RECENT], now, routed, pending),
            "Nothing resolved within correlate.retention.",
        ),
    )


def incident_page(
    incident: Incident,
    explained: dict[str, Any] | None,
    now: float,
    routed: list[str],
    pending: dict[str, dict[str, str]],
    notice: str = "",
) -> str:
    i = incident
    facts = [
        ["severity", severity(i.severity) + f" priority {i.priority}, {esc(i.category)}"],
        [
            "status",
            esc(i.status) + (f", resolved {esc(at(i.resolved_at))}" if i.resolved_at else ""),
        ],
        ["rule", esc(i.rule)],
        ["group", labels(i.group) or '<span class="muted">(one group)</span>'],
        ["opened", f"{esc(at(i.opened_at))} ({ago(i.opened_at, now)} ago)"],
        [
            "alerts",
            f"{i.alert_count}"
            + (f" ({i.truncated_alerts} not listed)" if i.truncated_alerts else ""),
        ],
        ["delivery", _delivery(i.key, routed, pending)],
    ]
    acked_by = getattr(i, "acknowledged_by", "")
    if acked_by:
        facts.append(
            ["acknowledged", f"by {esc(acked_by)} {esc(at(getattr(i, 'acknowledged_at', 0)))}"]
        )
    body = f"<h1>{severity(i.severity)} {esc(i.title)}</h1>"
    body += f'<div class="notice">{esc(notice)}</div>' if notice else ""
    body += f"<p>{esc(i.summary)}</p>" if i.summary else ""
    body += table(["", ""], facts, "")
    if i.status == "open":
        body += (
            f'<h2>Acknowledge</h2><form method=post action="/status/incidents/{esc(i.key)}/ack">'
            "<label for=by>by</label><input id=by name=by required>"
            "<label for=ack-comment>comment</label><input id=ack-comment name=comment size=60>"
            " <button type=submit>Acknowledge</button></form>"
        )
    body += "<h2>Why it opened</h2>" + _explanation(explained)
    body += "<h2>Alerts</h2>" + table(
        ["status", "labels", "started", "last seen", "re-sent"],
        (
            [
                esc(a.status),
                labels(a.labels),
                esc(at(a.starts_at)),
                ago(a.last_seen, now),
                str(a.duplicates),
            ]
            for a in i.alerts
        ),
        "This event lists no alerts.",
    )
    body += "<h2>Timeline</h2>" + table(
        ["at", "event", "detail"],
        ([esc(at(t.at)), esc(t.event), esc(t.detail)] for t in i.timeline),
        "No timeline entries.",
    )
    return page(i.title, body)


def _explanation(e: dict[str, Any] | None) -> str:
    if e is None:
        return '<p class="muted">No explanation kept for this incident.</p>'
    rule = e["rule"]
    where = f"{rule['file']}:{rule['line']}" if rule.get("file") else "(no longer loaded)"
    opened = e.get("opened_by") or {}
    rows = [
        ["why", esc(e.get("why") or "")],
        ["rule", f"<code>{esc(rule['name'])}</code> at <code>{esc(where)}</code>"],
        [
            "window",
            f"{len(e.get('window', []))} alerts; the condition held at "
            f"{esc(at(opened.get('event_time')))} (event time)",
        ],
        ["decided", esc(at(opened.get("detected_at"))) + " (when the daemon saw it hold)"],
    ]
    if e.get("inhibited_by"):
        rows.append(
            [
                "held back by",
                f'<a href="/status/incidents/{esc(e["inhibited_by"])}">{esc(e["inhibited_by"])}</a>',
            ]
        )
    window = table(
        ["event time", "fingerprint", "labels"],
        (
            [
                esc(at(w["event_time"])),
                f"<code>{esc(w['fingerprint'])}</code>",
                labels(w.get("labels", {})),
            ]
            for w in e.get("window", [])
        ),
        "The window held no alerts.",
    )
    return table(["", ""], rows, "") + "<h2>The window that opened it</h2>" + window


def silences_page(
    silences: list[Silence], now: float, errors: list[str], form: dict[str, str], notice: str = ""
) -> str:
    body = "<h1>Silences</h1>"
    body += f'<div class="notice">{esc(notice)}</div>' if notice else ""
    body += "".join(f'<div class="error">{esc(e)}</div>' for e in errors)
    rows = []
    for s in sorted(silences, key=lambda s: s.ends_at):
        state = "pending" if now < s.starts_at else ("active" if now < s.ends_at else "expired")
        rows.append(
            [
                f"<code>{esc(s.id)}</code>",
                esc(state),
                "<br>".join(f"<code>{esc(m)}</code>" for m in s.matchers),
                f"{esc(at(s.ends_at))} (in {until(s.ends_at, now)})"
                if state != "expired"
                else esc(at(s.ends_at)),
                esc(s.created_by),
                esc(s.comment),
                f'<form class=inline method=post action="/status/silences/{esc(s.id)}/expire">'
                "<button type=submit>Expire</button></form>",
            ]
        )
    body += table(["id", "state", "matchers", "ends", "by", "comment", ""], rows, "No silences.")
    body += (
        "<h2>New silence</h2><form method=post action=/status/silences>"
        "<label for=matchers>matchers, one per line (Alertmanager syntax)</label>"
        f"<textarea id=matchers name=matchers rows=3 placeholder='service=\"checkout\"' required>{esc(form.get('matchers', ''))}</textarea>"
        f'<label for=duration>duration</label><input id=duration name=duration value="{esc(form.get("duration", "2h"))}">'
        f'<label for=created_by>created by</label><input id=created_by name=created_by value="{esc(form.get("created_by", ""))}" required>'
        f'<label for=comment>comment</label><input id=comment name=comment size=60 value="{esc(form.get("comment", ""))}" required>'
        "<p><button type=submit>Create silence</button></p></form>"
    )
    return page("silences", body, refresh_s=None)


def health_page(intake: list[SourceIntake], sinks: list[SinkHealth], now: float) -> str:
    def rejected(r: SourceIntake) -> str:
        bad = ", ".join(f"{esc(k)} {v:g}" for k, v in sorted(r.rejected.items()))
        return f'<span class="bad">{bad}</span>' if bad else "0"

    body = "<h1>Intake per source</h1>" + table(
        ["source", "firing", "resolved", "re-sends", "rejected"],
        (
            [esc(r.source), f"{r.firing:g}", f"{r.resolved:g}", f"{r.deduplicated:g}", rejected(r)]
            for r in intake
        ),
        "No source has sent anything yet.",
    )
    body += "<h1>Sinks</h1>" + table(
        [
            "sink",
            "type",
            "pending",
            "oldest pending",
            "dead letters",
            "delivered ok",
            "retryable",
            "refused",
            "breaker",
            "drain",
        ],
        (
            [
                esc(s.name),
                esc(s.type),
                f'<span class="{"bad" if s.pending else "ok"}">{s.pending}</span>',
                ago(s.oldest_pending_at, now),
                f'<span class="{"bad" if s.dead_letters else "ok"}">{s.dead_letters}</span>'
                + (f" ({s.dropped_dead_letters} dropped)" if s.dropped_dead_letters else ""),
                f"{s.delivered.get('ok', 0):g}",
                f"{s.delivered.get('retryable', 0):g}",
                f"{s.delivered.get('permanent', 0):g}",
                esc(s.breaker),
                '<span class="ok">running</span>'
                if s.draining
                else '<span class="bad">stopped</span>',
            ]
            for s in sinks
        ),
        "No sinks configured.",
    )
    return page("intake and sinks", body)


def rules_page(status: RulesStatus) -> str:
    state = (
        f'<span class="ok">last load ok</span>, {esc(at(status.last_reload_at))}'
        if status.last_reload_ok
        else f'<span class="bad">last reload failed</span>; the rules below stay live<pre>{esc(status.last_error)}</pre>'
    )
    body = f"<h1>Rules ({len(status.rules)})</h1><p>{state}</p>"
    body += "<p>paths: " + " ".join(f"<code>{esc(p)}</code>" for p in status.paths) + "</p>"
    body += table(
        ["file", "rules"],
        ([f"<code>{esc(f)}</code>", str(n)] for f, n in status.files.items()),
        "No rule file.",
    )
    body += "<h2>Loaded</h2>" + table(
        ["rule", "type", "defined at"],
        (
            [f"<code>{esc(n)}</code>", esc(k), f"<code>{esc(f)}:{line or ''}</code>"]
            for n, f, line, k in status.rules
        ),
        "No rules loaded.",
    )
    return page("rules", body)
