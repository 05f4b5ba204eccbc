"""Rules compiled for the hot path: one `LiveRule` per correlating rule.

Built once per (re)load. Holds what `Engine` needs per alert without touching the rule
Structs: the group-by labels, timespan, condition, the rules a temporal rule listens to,
and its `Aggregator` (one class per correlation type, correlate/windows/). Each keeps its
`RuleState` (its windows) across reloads while the rule's correlation hash is unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Final, Literal, TypeAlias

from correlate.classify import Classifier
from correlate.match import RuleMatcher
from correlate.state import RuleState
from correlate.windows import (
    Absence as AbsenceAgg,
)
from correlate.windows import (
    Aggregator,
    CountBelow,
    GroupWait,
    fires_on_arrival,
)
from correlate.windows import (
    EventCount as EventCountAgg,
)
from correlate.windows import (
    Temporal as TemporalAgg,
)
from correlate.windows import (
    TemporalOrdered as OrderedAgg,
)
from correlate.windows import (
    ValueCount as ValueCountAgg,
)
from rules import Rule, RuleSet, rule_fingerprint
from rules.schema import (
    Absence,
    Condition,
    EventCount,
    Group,
    Temporal,
    TemporalOrdered,
    ValueCount,
)

if TYPE_CHECKING:
    from correlate.context import Context

__all__ = ["Kind", "LiveRule", "Rulebook"]

Kind: TypeAlias = Literal["count", "value", "temporal", "ordered", "absence", "group"]
_SEP: Final = "\x1f"


def _always(_: float) -> bool:
    return True


class LiveRule:
    __slots__ = (
        "agg",
        "aliases",
        "classifier",
        "condition",
        "field",
        "fires",
        "group",
        "group_by",
        "group_interval",
        "group_wait",
        "holds",
        "kind",
        "name",
        "quiet",
        "repeat_interval",
        "resolve_condition",
        "resolve_timespan",
        "rule",
        "state",
        "steps",
        "timespan",
    )

    def __init__(self, rule: Rule, state: RuleState, ctx: Context) -> None:
        corr = rule.correlation
        self.rule = rule
        self.name = rule.name
        self.state = state
        self.classifier = Classifier(rule)
        self.group: Group | None = None
        self.steps: tuple[str, ...] = ()
        self.aliases: dict[str, dict[str, str]] = {}
        self.field: tuple[str, ...] = ()
        self.condition: Condition | None = None
        self.holds: Callable[[float], bool] = _always
        self.fires = True
        self.timespan = 0.0
        self.kind: Kind
        if isinstance(corr, Group):
            self.kind = "group"
            self.group = corr
            self.group_by = tuple(corr.group_by)
        else:
            assert corr is not None
            self.group_by = tuple(corr.group_by)
            self.timespan = float(corr.timespan)
            if isinstance(corr, EventCount):
                self.kind = "count"
                self.condition = corr.condition
                self.fires = fires_on_arrival(corr.condition)
                self.steps = tuple(corr.rules)
            elif isinstance(corr, ValueCount):
                self.kind = "value"
                self.condition = corr.condition
                self.steps = tuple(corr.rules)
                f = corr.condition.field or []
                self.field = (f,) if isinstance(f, str) else tuple(f)
                self.holds = corr.condition.holds
            elif isinstance(corr, Temporal | TemporalOrdered):
                self.kind = "temporal" if isinstance(corr, Temporal) else "ordered"
                self.steps = tuple(corr.rules)
                self.aliases = corr.aliases
                self.condition = corr.condition
                need = len(self.steps)
                self.holds = corr.condition.holds if corr.condition else (lambda n: n >= need)
            elif isinstance(corr, Absence):
                self.kind = "absence"
        res = rule.resolve
        self.quiet = float(res.quiet) if res and res.quiet else None
        self.resolve_condition = res.condition if res and res.condition and res.timespan else None
        self.resolve_timespan = float(res.timespan) if res and res.timespan else 0.0
        g = self.group
        self.group_wait = float(g.group_wait) if g else 0.0
        self.group_interval = float(g.group_interval) if g else None
        self.repeat_interval = float(g.repeat_interval) if g else None
        self.agg: Aggregator = _AGGREGATORS[self.kind](self, ctx)

    def group_labels(self, via: str) -> tuple[str, ...]:
        """The labels to group on for an alert that matched rule `via` (aliases map
        differently named fields of different rules onto one group-by name)."""
        if not self.aliases:
            return self.group_by
        return tuple(self.aliases.get(g, {}).get(via, g) for g in self.group_by)

    def gkey(self, labels: dict[str, str], via: str) -> str:
        """The group key of an alert's labels (matched via rule `via`)."""
        names = self.group_labels(via) if self.aliases else self.group_by
        if len(names) == 1:
            return labels.get(names[0], "")
        return _SEP.join([labels.get(n, "") for n in names])

    def group_of(self, gkey: str) -> dict[str, str]:
        return dict(zip(self.group_by, gkey.split(_SEP), strict=False)) if self.group_by else {}


def _count(lr: LiveRule, ctx: Context) -> Aggregator:
    return EventCountAgg(lr, ctx) if lr.fires else CountBelow(lr, ctx)


_AGGREGATORS: dict[str, Callable[[LiveRule, Context], Aggregator]] = {
    "count": _count,
    "value": ValueCountAgg,
    "temporal": TemporalAgg,
    "ordered": OrderedAgg,
    "absence": AbsenceAgg,
    "group": GroupWait,
}


class Rulebook:
    """The compiled rule set: live rules by name, the matcher, and who listens to whom."""

    def __init__(self, rules: RuleSet, old_states: dict[str, RuleState], ctx: Context) -> None:
        self.rules = rules
        self.live: dict[str, LiveRule] = {}
        self.states: dict[str, RuleState] = {}
        by_name = {r.name: r for r in rules.rules if r.enabled}
        for rule in by_name.values():
            if rule.correlation is None:
                continue
            fp = rule_fingerprint(rule)
            joins = getattr(rule.correlation, "rules", None) or []
            # A rule that counts other rules' matches depends on their matchers, too.
            fp += "".join(rule_fingerprint(by_name[n]) for n in joins if n in by_name)
            prev = old_states.get(rule.name)
            rs = prev if prev is not None and prev.fingerprint == fp else RuleState(fingerprint=fp)
            self.states[rule.name] = rs
            self.live[rule.name] = LiveRule(rule, rs, ctx)
        self.listeners: dict[str, list[LiveRule]] = {}
        """rule name -> the temporal rules that join it."""
        for lr in self.live.values():
            for step in dict.fromkeys(lr.steps):
                self.listeners.setdefault(step, []).append(lr)
        wanted = {n for n, lr in self.live.items() if not lr.steps} | set(self.listeners)
        self.matcher = RuleMatcher([r for r in rules.rules if r.name in wanted and r.enabled])
        self.quiet = frozenset(n for n, lr in self.live.items() if lr.quiet is not None)
        self.hysteresis = frozenset(
            n for n, lr in self.live.items() if lr.resolve_condition is not None
        )
        heartbeats = [lr.rule for lr in self.live.values() if lr.agg.hears_resends]
        self.heartbeats = RuleMatcher(heartbeats) if heartbeats else None
        """`absence` rules also see re-sends: for a heartbeat, the re-send is the beat."""
