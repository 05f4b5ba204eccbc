"""Rule files: every error with file, line, rule and field; warnings; the defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules import RuleErrors, check_rules, format_report, load_rules
from stormwatch.app import DEFAULT_RULES
from stormwatch.errors import RuleError

THREE_ERRORS = """\
- name: typo
  correlaton:
    type: event_count
    timespan: 60s
- name: bad-regex
  match: ['service=~"(checkout"']
  correlation: {type: event_count, timespan: 60s, condition: {gte: 2}}
- name: bad-duration
  correlation:
    type: event_count
    timespan: 5x
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_three_errors_in_one_file_are_all_reported_precisely(tmp_path: Path) -> None:
    f = write(tmp_path, "bad.yaml", THREE_ERRORS)
    with pytest.raises(RuleErrors) as info:
        load_rules([f])
    assert [str(e) for e in info.value.errors] == [
        f"{f}:2: rule typo: correlaton: Object contains unknown field `correlaton`; did you mean `correlation`?",
        f"{f}:6: rule bad-regex: match[0]: invalid regex '(checkout': missing ), unterminated subpattern at position 0",
        f"{f}:11: rule bad-duration: correlation.timespan: invalid duration '5x': use a number and a unit "
        "(ms, s, m, h, d, w), e.g. 30s, 5m, 1h30m",
    ]


def test_yaml_syntax_error_has_its_line(tmp_path: Path) -> None:
    f = write(tmp_path, "syntax.yaml", "- name: a\n  match: [unclosed\n- name: b\n")
    with pytest.raises(RuleError) as info:
        load_rules([f])
    assert str(info.value).startswith(f"{f}:")
    assert info.value.line is not None and info.value.line >= 2


def test_duplicate_names_across_files_name_both_places(tmp_path: Path) -> None:
    a = write(
        tmp_path, "a.yaml", "- name: same\n  correlation: {type: event_count, timespan: 1m}\n"
    )
    write(
        tmp_path,
        "b.yaml",
        "- name: other\n  match: ['a=\"b\"']\n- name: same\n  match: ['a=\"b\"']\n",
    )
    with pytest.raises(RuleError) as info:
        load_rules([tmp_path])
    assert "b.yaml:3: rule same: name: duplicate rule name; first defined at" in str(info.value)
    assert f"{a}:1" in str(info.value)


def test_semantic_errors(tmp_path: Path) -> None:
    f = write(
        tmp_path,
        "sem.yaml",
        """\
- name: vc
  correlation: {type: value_count, timespan: 1m, condition: {gte: 3}}
- name: nobound
  correlation: {type: event_count, timespan: 1m, condition: {}}
- name: lonely
  correlation: {type: temporal, timespan: 1m, rules: [ghost]}
""",
    )
    with pytest.raises(RuleErrors) as info:
        load_rules([f])
    text = str(info.value)
    assert "rule vc: correlation.condition.field: value_count needs condition.field" in text
    assert "rule nobound: correlation.condition: condition sets no bound" in text
    assert "rule lonely: correlation.rules: temporal needs at least 2 rules" in text
    assert "rule lonely: correlation.rules: joins unknown rule 'ghost'" in text


def test_folder_loads_sorted_yaml_files_with_origins(tmp_path: Path) -> None:
    write(tmp_path, "b.yml", "- name: second\n  match: ['x=\"1\"']\n")
    write(tmp_path, "a.yaml", "- name: first\n  match: ['x=\"1\"']\n")
    write(tmp_path, "notes.txt", "not a rule file")
    rs = load_rules([tmp_path])
    assert [r.name for r in rs.rules] == ["first", "second"]
    assert rs.origins["second"].file.endswith("b.yml") and rs.origins["second"].line == 1


def test_empty_file_is_no_rules_and_refused_unless_allowed(tmp_path: Path) -> None:
    empty = write(tmp_path, "empty.yaml", "")
    assert len(load_rules([empty], allow_empty=True)) == 0
    with pytest.raises(RuleError, match="0 rules in 1 file"):
        load_rules([empty])


def test_shipped_defaults_load_cleanly() -> None:
    report = check_rules([DEFAULT_RULES])
    assert report.errors == [] and report.warnings == []
    assert report.ruleset is not None and len(report.ruleset) >= 3


def test_warnings(tmp_path: Path) -> None:
    f = write(
        tmp_path,
        "warn.yaml",
        """\
- name: never
  match: ['env="prod"', 'env="staging"']
  correlation: {type: event_count, group-by: [service], timespan: 1m, condition: {gte: 2}}
- name: per-pod
  match: ['alertname="X"']
  correlation: {type: event_count, group-by: [pod], timespan: 1m, condition: {gte: 2}}
- name: everything
  correlation: {type: event_count, group-by: [service], timespan: 1m, condition: {gte: 2}}
""",
    )
    report = check_rules([f])
    assert report.errors == []
    text = format_report(report)
    assert f"{f}:1: warning: rule never: match: can never match" in text
    assert "rule per-pod: correlation.group-by: pod has unbounded cardinality" in text
    assert "rule everything: match: no matchers" in text
    assert text.endswith("0 errors, 3 warnings in 1 file (3 rules loaded)")
