"""Severity, category and priority of an incident, from its rule and what it holds.

A rule's `incident:` gives the defaults; its `classify:` cases are tried in order and
the first whose `when` holds overrides them. Priority follows the ITIL impact x urgency
matrix (1 = highest) when a case sets them, else it mirrors the severity.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from correlate.state import Tracked
from rules import Matcher, Rule, parse_matchers
from rules.schema import ClassifyCase
from stormwatch.wire import Severity

__all__ = ["Classification", "Classifier", "itil_priority"]

# Normalised alert severities (Alert.severity, Kind.severity), most severe first; unknown values rank lowest.
_ALERT_SEVERITY_RANK: Final = {
    "critical": 0,
    "page": 0,
    "high": 1,
    "error": 1,
    "major": 1,
    "warning": 2,
    "medium": 2,
    "minor": 3,
    "low": 3,
    "info": 4,
    "none": 5,
}
_SEVERITY_PRIORITY: Final[dict[str, int]] = {"P1": 1, "P2": 2, "P3": 3, "P4": 4}


def itil_priority(impact: int, urgency: int) -> int:
    """ITIL's 3x3 matrix: (1,1) -> 1 ... (3,3) -> 5."""
    return impact + urgency - 1


def highest_alert_severity(alerts: Sequence[Tracked]) -> str:
    best, rank = "", 99
    for a in alerts:
        value = a.kind.severity
        r = _ALERT_SEVERITY_RANK.get(value.lower(), 6)
        if r < rank:
            best, rank = value, r
    return best


class Classification:
    __slots__ = ("category", "priority", "severity")

    def __init__(self, severity: Severity, category: str, priority: int) -> None:
        self.severity = severity
        self.category = category
        self.priority = priority


class _Case:
    __slots__ = ("case", "matchers")

    def __init__(self, case: ClassifyCase) -> None:
        self.case = case
        self.matchers: list[Matcher] = parse_matchers(case.when.match)

    def holds(self, alerts: Sequence[Tracked], alert_count: int, common: dict[str, str]) -> bool:
        w = self.case.when
        if w.alert_severity and highest_alert_severity(alerts) not in w.alert_severity:
            return False
        if w.min_alerts is not None and alert_count < w.min_alerts:
            return False
        for label, least in w.min_distinct.items():
            if len({a.label(label) for a in alerts}) < least:
                return False
        if w.source and not any(a.kind.source in w.source for a in alerts):
            return False
        return all(m.matches(common) for m in self.matchers)


class Classifier:
    """Compiled once per rule; `classify` runs per incident event, not per alert."""

    def __init__(self, rule: Rule) -> None:
        self.default = rule.incident
        self.default_severity: Severity = rule.severity
        self.cases = [_Case(c) for c in rule.classify]

    def classify(
        self, alerts: Sequence[Tracked], alert_count: int, common: dict[str, str]
    ) -> Classification:
        severity: Severity = self.default_severity
        category = self.default.category
        priority = _SEVERITY_PRIORITY[severity]
        for c in self.cases:
            if c.holds(alerts, alert_count, common):
                case = c.case
                severity = case.severity or severity
                category = case.category or category
                if case.impact is not None and case.urgency is not None:
                    priority = itil_priority(case.impact, case.urgency)
                else:
                    priority = _SEVERITY_PRIORITY[severity]
                break
        return Classification(severity, category, priority)
