"""`stormwatch rules check`: errors that refuse a file, and warnings worth a look.

Warnings do not stop a rule from loading; they point at rules that can never match,
that keep one window per value of an unbounded label, or that match every alert.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import msgspec

from rules.loader import RuleErrors, load_rules, rule_files
from rules.matchers import Matcher, parse_matchers
from rules.ruleset import RuleSet
from rules.schema import Group, Rule, Temporal, TemporalOrdered
from stormwatch.errors import RuleError

__all__ = ["CheckReport", "RuleWarning", "check_rules", "format_report", "rule_warnings"]

# Labels whose values are per-alert or per-request: one window per value grows without
# bound. A matcher that pins the label makes it fine.
UNBOUNDED_LABELS = frozenset(
    {
        "instance",
        "pod",
        "pod_name",
        "container_id",
        "fingerprint",
        "alert_id",
        "id",
        "request_id",
        "trace_id",
        "span_id",
        "ip",
        "srcip",
        "src_ip",
        "dstip",
        "dst_ip",
        "client_ip",
        "uid",
        "uuid",
    }
)


class RuleWarning(msgspec.Struct, frozen=True, kw_only=True):
    file: str
    line: int | None
    rule: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: warning: rule {self.rule}: {self.field}: {self.message}"


class CheckReport(msgspec.Struct, kw_only=True):
    files: list[str]
    errors: list[RuleError]
    warnings: list[RuleWarning]
    ruleset: RuleSet | None


def _never_matches(matchers: list[Matcher], group_by: Sequence[str]) -> str | None:
    equal: dict[str, str] = {}
    for m in matchers:
        if m.op == "=":
            if m.name in equal and equal[m.name] != m.value:
                return f'{m.name} cannot equal both "{equal[m.name]}" and "{m.value}"'
            equal[m.name] = m.value
    for m in matchers:
        if m.op == "!=" and equal.get(m.name) == m.value:
            return f'{m.name}="{m.value}" and {m.name}!="{m.value}" exclude each other'
    for name in group_by:
        if equal.get(name) == "":
            return f'groups by {name} but requires {name}="" (the label absent)'
    return None


def rule_warnings(ruleset: RuleSet) -> list[RuleWarning]:
    """Warnings for a loaded rule set."""
    out: list[RuleWarning] = []
    by_name = ruleset.by_name()
    joined = {s for r in ruleset.rules for s in (getattr(r.correlation, "rules", None) or [])}

    def warn(rule: Rule, field: str, message: str) -> None:
        o = ruleset.origins.get(rule.name)
        out.append(
            RuleWarning(
                file=o.file if o else "",
                line=o.line if o else None,
                rule=rule.name,
                field=field,
                message=message,
            )
        )

    for rule in ruleset.rules:
        matchers = parse_matchers(rule.match)
        corr = rule.correlation
        group_by = list(getattr(corr, "group_by", []) or [])
        why = _never_matches(matchers, group_by)
        if why:
            warn(rule, "match", f"can never match: {why}")
        pinned = {m.name for m in matchers if m.op in ("=", "=~")}
        for label in group_by:
            if label in UNBOUNDED_LABELS and label not in pinned:
                warn(
                    rule,
                    "correlation.group-by",
                    f"{label} has unbounded cardinality: one window per value",
                )
        if (
            corr is not None
            and not group_by
            and not isinstance(corr, Group | Temporal | TemporalOrdered)
        ):
            warn(
                rule, "correlation.group-by", "empty: one window for every matching alert together"
            )
        listens = bool(getattr(corr, "rules", None))
        if (
            not matchers
            and not rule.source
            and not listens
            and (corr is not None or rule.name in joined)
        ):
            warn(rule, "match", "no matchers: the rule sees every alert")
        if rule.name in joined and not rule.enabled:
            warn(rule, "enabled", "disabled, but a temporal rule joins it")
        span = getattr(corr, "timespan", None)
        if span is not None and (span < 1 or span > 7 * 86400):
            warn(
                rule,
                "correlation.timespan",
                "outside 1s..7d: windows this size are almost surely a typo",
            )
        if listens:
            for step in corr.rules:  # type: ignore[union-attr]
                target = by_name.get(step)
                if target is not None and target.correlation is not None:
                    warn(
                        rule,
                        "correlation.rules",
                        f"joins {step}, which itself correlates: it joins its matches",
                    )
    return out


def check_rules(paths: Sequence[str | Path]) -> CheckReport:
    """Check rule files; never raises for bad rules."""
    files = [str(f) for f in rule_files(paths)]
    try:
        ruleset = load_rules(paths)
    except RuleErrors as e:
        return CheckReport(files=files, errors=e.errors, warnings=[], ruleset=None)
    except RuleError as e:
        return CheckReport(files=files, errors=[e], warnings=[], ruleset=None)
    return CheckReport(files=files, errors=[], warnings=rule_warnings(ruleset), ruleset=ruleset)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def format_report(report: CheckReport) -> str:
    lines = [str(e) for e in report.errors] + [str(w) for w in report.warnings]
    rules = len(report.ruleset) if report.ruleset else 0
    lines.append(
        f"{_plural(len(report.errors), 'error')}, {_plural(len(report.warnings), 'warning')} "
        f"in {_plural(len(report.files), 'file')}"
        + (f" ({_plural(rules, 'rule')})" if rules else "")
    )
    return "\n".join(lines)
