"""The SRE tools: `rules check`, `rules test`, `replay`, `config check`, `--help`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stormwatch.cli import main
from tests.conftest import ROOT
from tests.unit.rules.test_loader import THREE_ERRORS

RULE_TESTS = sorted((ROOT / "rules" / "tests").glob("*_test.yaml"))


@pytest.mark.parametrize("path", RULE_TESTS, ids=lambda p: p.name)
def test_shipped_rule_tests_pass(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "test", str(path)]) == 0, capsys.readouterr().out


def test_every_correlation_type_has_a_positive_and_a_negative_rule_test() -> None:
    import yaml

    types = {"event_count", "value_count", "temporal", "temporal_ordered", "absence", "group"}
    assert {p.name.removesuffix("_test.yaml") for p in RULE_TESTS} >= types
    for p in RULE_TESTS:
        tests = yaml.safe_load(p.read_text())["tests"]
        assert any(t["expect"] for t in tests) and any(not t["expect"] for t in tests), p.name


def test_rules_test_fails_with_a_diff(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "t.yaml"
    f.write_text(f"""rule_files: [{ROOT / "rules/tests/example-rules.yaml"}]
tests:
  - name: wrong count
    alerts:
      - {{at: 0s, labels: {{alertname: A, service: checkout}}}}
      - {{at: 1s, labels: {{alertname: B, service: checkout}}}}
      - {{at: 2s, labels: {{alertname: C, service: checkout}}}}
    expect:
      - {{event: opened, alert_count: 4}}
""")
    assert main(["rules", "test", str(f)]) == 1
    out = capsys.readouterr().out
    assert '! expected {"event":"opened","alert_count":4}' in out
    assert 'got      {"event":"opened","alert_count":3}' in out
    assert "0 passed, 1 failed" in out


def test_rules_check_prints_three_precise_errors_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(THREE_ERRORS)
    assert main(["rules", "check", str(f)]) == 2
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        f"{f}:2: rule typo: correlaton: Object contains unknown field `correlaton`; "
        "did you mean `correlation`?"
    )
    assert out[1].startswith(f"{f}:6: rule bad-regex: match[0]: invalid regex '(checkout'")
    assert out[2].startswith(
        f"{f}:11: rule bad-duration: correlation.timespan: invalid duration '5x'"
    )
    assert out[3] == "3 errors, 0 warnings in 1 file"


def test_rules_check_passes_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "check", str(ROOT / "rules/defaults")]) == 0
    assert "0 errors, 0 warnings" in capsys.readouterr().out


def _archive(path: Path) -> None:
    lines = []
    for i in range(6):
        lines.append(
            json.dumps(
                {
                    "labels": {"alertname": f"A{i}", "service": "checkout"},
                    "startsAt": f"2026-05-01T10:00:{i * 5:02d}Z",
                }
            )
        )
    lines.append(
        json.dumps(
            {
                "labels": {"alertname": "A0", "service": "checkout"},
                "startsAt": "2026-05-01T10:00:00Z",
            }
        )
    )  # a re-send
    path.write_text("\n".join(lines) + "\n")


def test_replay_writes_the_incident_events_a_live_daemon_would(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive, out = tmp_path / "alerts.jsonl", tmp_path / "out.jsonl"
    _archive(archive)
    rules = str(ROOT / "rules/tests/example-rules.yaml")
    assert main(["replay", "--rules", rules, "--out", str(out), str(archive)]) == 0
    events = [json.loads(x) for x in out.read_text().splitlines()]
    assert events[0]["event"] == "opened"
    assert events[0]["incident"]["rule"] == "checkout-burst"
    assert "replayed 7 alerts" in capsys.readouterr().err
    again = tmp_path / "again.jsonl"
    main(["replay", "--rules", rules, "--out", str(again), str(archive)])
    assert again.read_text() == out.read_text()  # deterministic: same keys, same events


def test_replay_against_prints_what_a_rule_change_adds_drops_and_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = tmp_path / "alerts.jsonl"
    _archive(archive)
    old = tmp_path / "old.yaml"
    old.write_text(
        "- name: checkout-burst\n  match: ['service=\"checkout\"']\n"
        "  correlation: {type: event_count, group-by: [service], timespan: 60s, condition: {gte: 3}}\n"
    )
    new = tmp_path / "new.yaml"
    new.write_text(
        "- name: checkout-burst\n  match: ['service=\"checkout\"']\n"
        "  correlation: {type: event_count, group-by: [service], timespan: 60s, condition: {gte: 3}}\n"
        "  incident: {severity: P1}\n"
        "- name: strict\n  match: ['service=\"checkout\"']\n"
        "  correlation: {type: event_count, group-by: [service], timespan: 60s, condition: {gte: 6}}\n"
        "  incident: {severity: P1}\n"
    )  # a P3 would be inhibited by the open P1
    assert main(["replay", "--rules", str(new), "--against", str(old), str(archive)]) == 0
    out = capsys.readouterr().out
    assert "+ strict" in out
    assert "~ checkout-burst" in out and "severity P3 -> P1" in out
    assert out.strip().endswith("1 added, 0 dropped, 1 changed, 0 unchanged")


def test_replay_names_the_bad_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive = tmp_path / "bad.jsonl"
    archive.write_text(
        '{"labels": {"alertname": "a"}, "startsAt": "2026-05-01T10:00:00Z"}\n{"labels": 5}\n'
    )
    assert main(["replay", "--rules", str(ROOT / "rules/defaults"), str(archive)]) == 2
    assert "bad.jsonl:2:" in capsys.readouterr().err


def test_config_check_prints_the_effective_config_or_names_the_bad_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("listen: 127.0.0.1:9999\ncorrelate: {resolve_timeout: 10m}\n")
    assert main(["config", "check", "--config", str(good), "--listen", "127.0.0.1:7777"]) == 0
    out = capsys.readouterr().out
    assert "listen: 127.0.0.1:7777" in out and "resolve_timeout: 600.0" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("correlate: {resolve_timout: 10m}\n")
    assert main(["config", "check", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "$.correlate" in err and "resolve_timout" in err


def test_help_explains_run_flags() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "stormwatch.cli", "run", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for flag in ("--config", "--listen", "--rules", "--incidents-jsonl", "STORMWATCH_LISTEN"):
        assert flag in out
    top = subprocess.run(
        [sys.executable, "-m", "stormwatch.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for command in ("run", "config", "rules", "replay"):
        assert command in top


def test_config_check_redacts_secrets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "sinks:\n  - {type: pagerduty, name: pd, routing_key: R0123456789ABCDEF0123456789ABCDE,"
        " headers_unused: 1}\n".replace(", headers_unused: 1", "")
    )
    assert main(["config", "check", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "routing_key: <secret>" in out
    assert "R0123456789ABCDEF" not in out


def test_the_deploy_example_config_is_valid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """deploy/stormwatch.yaml is what compose users start from: it decodes as it is, and
    with its container paths pointed at this machine, `config check` (everything `run`
    would check) passes."""
    text = (ROOT / "deploy/stormwatch.yaml").read_text()
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for name in ("pagerduty",):
        (secrets / name).write_text("R0123456789ABCDEF0123456789ABCDE\n")
    local = tmp_path / "local.yaml"
    local.write_text(
        text.replace("/etc/stormwatch/rules", str(ROOT / "rules/defaults"))
        .replace("/run/secrets/", f"{secrets}/")
        .replace("/data/", f"{tmp_path}/")
    )
    assert main(["config", "check", "--config", str(local)]) == 0, capsys.readouterr().err
    assert "backend: redis" in capsys.readouterr().out


def test_config_check_finds_what_run_would_refuse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"""\
rules: [{tmp_path / "no-such-rules"}]
state: {{backend: redis, url: "localhost:6379"}}
sinks:
  - {{name: pd, type: pagerduty, routing_key_file: {tmp_path / "missing-secret"}}}
  - {{name: hook, type: webhook, url: "htp:/nowhere"}}
  - {{name: file, type: file, path: {tmp_path / "a-file" / "incidents.jsonl"}}}
