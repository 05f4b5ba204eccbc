"""The status page's HTML building blocks: one layout, tables, times. Server-rendered
strings, escaped here; no build step, no CDN, no JavaScript."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from html import escape

from stormwatch.wire import format_duration

__all__ = ["ago", "at", "esc", "labels", "page", "severity", "table", "until"]

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:.6em 1.2em;display:flex;gap:1.5em;align-items:baseline}
header a{color:#cfd6e4;text-decoration:none}header a:hover{color:#fff}
header strong{font-size:1.1em}main{padding:1em 1.2em;max-width:1300px}
h1{font-size:1.3em;margin:.2em 0 .6em}h2{font-size:1.1em;margin:1.4em 0 .4em}
table{border-collapse:collapse;width:100%;background:#fff;box-shadow:0 1px 2px #0002}
th,td{text-align:left;padding:.35em .6em;border-bottom:1px solid #e4e7ec;vertical-align:top}
th{background:#eef0f4;font-weight:600}td.num{text-align:right}
.sev{font-weight:700;padding:.05em .45em;border-radius:3px;color:#fff}
.P1{background:#c0262d}.P2{background:#d9731a}.P3{background:#b59a00}.P4{background:#5b7083}
.ok{color:#1b7f3b}.bad{color:#c0262d;font-weight:600}.muted{color:#6b7280}
.notice{background:#fff8e1;border:1px solid #e9c46a;padding:.5em .8em;margin:.6em 0}
.error{background:#fdecea;border:1px solid #e57373;padding:.5em .8em;margin:.6em 0}
form.inline{display:inline}input,textarea,select{font:inherit}
textarea{width:100%;max-width:40em}label{display:block;margin:.4em 0 .1em;font-weight:600}
button{font:inherit;padding:.25em .8em;cursor:pointer}
code{background:#eef0f4;padding:0 .25em;border-radius:2px}
"""


def esc(value: object) -> str:
    return escape(str(value), quote=True)


def page(title: str, body: str, *, refresh_s: int | None = 10) -> str:
    """A whole page; `refresh_s` makes the browser reload it (none on pages with forms
    being filled in, so typed text is not lost)."""
    refresh = f'<meta http-equiv="refresh" content="{refresh_s}">' if refresh_s else ""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f'<meta name="viewport" content="width=device-width,initial-scale=1">{refresh}'
        f"<title>{esc(title)} · stormwatch</title><style>{_CSS}</style></head><body>"
        "<header><strong>stormwatch</strong><a href=/>incidents</a>"
        "<a href=/status/silences>silences</a><a href=/status/health>intake &amp; sinks</a>"
        "<a href=/status/rules>rules</a></header>"
        f"<main>{body}</main></body></html>"
    )


def table(header: Iterable[str], rows: Iterable[Iterable[str]], empty: str) -> str:
    """Cells are HTML already (escape values with `esc`)."""
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    if not body:
        return f'<p class="muted">{esc(empty)}</p>'
    names = list(header)
    head = "".join(f"<th>{esc(h)}</th>" for h in names)
    thead = f"<thead><tr>{head}</tr></thead>" if any(names) else ""
    return f"<table>{thead}<tbody>{body}</tbody></table>"


def ago(ts: float | None, now: float) -> str:
    if not ts:
        return '<span class="muted">-</span>'
    return f'<span title="{esc(at(ts))}">{esc(format_duration(max(0, int(now - ts))))}</span>'


def until(ts: float, now: float) -> str:
    return esc(format_duration(max(0, int(ts - now))))


def at(ts: float | None) -> str:
    if not ts:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def labels(values: dict[str, str]) -> str:
    return " ".join(f"<code>{esc(k)}={esc(v)}</code>" for k, v in sorted(values.items()))


def severity(sev: str) -> str:
    return f'<span class="sev {esc(sev)}">{esc(sev)}</span>'
