"""Which rules an alert matches, without trying every rule.

Each rule's matchers are compiled once when the rules load. Rules are indexed by their
equality matchers: rules whose equality matchers name the same labels (say `alertname`
and `team`) share one table keyed by those labels' values, so an alert costs one dict
lookup per distinct label signature, not one matcher per rule. Only rules with no
equality matcher are tried one by one. With 500 rules on alertname x team an alert tries
the one or two rules that can match (bench/test_bench_core.py::test_match_500_rules).
"""

from __future__ import annotations

from collections.abc import Sequence

from rules import Matcher, Rule, parse_matchers
from stormwatch.wire import Alert

__all__ = ["CompiledRule", "RuleMatcher"]


class CompiledRule:
    """A rule with its matchers compiled; `index` is its position in the rule set."""

    __slots__ = ("always", "index", "matchers", "name", "rest", "rule", "severities", "sources")

    def __init__(self, index: int, rule: Rule) -> None:
        self.index = index
        self.rule = rule
        self.name = rule.name
        self.matchers: tuple[Matcher, ...] = tuple(parse_matchers(rule.match))
        self.sources = frozenset(rule.source)
        self.severities = frozenset(rule.alert_severity)
        self.rest = self.matchers
        """The matchers the index does not already guarantee."""
        self.always = False
        """Whether finding it in its index bucket is enough (nothing else to check)."""

    def matches(self, alert: Alert) -> bool:
        if self.sources and alert.source not in self.sources:
            return False
        if self.severities and alert.severity not in self.severities:
            return False
        labels = alert.labels
        return all(m.matches(labels) for m in self.rest)


def _equality_key(c: CompiledRule) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """The (label names, values) a rule's equality matchers pin, one value per label."""
    pinned: dict[str, str] = {}
    for m in c.matchers:
        if m.is_equality and m.value != "":
            if m.name in pinned and pinned[m.name] != m.value:
                return None  # can never match; the checker warns; keep it on the slow path
            pinned[m.name] = m.value
    if not pinned:
        return None
    names = tuple(sorted(pinned))
    return names, tuple(pinned[n] for n in names)


class RuleMatcher:
    """Finds the rules an alert matches, in rule-file order."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.compiled = [CompiledRule(i, r) for i, r in enumerate(rules) if r.enabled]
        tables: dict[tuple[str, ...], dict[tuple[str, ...], list[CompiledRule]]] = {}
        self._scan: list[CompiledRule] = []
        for c in self.compiled:
            key = _equality_key(c)
            if key is None:
                self._scan.append(c)
                continue
            names, values = key
            c.rest = tuple(m for m in c.matchers if not (m.is_equality and m.name in names))
            c.always = not c.rest and not c.sources and not c.severities
            tables.setdefault(names, {}).setdefault(values, []).append(c)
        self._tables = list(tables.items())
        self.label_names = tuple(sorted({m.name for c in self.compiled for m in c.matchers}))
        """Every label a matcher names: nothing else can change what an alert matches."""

    def candidates(self, alert: Alert) -> list[CompiledRule]:
        """The rules this alert matches, in the order the rule files list them."""
        labels = alert.labels
        found = [c for c in self._scan if c.matches(alert)] if self._scan else []
        get = labels.get
        for names, table in self._tables:
            n = len(names)
            if n == 1:
                bucket = table.get((get(names[0], "\x00"),))  # \x00: no such label
            elif n == 2:
                bucket = table.get((get(names[0], "\x00"), get(names[1], "\x00")))
            else:
                bucket = table.get(tuple([get(name, "\x00") for name in names]))
            if bucket:
                for c in bucket:
                    if c.always or c.matches(alert):
                        found.append(c)
        if len(found) > 1:
            found.sort(key=_by_index)
        return found


def _by_index(c: CompiledRule) -> int:
    return c.index
