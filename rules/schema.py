"""The rule file, as msgspec Structs mirroring the YAML.

A rule file is a YAML list of rules. Field names follow Sigma's correlation format
(`name`, `correlation.type`, `group-by`, `timespan`, `condition`) so a security team
recognises it, and `match` takes Alertmanager's matcher syntax so an SRE does:

```yaml
- name: service-error-burst
  match: ['severity=~"critical|warning"']
  correlation:
    type: event_count
    group-by: [service]
    timespan: 60s
    condition: {gte: 5}
  incident:
    title: "{service}: {count} alerts in 60s"
    severity: P2
    category: availability
```

The correlation types form a tagged union on `type`, so one decode checks every field
and msgspec's error path (`$[0].correlation.timespan`) names the culprit.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeAlias

import msgspec

from stormwatch.wire import Duration, Severity

__all__ = [
    "Absence",
    "ClassifyCase",
    "ClassifyWhen",
    "Condition",
    "Correlation",
    "EventCount",
    "Group",
    "IncidentSpec",
    "ResolveSpec",
    "Rule",
    "RuleFile",
    "Temporal",
    "TemporalOrdered",
    "ValueCount",
]

GroupBy = Annotated[list[str], msgspec.Meta(description="label names the rule groups by")]
AlertSeverityName: TypeAlias = Literal["critical", "high", "warning", "info"]
"""The normalised alert severity every source sets (`Alert.severity`)."""
Level = Annotated[int, msgspec.Meta(ge=1, le=3)]


class Condition(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """A threshold on the window's value: `{gte: 5}`, or a range `{gt: 1, lte: 10}`.

    For `value_count`, `field` names the label (or labels, joined) whose distinct
    values are counted.
    """

    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None
    eq: float | None = None
    neq: float | None = None
    field: str | list[str] | None = None

    def holds(self, value: float) -> bool:
        """True when `value` satisfies every bound that is set."""
        return (
            (self.gt is None or value > self.gt)
            and (self.gte is None or value >= self.gte)
            and (self.lt is None or value < self.lt)
            and (self.lte is None or value <= self.lte)
            and (self.eq is None or value == self.eq)
            and (self.neq is None or value != self.neq)
        )


class _Windowed(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    group_by: GroupBy = msgspec.field(name="group-by", default_factory=list)
    timespan: Duration


class EventCount(
    _Windowed,
    tag="event_count",
    tag_field="type",
    kw_only=True,
    forbid_unknown_fields=True,
    frozen=True,
):
    """At least (or at most) N matching alerts of one group within a sliding timespan.

    With `rules` (Sigma's form) it counts the alerts matching those named rules instead
    of its own `match`."""

    condition: Condition = Condition(gte=1)
    rules: list[str] = []


class ValueCount(
    _Windowed,
    tag="value_count",
    tag_field="type",
    kw_only=True,
    forbid_unknown_fields=True,
    frozen=True,
):
    """N distinct values of `condition.field` among one group's alerts within the timespan."""

    condition: Condition
    rules: list[str] = []


class _Joining(_Windowed, kw_only=True, forbid_unknown_fields=True, frozen=True):
    rules: list[str]
    aliases: dict[str, dict[str, str]] = {}
    """alias -> {rule name -> label}: joins fields named differently in different rules."""
    condition: Condition | None = None
    """Counts distinct matched rules; default: all of them."""


class Temporal(
    _Joining,
    tag="temporal",
    tag_field="type",
    kw_only=True,
    forbid_unknown_fields=True,
    frozen=True,
):
    """All of `rules` matched for the same group within the timespan, in any order."""


class TemporalOrdered(
    _Joining,
    tag="temporal_ordered",
    tag_field="type",
    kw_only=True,
    forbid_unknown_fields=True,
    frozen=True,
):
    """`rules` matched in the listed order within the timespan (SEC's PairWithWindow)."""


class Absence(
    _Windowed,
    tag="absence",
    tag_field="type",
    kw_only=True,
    forbid_unknown_fields=True,
    frozen=True,
):
    """An expected alert or heartbeat for a group did not arrive within the timespan."""


class Group(
    msgspec.Struct,
    tag="group",
    tag_field="type",
    kw_only=True,
    forbid_unknown_fields=True,
    frozen=True,
):
    """Alertmanager-style grouping: every matching alert of a group in one incident."""

    group_by: GroupBy = msgspec.field(name="group-by", default_factory=list)
    group_wait: Duration = Duration(30)
    group_interval: Duration = Duration(300)
    repeat_interval: Duration = Duration(14400)


Correlation: TypeAlias = EventCount | ValueCount | Temporal | TemporalOrdered | Absence | Group


class IncidentSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """How an incident the rule opens is titled and classified by default.

    `title` and `summary` take `{label}` placeholders filled from the group's labels
    (and the labels all its alerts share), plus `{rule}` and `{count}`.
    """

    title: str | None = None
    """Default: the rule's Sigma `title`, else "{rule}"."""
    summary: str = ""
    severity: Severity | None = None
    """Default: from the rule's Sigma `level`, else P3."""
    category: str = "availability"


class ClassifyWhen(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """Conditions on what an incident holds; all that are set must hold."""

    alert_severity: list[AlertSeverityName] = []
    """The highest normalised severity (`Alert.severity`) among its alerts is one of these."""
    min_alerts: int | None = None
    min_distinct: dict[str, int] = {}
    """label -> at least this many distinct values across its alerts (services, hosts)."""
    source: list[str] = []
    match: list[str] = []
    """Matchers over the labels every alert of the incident shares."""


class ClassifyCase(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """The first case whose `when` holds sets severity, category, impact and urgency."""

    when: ClassifyWhen = ClassifyWhen()
    severity: Severity | None = None
    category: str | None = None
    impact: Level | None = None
    urgency: Level | None = None


class ResolveSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """When an open incident resolves, besides all of its alerts resolving.

    `quiet`: no matching alert fired or was re-sent for this long.
    `condition` + `timespan`: hysteresis, as SEC's SingleWith2Thresholds: the window's
    value over `timespan` satisfies `condition` (e.g. `{lte: 0}`).
    """

    quiet: Duration | None = None
    condition: Condition | None = None
    timespan: Duration | None = None


class Rule(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """One rule. Without `correlation` it only names a match for `temporal` rules to join."""

    name: Annotated[str, msgspec.Meta(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+\Z")]
    description: str = ""
    match: list[str] = []
    source: list[str] = []
    alert_severity: list[AlertSeverityName] = []
    """Only alerts whose normalised severity is one of these (any source)."""
    correlation: Correlation | None = None
    incident: IncidentSpec = IncidentSpec()
    classify: list[ClassifyCase] = []
    resolve: ResolveSpec | None = None
    enabled: bool = True
    # Sigma's rule metadata, so a Sigma correlation rule loads as written.
    title: str | None = None
    id: str | None = None
    level: Literal["informational", "low", "medium", "high", "critical"] | None = None
    status: str | None = None
    author: str | None = None
    date: str | None = None
    modified: str | None = None
    tags: list[str] = []
    references: list[str] = []
    falsepositives: list[str] = []
    generate: bool = False

    @property
    def severity(self) -> Severity:
        """The incident severity: `incident.severity`, else from Sigma's `level`, else P3."""
        return self.incident.severity or _LEVEL_SEVERITY.get(self.level or "", "P3")

    @property
    def title_template(self) -> str:
        return self.incident.title or self.title or "{rule}"


_LEVEL_SEVERITY: dict[str, Severity] = {
    "critical": "P1",
    "high": "P2",
    "medium": "P3",
    "low": "P4",
    "informational": "P4",
}


RuleFile: TypeAlias = list[Rule]
