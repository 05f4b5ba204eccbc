"""Rule tools that never mislead: recursive folders, no silent emptiness, every error
in one run, hints that say what would be right, and warnings for rules that misfire."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules import check_rules, format_report, load_rules, rule_files
from rules.check import never_holds
from rules.schema import Condition
from stormwatch.errors import RuleError
from tests.conftest import ROOT

FIVE_MISTAKES = """\
- name: five-mistakes
  match: ['service=~"check(out|in"']
  correlation:
    type: event_count
    group_by: [service]
    timespan: 5x
    condition: {gte: 5}
  incident:
    severity: P5
  level: urgent
- name: bad-type
  correlation: {type: event_cnt, timespan: 1m}
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


RULE = "- name: {name}\n  match: ['team=\"a\"']\n  correlation: {{type: event_count, group-by: [service], timespan: 1m, condition: {{gte: 2}}}}\n"


def test_folders_are_searched_recursively_and_rule_tests_left_out(tmp_path: Path) -> None:
    write(tmp_path / "top.yaml", RULE.format(name="top"))
    write(tmp_path / "team" / "db" / "deep.yml", RULE.format(name="deep"))
    write(tmp_path / "team" / "deep_test.yaml", "rule_files: [db/deep.yml]\ntests: []\n")
    write(tmp_path / ".git" / "hidden.yaml", RULE.format(name="hidden"))
    names = sorted(f.name for f in rule_files([tmp_path]))
    assert names == ["deep.yml", "top.yaml"]
    assert sorted(r.name for r in load_rules([tmp_path]).rules) == ["deep", "top"]
    report = check_rules([tmp_path])
    assert format_report(report).endswith(
        "0 errors, 0 warnings in 2 files (2 rules loaded); 1 rule test file skipped (stormwatch rules test)"
    )


def test_the_repository_rules_folder_finds_every_shipped_rule_file() -> None:
    report = check_rules([ROOT / "rules"])
    shipped = {
        str(p) for p in (ROOT / "rules").rglob("*.yaml") if not p.name.endswith("_test.yaml")
    }
    assert set(report.files) == shipped and len(shipped) >= 3
    assert report.errors == []
    assert len(report.test_files) == len(list((ROOT / "rules").rglob("*_test.yaml")))


def test_no_rule_file_is_an_error_unless_allowed(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(RuleError, match=r"no rule files in .*searched recursively"):
        load_rules([tmp_path / "empty"])
    assert len(load_rules([tmp_path / "empty"], allow_empty=True)) == 0
    report = check_rules([tmp_path / "empty"])
    assert len(report.errors) == 1


def test_every_error_of_a_rule_is_reported_in_one_run(tmp_path: Path) -> None:
    f = write(tmp_path / "five.yaml", FIVE_MISTAKES)
    report = check_rules([f])
    lines = [str(e) for e in report.errors]
    assert lines == [
        f"{f}:2: rule five-mistakes: match[0]: invalid regex 'check(out|in': missing ), "
        "unterminated subpattern at position 5 (after 'check')",
        f"{f}:5: rule five-mistakes: correlation.group_by: Object contains unknown field "
        "`group_by`; did you mean `group-by`?",
        f"{f}:6: rule five-mistakes: correlation.timespan: invalid duration '5x': use a number "
        "and a unit (ms, s, m, h, d, w), e.g. 30s, 5m, 1h30m",
        f"{f}:9: rule five-mistakes: incident.severity: Invalid enum value 'P5'; valid values: "
        "P1, P2, P3, P4",
        f"{f}:10: rule five-mistakes: level: Invalid enum value 'urgent'; valid values: "
        "critical, high, informational, low, medium",
        f"{f}:12: rule bad-type: correlation.type: Invalid value 'event_cnt'; valid types: "
        "event_count, value_count, temporal, temporal_ordered, absence, group",
    ]
    assert report.ruleset is not None and len(report.ruleset) == 0


def test_a_bad_regex_names_its_own_position(tmp_path: Path) -> None:
    f = write(
        tmp_path / "re.yaml",
        "- name: r\n  match: ['a=~\"ok\"', 'b=~\"abc[d\"']\n"
        "  correlation: {type: event_count, group-by: [a], timespan: 1m}\n",
    )
    (err,) = check_rules([f]).errors
    assert err.field == "match[1]"
    assert "unterminated character set at position 3 (after 'abc')" in err.message


@pytest.mark.parametrize(
    ("bounds", "why"),
    [
        ({"gte": 5, "lt": 2}, "no number is in that range"),
        ({"gt": 3, "lte": 3}, "no number is in that range"),
        ({"lt": 0}, "a count is never below 0"),
        ({"eq": 7, "lt": 5}, "eq 7 lies outside"),
        ({"eq": 2, "neq": 2}, "eq 2 lies outside"),
    ],
)
def test_conditions_that_can_never_hold(bounds: dict[str, float], why: str) -> None:
    assert why in (never_holds(Condition(**bounds)) or "")


@pytest.mark.parametrize("bounds", [{"gte": 5}, {"gt": 1, "lte": 10}, {"lte": 0}, {"eq": 3}])
def test_conditions_that_can_hold_are_not_flagged(bounds: dict[str, float]) -> None:
    assert never_holds(Condition(**bounds)) is None


def test_warnings_for_match_all_impossible_condition_and_unknown_placeholder(
    tmp_path: Path,
) -> None:
    f = write(
        tmp_path / "w.yaml",
        """\
- name: everything
  match: ['alertname=~".*"']
  correlation: {type: event_count, group-by: [service], timespan: 1m, condition: {gte: 2}}
- name: impossible
  match: ['team="db"']
  correlation: {type: event_count, group-by: [service], timespan: 1m, condition: {gte: 5, lt: 2}}
- name: typo
  match: ['team="db"']
  correlation: {type: event_count, group-by: [service], timespan: 1m, condition: {gte: 2}}
  incident: {title: "{servce} on {team}: {count} in {rule}"}
- name: narrow
  match: ['alertname=~".+"', 'team="db"']
  correlation: {type: event_count, group-by: [service], timespan: 1m, condition: {gte: 2}}
""",
    )
    warnings = {(w.rule, w.field): w.message for w in check_rules([f]).warnings}
    assert "matches every alert" in warnings[("everything", "match[0]")]
    assert (
        "{gte: 5, lt: 2}: no number is in that range"
        in warnings[("impossible", "correlation.condition")]
    )
    title = warnings[("typo", "incident.title")]
    assert "{servce} names no group-by label (service)" in title
    assert "did you mean {service}?" in title
    assert not any(rule == "narrow" for rule, _ in warnings)  # `.+` needs the label
    assert len([k for k in warnings if k[0] == "typo"]) == 1  # {team} is pinned by a matcher


def test_a_rule_with_errors_still_gets_its_warnings(tmp_path: Path) -> None:
    f = write(
        tmp_path / "mixed.yaml",
        "- name: m\n  match: ['team=\"a\"']\n"
        "  correlation: {type: event_count, group-by: [service], timespan: 5x, condition: {gte: 5, lt: 2}}\n"
        "  incident: {title: '{servce}', severity: P7}\n",
    )
    report = check_rules([f])
    assert [e.field for e in report.errors] == ["correlation.timespan", "incident.severity"]
    assert {w.field for w in report.warnings} == {"correlation.condition", "incident.title"}
