"""Real clients, on loopback: Debian's Prometheus lists stormwatch as its Alertmanager,
and Debian's Alertmanager forwards to stormwatch through its webhook. Each test sees an
incident open and then resolve, within CI's time (short intervals, bounded waits)."""

from __future__ import annotations

import signal
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Daemon, pick_free_port
from tests.e2e.tools import get_json, iso_now, require_binary, run, wait_for

pytestmark = pytest.mark.tools

FIRING = """\
groups:
  - name: e2e
    interval: 1s
    rules:
      - alert: AlwaysFiring
        expr: vector(1)
        labels: {severity: critical, service: e2e, cluster: ci}
        annotations: {summary: "vector(1) always holds"}
"""


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _start(
    args: list[str], log: Path, started: list[subprocess.Popen[bytes]]
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    started.append(proc)
    return proc


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def _incident(daemon: Daemon, rule: str, status: str) -> dict[str, Any] | None:
    found = [i for i in get_json(daemon, "/api/v1/incidents?status=all") if i["rule"] == rule]
    return next((i for i in found if i["status"] == status), None)


def test_prometheus_alerts_open_an_incident_and_its_end_resolves_it(
    daemon_factory: Callable[..., Daemon],
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    prometheus = require_binary("prometheus", "prometheus")
    daemon = daemon_factory()
    rules = tmp_path / "rules.yml"
    rules.write_text(FIRING)
    port = daemon.url.rsplit(":", 1)[1]
    config = tmp_path / "prometheus.yml"
    config.write_text(
        f"""\
global: {{evaluation_interval: 1s, scrape_interval: 15s}}
rule_files: [{rules}]
alerting:
  alertmanagers:
    - api_version: v2
      static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
"""
    )
    log = tmp_path / "prometheus.log"
    proc = _start(
        [
            prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{pick_free_port()}",
            "--rules.alert.resend-delay=1s",
            "--log.level=warn",
        ],
        log,
        processes,
    )
    opened = wait_for(
        "Prometheus' AlwaysFiring to open a critical-alert incident",
        lambda: _incident(daemon, "critical-alert", "open") or proc.poll() is not None,
        timeout=40,
    )
    assert proc.poll() is None, log.read_text()
    assert opened["title"] == "AlwaysFiring on e2e (ci)" and opened["severity"] == "P1"
    (alert,) = opened["alerts"]
    assert alert["source"] == "alertmanager" and alert["generator_url"].startswith("http")

    rules.write_text(FIRING.replace("expr: vector(1)", "expr: vector(1) == 0"))
    proc.send_signal(signal.SIGHUP)  # Prometheus reloads its config and rules
    resolved = wait_for(
        "the incident to resolve once the rule stops firing",
        lambda: _incident(daemon, "critical-alert", "resolved"),
        timeout=40,
    )
    assert resolved["key"] == opened["key"]
    events = [line for line in daemon.jsonl.read_text().splitlines() if opened["key"] in line]
    assert '"event":"opened"' in events[0] and '"event":"resolved"' in events[-1]


def test_alertmanager_webhook_forwards_alerts_added_with_amtool(
    daemon_factory: Callable[..., Daemon],
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    alertmanager = require_binary("prometheus-alertmanager", "prometheus-alertmanager")
    amtool = require_binary("amtool", "prometheus-alertmanager")
    daemon = daemon_factory()
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        f"""\
route:
  receiver: stormwatch
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: stormwatch
    webhook_configs:
      - url: {daemon.url}/webhook/alertmanager
        send_resolved: true
"""
    )
    am_url = f"http://127.0.0.1:{pick_free_port()}"
    log = tmp_path / "alertmanager.log"
    proc = _start(
        [
            alertmanager,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'am'}",
            f"--web.listen-address={am_url.removeprefix('http://')}",
            "--cluster.listen-address=",  # no gossip port: one instance, loopback only
            "--log.level=warn",
        ],
        log,
        processes,
    )
    wait_for(
        "Alertmanager to be ready",
        lambda: (
            run(["curl", "-sf", f"{am_url}/-/ready"]).returncode == 0 or proc.poll() is not None
        ),
        timeout=30,
    )
    assert proc.poll() is None, log.read_text()
    labels = ["alertname=DiskFull", "severity=critical", "service=db", "cluster=ci"]
    added = run(
        [
            amtool,
            f"--alertmanager.url={am_url}",
            "alert",
            "add",
            *labels,
            "--annotation=summary=disk full",
        ]
    )
    assert added.returncode == 0, added.stderr
    opened = wait_for(
        "Alertmanager's webhook to open an incident",
        lambda: _incident(daemon, "critical-alert", "open"),
        timeout=30,
    )
    assert opened["title"] == "DiskFull on db (ci)"

    ended = run(
        [amtool, f"--alertmanager.url={am_url}", "alert", "add", *labels, f"--end={iso_now(-1)}"]
    )
    assert ended.returncode == 0, ended.stderr
    resolved = wait_for(
        "the resolved notification to resolve the incident",
        lambda: _incident(daemon, "critical-alert", "resolved"),
        timeout=30,
    )
    assert resolved["key"] == opened["key"]
    assert proc.poll() is None, log.read_text()