"""
    )
    (tmp_path / "a-file").write_text("")
    assert main(["config", "check", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'no-such-rules'}: no such file or folder" in err
    assert "$.state.url: not a Redis URL" in err
    assert "cannot read routing_key_file" in err and "$.sinks[0]" in err
    assert "$.sinks[1].url: not an http(s) URL: 'htp:/nowhere'" in err
    assert "$.sinks[2].path: cannot write" in err
    assert "5 problem(s)" in err


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (
            lambda d: ["replay", "--rules", str(d / "r.yaml"), str(d / "missing.jsonl")],
            "cannot read",
        ),
        (lambda d: ["replay", "--rules", str(d / "empty"), str(d / "a.jsonl")], "no rule"),
        (
            lambda d: [
                "replay",
                "--rules",
                str(d / "r.yaml"),
                str(d / "a.jsonl"),
                "--out",
                str(d / "no" / "dir" / "x"),
            ],
            "cannot write",
        ),
        (
            lambda d: ["replay", "--rules", str(d / "r.yaml"), str(d / "blank.jsonl")],
            "no alerts read",
        ),
    ],
)
def test_replay_refuses_what_it_cannot_use_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Any, says: str
) -> None:
    (tmp_path / "r.yaml").write_text(
        "- name: b\n  correlation: {type: event_count, group-by: [service], timespan: 60s, condition: {gte: 3}}\n"
    )
    (tmp_path / "empty").mkdir()
    _archive(tmp_path / "a.jsonl")
    (tmp_path / "blank.jsonl").write_text("\n")
    assert main(make(tmp_path)) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1 and "Traceback" not in err, err
