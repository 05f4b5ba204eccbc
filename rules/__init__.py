"""The rule language: schema, matchers, loading and checking rule files."""

from rules.check import CheckReport, RuleWarning, check_rules, format_report
from rules.labels import fill_placeholders
from rules.loader import RuleErrors, collect_rules, load_rules, rule_files, rule_test_files
from rules.matchers import Matcher, MatcherError, parse_matcher, parse_matchers
from rules.ruleset import Origin, RuleSet, rule_fingerprint
from rules.schema import Rule

__all__ = [
    "CheckReport",
    "Matcher",
    "MatcherError",
    "Origin",
    "Rule",
    "RuleErrors",
    "RuleSet",
    "RuleWarning",
    "check_rules",
    "collect_rules",
    "fill_placeholders",
    "format_report",
    "load_rules",
    "parse_matcher",
    "parse_matchers",
    "rule_files",
    "rule_fingerprint",
    "rule_test_files",
]
