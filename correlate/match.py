"""Which rules an alert matches, without trying every rule.

Each rule's matchers are compiled once when the rules load. A rule with an equality
matcher is indexed under it (`alertname="X"` -> index["alertname"]["X"]), so an alert
only tries the rules whose indexed label it carries with that value, plus the few rules
with no equality matcher at all. With 500 rules keyed on alertname an alert tries a
handful (bench/test_bench_core.py::test_match_500_rules).
"""

from __future__ import annotations

from collections.abc import Sequence

from rules import Matcher, Rule, parse_matchers
from stormwatch.wire import Alert

__all__ = ["CompiledRule", "RuleMatcher"]

# Labels most rule sets key on; preferred as the index label when a rule has several.
_PREFERRED_INDEX = ("alertname", "rule_id", "service", "job")


class CompiledRule:
    """A rule with its matchers compiled; `index` is its position in the rule set."""

    __slots__ = ("index", "matchers", "name", "rule", "sources")

    def __init__(self, index: int, rule: Rule) -> None:
        self.index = index
        self.rule = rule
        self.name = rule.name
        self.matchers: tuple[Matcher, ...] = tuple(parse_matchers(rule.match))
        self.sources = frozenset(rule.source)

    def matches(self, alert: Alert) -> bool:
        if self.sources and alert.source not in self.sources:
            return False
        labels = alert.labels
        for m in self.matchers:
            if not m.matches(labels):
                return False
        return True


def _index_matcher(matchers: Sequence[Matcher]) -> Matcher | None:
    equal = [m for m in matchers if m.is_equality and m.value != ""]
    if not equal:
        return None
    for name in _PREFERRED_INDEX:
        for m in equal:
            if m.name == name:
                return m
    return equal[0]


class RuleMatcher:
    """Finds the rules an alert matches, in rule-file order."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.compiled = [CompiledRule(i, r) for i, r in enumerate(rules) if r.enabled]
        self._index: dict[str, dict[str, list[CompiledRule]]] = {}
        self._scan: list[CompiledRule] = []
        for c in self.compiled:
            m = _index_matcher(c.matchers)
            if m is None:
                self._scan.append(c)
            else:
                self._index.setdefault(m.name, {}).setdefault(m.value, []).append(c)

    def candidates(self, alert: Alert) -> list[CompiledRule]:
        """The rules this alert matches, in the order the rule files list them."""
        labels = alert.labels
        found = [c for c in self._scan if c.matches(alert)]
        for name, by_value in self._index.items():
            value = labels.get(name)
            if value is not None:
                bucket = by_value.get(value)
                if bucket:
                    found.extend(c for c in bucket if c.matches(alert))
        if len(found) > 1:
            found.sort(key=_by_index)
        return found


def _by_index(c: CompiledRule) -> int:
    return c.index
