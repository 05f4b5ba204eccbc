"""deploy/ passes its own tools: promtool checks and unit-tests the alerts, the dashboard
charts every stormwatch_* metric per job and instance, the image has a health check and
no listen override, and the README's full example is the deploy config."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from stormwatch.metrics import Metrics
from tests.conftest import ROOT
from tests.e2e.tools import require_binary, run

DEPLOY = ROOT / "deploy"
PROM = DEPLOY / "prometheus"


@pytest.fixture
def promtool() -> str:
    return require_binary("promtool", "prometheus")


@pytest.mark.tools
def test_promtool_checks_the_config_and_rules(promtool: str) -> None:
    for args in (
        ["check", "config", str(PROM / "prometheus.yml")],
        ["check", "rules", str(PROM / "alerts.yml")],
    ):
        done = run([promtool, *args])
        assert done.returncode == 0, done.stdout + done.stderr
        assert "SUCCESS" in done.stdout + done.stderr


@pytest.mark.tools
def test_promtool_unit_tests_the_self_alerts_and_the_watchdog(promtool: str) -> None:
    done = run([promtool, "test", "rules", str(PROM / "alerts_test.yml")])
    assert done.returncode == 0, done.stdout + done.stderr
    text = (PROM / "alerts_test.yml").read_text()
    alerts = re.findall(r"- alert: (\w+)", (PROM / "alerts.yml").read_text())
    for name in alerts:  # every alert has a test that expects it to fire
        assert f"alertname: {name}\n        exp_alerts:\n          - exp_labels" in text, name
    needed = {
        "StormwatchDown",
        "StormwatchRejectingAlerts",
        "StormwatchSinkFailing",
        "StormwatchDeadLetters",
        "StormwatchKafkaConsumerLag",
        "StormwatchRulesReloadFailed",
        "Watchdog",
    }
    assert needed <= set(alerts)


def _stormwatch_metrics() -> set[str]:
    names = set()
    for family in Metrics().registry.collect():
        kind = family.type
        names.add(family.name + ("_total" if kind == "counter" else ""))
    return names


def test_the_dashboard_has_job_and_instance_and_charts_every_metric() -> None:
    dash = json.loads((DEPLOY / "grafana/dashboards/stormwatch.json").read_text())
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert {"job", "instance"} <= set(variables)
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    for expr in exprs:
        for metric in re.findall(r"\b(stormwatch_\w+|up)\{([^}]*)\}", expr):
            assert 'job=~"$job"' in metric[1] and 'instance=~"$instance"' in metric[1], expr
    text = "\n".join(exprs)
    missing = {
        m
        for m in _stormwatch_metrics()
        if m not in text and m.removesuffix("_seconds") + "_seconds_bucket" not in text
    }
    assert not missing, f"no panel for {sorted(missing)}"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))


def test_the_image_checks_its_health_and_lets_the_config_choose_the_address() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", dockerfile, re.M)
    assert not re.search(r"^ENV .*STORMWATCH_LISTEN", dockerfile, re.M)
    assert "listen: 0.0.0.0:9095" in (DEPLOY / "stormwatch.yaml").read_text()
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "test-artifacts"} <= set(ignored)


def test_the_readme_full_example_is_the_deploy_config() -> None:
    readme = (ROOT / "README.md").read_text()
    example = (DEPLOY / "stormwatch.yaml").read_text()
    assert f"```yaml\n{example}```" in readme


def test_prometheus_sends_the_label_the_watchdog_rule_groups_by() -> None:
    import yaml

    prom = yaml.safe_load((PROM / "prometheus.yml").read_text())
    assert "cluster" in prom["global"]["external_labels"]
    rules = yaml.safe_load((ROOT / "rules/defaults/monitoring.yaml").read_text())
    (watchdog,) = [r for r in rules if r["name"] == "watchdog-missing"]
    assert watchdog["correlation"]["group-by"] == ["cluster"]
    assert all(Path(PROM / f).exists() for f in prom["rule_files"])  # relative to the file
