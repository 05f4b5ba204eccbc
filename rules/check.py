"""`stormwatch rules check`: errors that refuse a file, and warnings worth a look.

Warnings do not stop a rule from loading; they point at rules that can never match,
that keep one window per value of an unbounded label, or that match every alert.
"""

from __future__ import annotations

import contextlib
import difflib
import string
from collections.abc import Sequence
from pathlib import Path

import msgspec

from rules.files import rule_files, rule_test_files
from rules.loader import collect_rules
from rules.matchers import Matcher, MatcherError, parse_matchers
from rules.ruleset import RuleSet
from rules.schema import Condition, Group, Rule, Temporal, TemporalOrdered
from stormwatch.errors import RuleError

__all__ = [
    "CheckReport",
    "RuleWarning",
    "check_rules",
    "format_report",
    "never_holds",
    "rule_warnings",
]

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
    """The rules that loaded (all of them when there are no errors)."""
    test_files: list[str] = []
    """Rule tests (`*_test.yaml`) the folder search passed over."""


# Values an "any value" regex must accept, the missing label ("") among them.
_PROBES = ("", "a", "Z9", "checkout-api", "10.0.0.1:9100", "two words", "ünïcode")


def _matches_everything(m: Matcher) -> bool:
    return m.op == "=~" and all(m.matches({m.name: v}) for v in _PROBES)


def never_holds(c: Condition) -> str | None:
    """Why a condition on a count can never hold, or None (counts are >= 0)."""
    lows = [(v, False) for v in (c.gte,) if v is not None] + [
        (v, True) for v in (c.gt,) if v is not None
    ]
    highs = [(v, False) for v in (c.lte,) if v is not None] + [
        (v, True) for v in (c.lt,) if v is not None
    ]
    low = max(lows, default=(0.0, False))
    high = min(highs, default=(float("inf"), False))
    text = _condition_text(c)
    if high[0] < 0 or (high[0] == 0 and high[1]):
        return f"{text}: a count is never below 0"
    if low[0] > high[0] or (low[0] == high[0] and (low[1] or high[1])):
        return f"{text}: no number is in that range"
    if c.eq is not None and (
        c.eq < low[0] or c.eq > high[0] or (c.neq is not None and c.neq == c.eq)
    ):
        return f"{text}: eq {c.eq:g} lies outside the other bounds"
    return None


def _condition_text(c: Condition) -> str:
    bounds = [
        f"{k}: {getattr(c, k):g}"
        for k in ("gt", "gte", "lt", "lte", "eq", "neq")
        if getattr(c, k) is not None
    ]
    return "{" + ", ".join(bounds) + "}"


def _parse_good(items: list[str]) -> list[Matcher]:
    """The matchers that parse (a rule with errors is still checked for warnings)."""
    out: list[Matcher] = []
    for item in items:
        with contextlib.suppress(MatcherError):
            out.extend(parse_matchers([item]))
    return out


def _placeholders(template: str) -> list[str]:
    return [f for _, f, _, _ in string.Formatter().parse(template) if f]


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


def rule_warnings(ruleset: RuleSet, partial: frozenset[str] = frozenset()) -> list[RuleWarning]:
    """Warnings for a rule set. `partial` names rules that had errors and are checked
    on what decoded: a field left out for its error is not warned about as missing."""
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
        matchers = _parse_good(rule.match)
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
            and rule.name not in partial
            and not group_by
            and not isinstance(corr, Group | Temporal | TemporalOrdered)
        ):
            warn(
                rule, "correlation.group-by", "empty: one window for every matching alert together"
            )
        listens = bool(getattr(corr, "rules", None))
        if (
            not matchers
            and rule.name not in partial
            and not rule.source
            and not rule.alert_severity
            and not listens
            and (corr is not None or rule.name in joined)
        ):
            warn(rule, "match", "no matchers: the rule sees every alert")
        for i, m in enumerate(matchers):
            if _matches_everything(m):
                warn(
                    rule,
                    f"match[{i}]",
                    f"{m} matches every alert (any value, and the label missing): drop it or narrow it",
                )
        for field, cond in (
            ("correlation.condition", getattr(corr, "condition", None)),
            ("resolve.condition", rule.resolve.condition if rule.resolve else None),
        ):
            why_not = never_holds(cond) if cond is not None else None
            if why_not:
                warn(rule, field, f"can never hold: {why_not}")
        known = {"rule", "count", *group_by, *getattr(corr, "aliases", {})}
        known |= {m.name for m in matchers if m.op == "="}
        for field in ("title", "summary"):
            template = getattr(rule.incident, field) or (
                rule.title_template if field == "title" else ""
            )
            for name in _placeholders(template):
                if name in known:
                    continue
                close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
                hint = f"; did you mean {{{close[0]}}}?" if close else ""
                warn(
                    rule,
                    f"incident.{field}",
                    f"{{{name}}} names no group-by label ({', '.join(group_by) or 'none'}): "
                    f"it renders literally unless every alert of the incident has {name}{hint}",
                )
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


def check_rules(paths: Sequence[str | Path], *, allow_empty: bool = False) -> CheckReport:
    """Check rule files: every error of every file, and the warnings of the rules that
    loaded; never raises for bad rules."""
    ruleset, errors, checked = collect_rules(paths, allow_empty=allow_empty)
    return CheckReport(
        files=[str(f) for f in rule_files(paths)],
        errors=errors,
        warnings=rule_warnings(
            checked, frozenset(r.name for r in checked.rules) - {r.name for r in ruleset.rules}
        ),
        ruleset=ruleset,
        test_files=[str(f) for f in rule_test_files(paths)],
    )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def format_report(report: CheckReport) -> str:
    lines = [str(e) for e in report.errors] + [str(w) for w in report.warnings]
    rules = len(report.ruleset) if report.ruleset else 0
    skipped = (
        f"; {_plural(len(report.test_files), 'rule test file')} skipped (stormwatch rules test)"
        if report.test_files
        else ""
    )
    lines.append(
        f"{_plural(len(report.errors), 'error')}, {_plural(len(report.warnings), 'warning')} "
        f"in {_plural(len(report.files), 'file')}"
        + (f" ({_plural(rules, 'rule')} loaded)" if rules else "")
        + skipped
    )
    return "\n".join(lines)
