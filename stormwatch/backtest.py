"""`replay --against`: what a rule change would do, incident by incident.

Incident keys hash the event time of the first alert of the opening window, so a
changed threshold changes the keys of incidents that are really the same. A backtest
therefore pairs the incidents of the two rule sets by rule, group and overlapping time
(from `opened_at` to `resolved_at`, or the end of the archive): each new incident is
paired with the old one of the same rule and group whose span overlaps it most, the
pair is *changed* if it opened at another time or holds other alerts or another
severity, and what stays unpaired was *added* or *dropped*. Raising a threshold from 5
to 10 then reads "N dropped, M changed (opened later, more alerts)", not as hundreds of
incidents added and dropped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec

from stormwatch.replay import IncidentSummary

__all__ = ["Backtest", "Change", "RuleDiff", "compare", "format_table"]


class Change(msgspec.Struct, kw_only=True):
    """One paired incident whose outcome differs."""

    rule: str
    group: dict[str, str]
    old_key: str
    new_key: str
    opened_delta_s: float
    """New `opened_at` minus old: positive opens later."""
    alerts_delta: int
    old_severity: str
    new_severity: str


class RuleDiff(msgspec.Struct, kw_only=True):
    rule: str
    old: int = 0
    new: int = 0
    added: list[IncidentSummary] = []
    dropped: list[IncidentSummary] = []
    changed: list[Change] = []
    unchanged: int = 0


@dataclass
class Backtest:
    rules: dict[str, RuleDiff] = field(default_factory=dict)

    @property
    def totals(self) -> dict[str, int]:
        out = {"added": 0, "dropped": 0, "changed": 0, "unchanged": 0}
        for d in self.rules.values():
            out["added"] += len(d.added)
            out["dropped"] += len(d.dropped)
            out["changed"] += len(d.changed)
            out["unchanged"] += d.unchanged
        return out


def _span(i: IncidentSummary, end: float) -> tuple[float, float]:
    return i.opened_at, i.resolved_at if i.resolved_at is not None else end


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    """How long two spans share; a zero-length span inside the other counts as touching."""
    lo, hi = max(a[0], b[0]), min(a[1], b[1])
    return hi - lo if hi >= lo else -1.0


def compare(
    new: Iterable[IncidentSummary], old: Iterable[IncidentSummary], end: float | None = None
) -> Backtest:
    """Pair `new` incidents with `old` ones by rule, group and overlapping time."""
    new, old = list(new), list(old)
    if end is None:
        end = max((i.resolved_at or i.opened_at for i in (*new, *old)), default=0.0)
    by_group: dict[tuple[str, tuple[tuple[str, str], ...]], list[IncidentSummary]] = defaultdict(
        list
    )
    for i in old:
        by_group[(i.rule, tuple(sorted(i.group.items())))].append(i)
    result = Backtest()

    def diff(rule: str) -> RuleDiff:
        d = result.rules.get(rule)
        if d is None:
            d = result.rules[rule] = RuleDiff(rule=rule)
        return d

    for i in old:
        diff(i.rule).old += 1
    paired: set[str] = set()
    for n in sorted(new, key=lambda i: i.opened_at):
        d = diff(n.rule)
        d.new += 1
        span = _span(n, end)
        best, best_overlap = None, -1.0
        for o in by_group.get((n.rule, tuple(sorted(n.group.items()))), ()):
            if o.key in paired:
                continue
            ov = _overlap(span, _span(o, end))
            if ov > best_overlap:
                best, best_overlap = o, ov
        if best is None:
            d.added.append(n)
            continue
        paired.add(best.key)
        change = Change(
            rule=n.rule,
            group=n.group,
            old_key=best.key,
            new_key=n.key,
            opened_delta_s=n.opened_at - best.opened_at,
            alerts_delta=n.alert_count - best.alert_count,
            old_severity=best.severity,
            new_severity=n.severity,
        )
        if change.opened_delta_s or change.alerts_delta or best.severity != n.severity:
            d.changed.append(change)
        else:
            d.unchanged += 1
    for o in old:
        if o.key not in paired:
            diff(o.rule).dropped.append(o)
    return result


def _describe(c: Change) -> str:
    what = []
    if c.opened_delta_s:
        when = "later" if c.opened_delta_s > 0 else "earlier"
        what.append(f"opened {abs(c.opened_delta_s):.1f}s {when}")
    if c.alerts_delta:
        what.append(f"{abs(c.alerts_delta)} alerts {'more' if c.alerts_delta > 0 else 'fewer'}")
    if c.old_severity != c.new_severity:
        what.append(f"severity {c.old_severity} -> {c.new_severity}")
    group = ", ".join(f'{k}="{v}"' for k, v in c.group.items())
    return f"  ~ {c.rule} {{{group}}}: " + ", ".join(what)


def format_table(bt: Backtest, *, examples: int = 5) -> str:
    """A table per rule for people, then a few examples of each kind of difference."""
    header = ("rule", "old", "new", "added", "dropped", "changed", "unchanged")
    rows = [
        (d.rule, d.old, d.new, len(d.added), len(d.dropped), len(d.changed), d.unchanged)
        for d in sorted(bt.rules.values(), key=lambda d: d.rule)
    ]
    width = max([len(header[0]), *(len(r[0]) for r in rows)])
    lines = [f"{header[0]:<{width}}  " + "  ".join(f"{h:>9}" for h in header[1:])]
    for r in rows:
        lines.append(f"{r[0]:<{width}}  " + "  ".join(f"{v:>9}" for v in r[1:]))
    for d in sorted(bt.rules.values(), key=lambda d: d.rule):
        for i in d.added[:examples]:
            lines.append(f"  + {i.rule}  {i.title}  ({i.alert_count} alerts, {i.severity})")
        for i in d.dropped[:examples]:
            lines.append(f"  - {i.rule}  {i.title}  ({i.alert_count} alerts, {i.severity})")
        lines.extend(_describe(c) for c in d.changed[:examples])
    t = bt.totals
    lines.append(
        f"{t['added']} added, {t['dropped']} dropped, {t['changed']} changed, "
        f"{t['unchanged']} unchanged"
    )
    return "\n".join(lines)
