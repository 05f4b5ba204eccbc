"""The CLI for a running daemon, in amtool's manner:

    stormwatch incidents list [--status open|resolved|all]
    stormwatch incidents show|explain KEY
    stormwatch incidents ack KEY [--by NAME] [--comment TEXT]
    stormwatch silence add MATCHER... (--duration 2h | --end RFC3339) --comment TEXT [--author NAME]
    stormwatch silence query [MATCHER...] [--expired]
    stormwatch silence expire ID...

Every command takes `--url` (env STORMWATCH_URL, default http://127.0.0.1:9095) and
`--output table|json`. Exit codes: 0 done; 1 the daemon could not do it (unreachable,
not found, a server error); 2 the request itself was wrong (bad arguments, a 400).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from typing import Any

from rules import MatcherError, parse_matchers
from stormwatch.wire import format_duration, parse_duration

__all__ = ["CLIENT_COMMANDS", "add_client_commands", "run_client_command"]

CLIENT_COMMANDS = ("incidents", "silence")
EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2
DEFAULT_URL = "http://127.0.0.1:9095"


class Failed(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--url",
        default=os.environ.get("STORMWATCH_URL", DEFAULT_URL),
        help=f"the daemon (env STORMWATCH_URL; default {DEFAULT_URL})",
    )
    p.add_argument("--output", "-o", choices=["table", "json"], default="table")


def add_client_commands(sub: Any) -> None:
    inc = sub.add_parser("incidents", help="list, show, explain or acknowledge incidents")
    isub = inc.add_subparsers(dest="incidents_command", metavar="ACTION", required=True)
    ls = isub.add_parser("list", help="incidents the daemon holds")
    ls.add_argument("--status", choices=["open", "resolved", "all"], default="open")
    _common(ls)
    for action, text in (
        ("show", "one incident, with its alerts and timeline"),
        ("explain", "why an incident opened: rule file:line, window, alerts"),
        ("ack", "acknowledge an incident"),
    ):
        p = isub.add_parser(action, help=text)
        p.add_argument("key", help="the incident key (inc-...)")
        if action == "ack":
            p.add_argument("--by", default=getpass.getuser(), help="who (default: $USER)")
            p.add_argument("--comment", default="")
        _common(p)

    sil = sub.add_parser("silence", help="add, query or expire silences")
    ssub = sil.add_subparsers(dest="silence_command", metavar="ACTION", required=True)
    add = ssub.add_parser("add", help='mute alerts matching every MATCHER, e.g. service="db"')
    add.add_argument("matchers", nargs="+", metavar="MATCHER")
    when = add.add_mutually_exclusive_group()
    when.add_argument("--duration", "-d", default="1h", help="how long, e.g. 2h (default 1h)")
    when.add_argument("--end", help="until this RFC 3339 time instead")
    add.add_argument("--comment", "-c", required=True)
    add.add_argument("--author", "-a", default=getpass.getuser(), help="default: $USER")
    _common(add)
    query = ssub.add_parser("query", help="silences whose matchers fit every MATCHER")
    query.add_argument("matchers", nargs="*", metavar="MATCHER")
    query.add_argument("--expired", action="store_true", help="expired ones, not active")
    _common(query)
    expire = ssub.add_parser("expire", help="end silences now")
    expire.add_argument("ids", nargs="+", metavar="ID")
    _common(expire)


def _call(base: str, method: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        base.rstrip("/") + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json"} if data else {},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            message = json.loads(raw).get("message", err.reason)
        except (ValueError, AttributeError):
            message = raw.decode(errors="replace") or err.reason
        if err.code == 404 and path.endswith("/ack"):
            message = f"{message} (this daemon has no POST /api/v1/incidents/{{key}}/ack)"
        raise Failed(
            f"{method} {path}: {err.code}: {message}", 2 if err.code == 400 else 1
        ) from err
    except OSError as err:
        raise Failed(f"cannot reach {base}: {err}", EXIT_FAILED) from err
    return json.loads(raw) if raw.strip() else None


def _ago(ts: float | None, now: float) -> str:
    return "-" if not ts else format_duration(max(0, int(now - ts)))


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]
    ]
    return "\n".join(line.rstrip() for line in lines)


def _labels(labels: dict[str, str]) -> str:
    return ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))


def _incidents(args: argparse.Namespace, now: float) -> str | Any:
    cmd = args.incidents_command
    if cmd == "list":
        found = _call(args.url, "GET", f"/api/v1/incidents?status={args.status}")
        if args.output == "json":
            return found
        rows = [
            [
                i["key"],
                i["severity"],
                i["status"],
                _ago(i["opened_at"], now),
                i["rule"],
                str(i["alert_count"]),
                i["title"],
            ]
            for i in sorted(found, key=lambda i: (i["severity"], -i["opened_at"]))
        ]
        return _table(rows, ["KEY", "SEV", "STATUS", "AGE", "RULE", "ALERTS", "TITLE"])
    key = urllib.parse.quote(args.key, safe="")
    if cmd == "ack":
        body = {"by": args.by, "comment": args.comment}
        answer = _call(args.url, "POST", f"/api/v1/incidents/{key}/ack", body)
        if args.output == "json":
            return answer
        if isinstance(answer, dict) and answer.get("queued"):  # partitioned mode: 202
            return f"acknowledgement of {args.key} as {args.by} sent to the shard holding it"
        return f"acknowledged {args.key} as {args.by}"
    if cmd == "show":
        i = _call(args.url, "GET", f"/api/v1/incidents/{key}")
        if args.output == "json":
            return i
        head = [
            f"{i['key']}  {i['severity']}  {i['status']}  {i['title']}",
            f"rule {i['rule']}, group {_labels(i['group'])}, {i['alert_count']} alerts, "
            f"opened {_iso(i['opened_at'])} ({_ago(i['opened_at'], now)} ago)",
        ]
        alerts = _table(
            [
                [a["fingerprint"], a["status"], str(a.get("duplicates", 0)), _labels(a["labels"])]
                for a in i.get("alerts", [])
            ],
            ["FINGERPRINT", "STATUS", "RESENT", "LABELS"],
        )
        timeline = [
            f"  {_iso(t['at'])}  {t['event']}  {t.get('detail', '')}".rstrip()
            for t in i.get("timeline", [])
        ]
        return "\n".join([*head, "", alerts, "", "timeline:", *timeline])
    e = _call(args.url, "GET", f"/api/v1/incidents/{key}/explain")
    if args.output == "json":
        return e
    rule = e["rule"]
    where = f"{rule['file']}:{rule['line']}" if rule.get("file") else "(rule no longer loaded)"
    lines = [
        f"{e['incident']['key']}: {e['incident']['title']}",
        f"rule:   {rule['name']} at {where}",
        f"why:    {e['why']}",
        f"window: {len(e['window'])} alerts",
    ]
    lines += [
        f"  {_iso(w['event_time'])}  {w['fingerprint']}  {_labels(w.get('labels', {}))}"
        for w in e["window"]
    ]
    if e.get("inhibited_by"):
        lines.append(f"held back by {e['inhibited_by']}")
    return "\n".join(lines)


def _silences(args: argparse.Namespace, now: float) -> str | Any:
    from stormwatch.amapi import from_matcher

    cmd = args.silence_command
    if cmd == "add":
        try:
            parse_matchers(args.matchers)
        except MatcherError as err:
            raise Failed(str(err), EXIT_INVALID) from err
        try:
            ends = (
                datetime.fromisoformat(args.end).timestamp()
                if args.end
                else now + parse_duration(args.duration)
            )
        except ValueError as err:
            raise Failed(str(err), EXIT_INVALID) from err
        body = {
            "matchers": [from_matcher(m) for m in args.matchers],
            "startsAt": datetime.fromtimestamp(now, UTC).isoformat(),
            "endsAt": datetime.fromtimestamp(ends, UTC).isoformat(),
            "createdBy": args.author,
            "comment": args.comment,
        }
        answer = _call(args.url, "POST", "/api/v2/silences", body)
        return answer if args.output == "json" else answer["silenceID"]
    if cmd == "expire":
        for sid in args.ids:
            _call(args.url, "DELETE", f"/api/v2/silence/{urllib.parse.quote(sid, safe='')}")
        return {"expired": args.ids} if args.output == "json" else ""
    query = urllib.parse.urlencode([("filter", m) for m in args.matchers])
    found = [
        s
        for s in _call(args.url, "GET", "/api/v2/silences" + (f"?{query}" if query else ""))
        if (s["status"]["state"] == "expired") == args.expired
    ]
    if args.output == "json":
        return found
    rows = [
        [
            s["id"],
            s["status"]["state"],
            " ".join(_matcher_text(m) for m in s["matchers"]),
            s["endsAt"],
            s["createdBy"],
            s["comment"],
        ]
        for s in found
    ]
    return _table(rows, ["ID", "STATE", "MATCHERS", "ENDS AT", "CREATED BY", "COMMENT"])


def _matcher_text(m: dict[str, Any]) -> str:
    op = (
        ("=~" if m["isRegex"] else "=")
        if m.get("isEqual", True)
        else ("!~" if m["isRegex"] else "!=")
    )
    return f'{m["name"]}{op}"{m["value"]}"'


def run_client_command(args: argparse.Namespace) -> int:
    now = time.time()
    try:
        out = _incidents(args, now) if args.command == "incidents" else _silences(args, now)
    except Failed as err:
        print(f"stormwatch: {err}", file=sys.stderr)
        return err.code
    if args.output == "json":
        print(json.dumps(out, indent=2, sort_keys=True))
    elif out:
        print(out)
    return EXIT_OK
