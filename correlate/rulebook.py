"""Rules compiled for the hot path: one `LiveRule` per correlating rule.

Built once per (re)load. Holds what `Engine` needs per alert without touching the rule
Structs: the kind, group-by labels, timespan, condition, and for `temporal` rules the
rules they listen to. Each keeps its `RuleState` (its windows) across reloads while the
rule's correlation hash is unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, TypeAlias

from correlate.classify import Classifier
from correlate.match import RuleMatcher
from correlate.state import RuleState
from correlate.windows import fires_on_arrival
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

__all__ = ["Kind", "LiveRule", "Rulebook"]

Kind: TypeAlias = Literal["count", "value", "temporal", "ordered", "absence", "group"]
_SEP = "\x1f"


def _always(_: float) -> bool:
    return True


class LiveRule:
    __slots__ = (
        "aliases",
        "classifier",
        "condition",
        "field",
        "fires",
        "group",
        "group_by",
        "holds",
        "kind",
        "name",
        "quiet",
        "resolve_condition",
        "resolve_timespan",
        "rule",
        "state",
        "steps",
        "timespan",
    )

    def __init__(self, rule: Rule, state: RuleState) -> None:
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

    def group_labels(self, via: str) -> tuple[str, ...]:
        """The labels to group on for an alert that matched rule `via` (aliases map
        differently named fields of different rules onto one group-by name)."""
        if not self.aliases:
            return self.group_by
        return tuple(self.aliases.get(g, {}).get(via, g) for g in self.group_by)

    def group_of(self, gkey: str) -> dict[str, str]:
        return dict(zip(self.group_by, gkey.split(_SEP), strict=False)) if self.group_by else {}


class Rulebook:
    """The compiled rule set: live rules by name, the matcher, and who listens to whom."""

    def __init__(self, rules: RuleSet, old_states: dict[str, RuleState]) -> None:
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
            self.live[rule.name] = LiveRule(rule, rs)
        self.listeners: dict[str, list[LiveRule]] = {}
        """rule name -> the temporal rules that join it."""
        for lr in self.live.values():
            for step in dict.fromkeys(lr.steps):
                self.listeners.setdefault(step, []).append(lr)
        wanted = {n for n, lr in self.live.items() if not lr.steps} | set(self.listeners)
        self.matcher = RuleMatcher([r for r in rules.rules if r.name in wanted and r.enabled])
        self.timed = frozenset(
            n
            for n, lr in self.live.items()
            if lr.quiet is not None or lr.resolve_condition is not None or lr.group
        )
        """Rules whose open incidents have timers to check on tick."""
        self.quiet = frozenset(n for n, lr in self.live.items() if lr.quiet is not None)
        self.hysteresis = frozenset(
            n for n, lr in self.live.items() if lr.resolve_condition is not None
        )
        heartbeats = [lr.rule for lr in self.live.values() if lr.kind == "absence"]
        self.heartbeats = RuleMatcher(heartbeats) if heartbeats else None
        """`absence` rules also see re-sends: for a heartbeat, the re-send is the beat."""
