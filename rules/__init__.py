"""The rule language: schema, matchers, loading and checking rule files."""

from rules.matchers import Matcher, MatcherError, parse_matcher, parse_matchers
from rules.ruleset import Origin, RuleSet, rule_fingerprint
from rules.schema import Rule

__all__ = [
    "Matcher",
    "MatcherError",
    "Origin",
    "Rule",
    "RuleSet",
    "parse_matcher",
    "parse_matchers",
    "rule_fingerprint",
]
