"""Every door in, through a real `stormwatch run`: each source's payload (from the
vendor's documentation or source) in, the normalised alert and an incident out."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Daemon, pick_free_port, start_daemon

PAYLOADS = Path(__file__).resolve().parents[1] / "payloads"
ROOT = Path(__file__).resolve().parents[2]

RULES = """\
- name: every-alert
  description: one incident per alert name, so each source's alert shows up
  correlation: {type: event_count, group-by: [alertname], timespan: 1h, condition: {gte: 1}}
  incident: {title: "{alertname}", severity: P3}
- name: ssh-brute-force
  description: three failed logins from one address within a minute, from any log source
  source: [syslog, file]
  match: ['alertname="SSHLoginFailed"']
  alert_severity: [warning, high, critical]
  correlation: {type: event_count, group-by: [src_ip], timespan: 1m, condition: {gte: 3}}
  incident: {title: "{count} failed logins from {src_ip}", severity: P2, category: security}
"""

SSH_PATTERN = """
      - alertname: SSHLoginFailed
        program: sshd
        regex: 'Failed password for (?:invalid user )?(?P<user>\\S+) from (?P<src_ip>\\S+) port (?P<port>\\d+)'
        labels: {service: ssh}
"""


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Sources:
    def __init__(self, daemon: Daemon, udp: int, tcp: int, log: Path) -> None:
        self.daemon, self.udp, self.tcp, self.log = daemon, udp, tcp, log

    def opened(
        self, match: Callable[[dict[str, Any]], bool], timeout: float = 15.0
    ) -> dict[str, Any]:
        """The first `opened` event whose incident holds an alert `match` accepts."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.daemon.jsonl.exists():
                for line in self.daemon.jsonl.read_text().splitlines():
                    event = json.loads(line)
                    if event["event"] == "opened" and any(map(match, event["incident"]["alerts"])):
                        return event
            time.sleep(0.05)
        pytest.fail(
            f"no incident opened for the alert; daemon log:\n{self.daemon.log.read_text()[-3000:]}"
        )


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sources]:
    tmp = tmp_path_factory.mktemp("sources")
    (tmp / "rules.yaml").write_text(RULES)
    log = tmp / "auth.log"
    log.write_text("")
    udp, tcp = pick_free_port(), pick_free_port()
    (tmp / "stormwatch.yaml").write_text(
        f"""
tick_interval: 200ms
correlate: {{update_interval: 0s}}
ingest:
  mapping_files: {json.dumps(sorted(str(p) for p in (ROOT / "deploy/mappings").glob("*.yaml")))}
  syslog:
    udp: 127.0.0.1:{udp}
    tcp: 127.0.0.1:{tcp}
    patterns:{SSH_PATTERN}
  files:
    - path: {log}
      poll_interval: 50ms
      patterns:{SSH_PATTERN}
"""
    )
    daemon = start_daemon(
        tmp, "--config", str(tmp / "stormwatch.yaml"), "--rules", str(tmp / "rules.yaml")
    )
    try:
        yield Sources(daemon, udp, tcp, log)
    finally:
        daemon.stop()


def post(sources: Sources, route: str, body: Any) -> None:
    status, raw, _ = sources.daemon.post(route, json.dumps(body).encode())
    assert status == 200, raw


def payload(path: str) -> Any:
    return json.loads((PAYLOADS / path).read_text())


def test_alertmanager_api(sources: Sources) -> None:
    items = payload("alertmanager/api_v2.json")
    for item in items:
        item["startsAt"] = iso(time.time() - 30)
        item.pop("endsAt", None)
    post(sources, "/api/v2/alerts", items)
    name = items[0]["labels"]["alertname"]
    event = sources.opened(lambda a: a["labels"].get("alertname") == name)
    (alert,) = [a for a in event["incident"]["alerts"] if a["labels"]["alertname"] == name]
    assert alert["source"] == "alertmanager" and alert["labels"] == items[0]["labels"]
    assert alert["severity"] == "critical"


def test_alertmanager_webhook(sources: Sources) -> None:
    body = payload("alertmanager/webhook_v4.json")
    for a in body["alerts"]:
        a["startsAt"] = iso(time.time() - 20)
        a["labels"]["alertname"] = "AMWebhook-" + a["status"]
        if a["status"] == "resolved":
            a["endsAt"] = iso(time.time() - 5)
    post(sources, "/webhook/alertmanager", body)
    event = sources.opened(lambda a: a["labels"]["alertname"] == "AMWebhook-firing")
    assert event["incident"]["alerts"][0]["source"] == "alertmanager"


def test_grafana(sources: Sources) -> None:
    body = payload("grafana/webhook_v1.json")
    body["alerts"][0]["startsAt"] = iso(time.time() - 20)
    post(sources, "/webhook/grafana", body)
    event = sources.opened(lambda a: a["source"] == "grafana")
    alert = event["incident"]["alerts"][0]
    assert alert["labels"]["alertname"] == "High memory usage" and alert["severity"] == "warning"


def test_wazuh_wrapped_by_shuffle(sources: Sources) -> None:
    body = payload("wazuh/shuffle.json")
    body["all_fields"]["timestamp"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    post(sources, "/webhook/wazuh", body)
    event = sources.opened(lambda a: a["source"] == "wazuh")
    alert = event["incident"]["alerts"][0]
    assert alert["severity"] == "high"  # rule.level 10
    assert (alert["labels"]["srcuser"], alert["labels"]["agent_ip"]) == ("admin", "192.168.64.30")


def test_elastic_search_response(sources: Sources) -> None:
    body = payload("elastic/search.json")
    for hit in body["hits"]["hits"]:
        hit["_source"]["kibana.alert.original_time"] = iso(time.time() - 60)
        hit["_source"]["@timestamp"] = iso(time.time() - 50)
        hit["_source"].pop("kibana.alert.workflow_status_updated_at", None)
    post(sources, "/webhook/elastic", body)
    event = sources.opened(
        lambda a: a["labels"].get("alertname") == "Suspicious PowerShell Engine ImageLoad"
    )
    alert = event["incident"]["alerts"][0]
    assert alert["source"] == "elastic" and alert["severity"] == "high"
    assert alert["labels"]["technique"] == "T1059,T1059.001"


def test_splunk_notable(sources: Sources) -> None:
    body = payload("splunk/notable_webhook.json")
    body["result"]["_time"] = str(time.time() - 30)
    post(sources, "/webhook/splunk", body)
    event = sources.opened(lambda a: a["source"] == "splunk")
    alert = event["incident"]["alerts"][0]
    assert alert["labels"]["alertname"] == "Brute Force Access Behavior Detected"
    assert alert["severity"] == "high"  # urgency


def test_generic(sources: Sources) -> None:
    post(
        sources, "/webhook/generic", {"labels": {"alertname": "GenericThing", "severity": "error"}}
    )
    alert = sources.opened(lambda a: a["source"] == "generic")["incident"]["alerts"][0]
    assert alert["severity"] == "high"


@pytest.mark.parametrize(
    ("route", "file", "alertname", "severity"),
    [
        ("datadog", "datadog/monitor_triggered.json", "CPU usage above 90% on web-01", "high"),
        ("zabbix", "zabbix/problem.json", "High CPU utilization (over 90% for 5m)", "high"),
        ("oncall", "grafana_oncall/formatted_webhook.json", "The whole system is down", "warning"),
    ],
)
def test_shipped_mappings(
    sources: Sources, route: str, file: str, alertname: str, severity: str
) -> None:
    body = payload(file)
    if "date" in body:
        body["date"] = str(int((time.time() - 30) * 1000))
    post(sources, f"/webhook/{route}", body)
    alert = sources.opened(lambda a: a["source"] == route)["incident"]["alerts"][0]
    assert alert["labels"]["alertname"] == alertname and alert["severity"] == severity


def _ssh(n: int, src: str, host: str = "web1") -> bytes:
    return f"<38>Aug  9 06:07:46 {host} sshd[{n}]: Failed password for invalid user u{n} from {src} port {40000 + n} ssh2".encode()


def _brute_force(sources: Sources, src: str) -> dict[str, Any]:
    """The `ssh-brute-force` incident of one source address, once it opened."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        # The file is made by the first event written: none yet when this test runs alone.
        text = sources.daemon.jsonl.read_text() if sources.daemon.jsonl.exists() else ""
        for line in text.splitlines():
            e = json.loads(line)
            inc = e["incident"]
            if (
                e["event"] == "opened"
                and inc["rule"] == "ssh-brute-force"
                and inc["group"] == {"src_ip": src}
            ):
                return e
        time.sleep(0.05)
    pytest.fail(f"no brute-force incident for {src}:\n{sources.daemon.log.read_text()[-3000:]}")


def test_syslog_udp_lines_are_counted_by_the_rules(sources: Sources) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for n in range(3):
            s.sendto(_ssh(n, "198.51.100.7"), ("127.0.0.1", sources.udp))
    inc = _brute_force(sources, "198.51.100.7")["incident"]
    assert inc["alert_count"] == 3 and inc["title"] == "3 failed logins from 198.51.100.7"
    alert = inc["alerts"][0]
    assert alert["source"] == "syslog" and alert["labels"]["host"] == "web1"
    assert alert["labels"]["service"] == "ssh"


def test_syslog_tcp_octet_counted_and_newline_framed(sources: Sources) -> None:
    lines = [_ssh(n, "203.0.113.9") for n in range(10, 13)]
    stream = (
        b"%d %s" % (len(lines[0]), lines[0])
        + lines[1]
        + b"\n"
        + b"%d %s" % (len(lines[2]), lines[2])
    )
    with socket.create_connection(("127.0.0.1", sources.tcp)) as s:
        s.sendall(stream)
    inc = _brute_force(sources, "203.0.113.9")["incident"]
    assert inc["alert_count"] == 3 and {a["source"] for a in inc["alerts"]} == {"syslog"}


def test_a_tailed_file(sources: Sources) -> None:
    with sources.log.open("ab") as f:
        for n in range(20, 23):
            f.write(_ssh(n, "192.0.2.77")[4:] + b"\n")  # file lines: no PRI
    inc = _brute_force(sources, "192.0.2.77")["incident"]
    assert inc["alert_count"] == 3
    assert {a["source"] for a in inc["alerts"]} == {"file"}
    assert inc["alerts"][0]["annotations"]["log_file"] == str(sources.log)


def test_every_source_is_counted_in_metrics(sources: Sources) -> None:
    _, text = sources.daemon.get("/metrics")
    metrics = text.decode()
    for source in (
        "alertmanager",
        "grafana",
        "wazuh",
        "elastic",
        "splunk",
        "generic",
        "datadog",
        "syslog",
        "file",
    ):
        assert (
            f'stormwatch_alerts_rejected_total{{reason="unauthorized",source="{source}"}} 0.0'
            in metrics
        )
    assert 'stormwatch_log_lines_total{outcome="matched",source="syslog"} 6.0' in metrics
    assert 'stormwatch_log_lines_total{outcome="matched",source="file"} 3.0' in metrics


def test_utf8_label_names_in_and_a_silence_on_one(sources: Sources) -> None:
    status, body, _ = sources.daemon.post(
        "/api/v1/silences",
        json.dumps(
            {"matchers": ['"service.name"="muted"'], "duration": "1h", "created_by": "e2e"}
        ).encode(),
    )
    assert status == 201, body
    muted = {"alertname": "OtelMuted", "service.name": "muted"}
    heard = {"alertname": "OtelHeard", "service.name": "checkout", "k8s.namespace.name": "shop"}
    post(sources, "/api/v2/alerts", [{"labels": muted}])
    post(sources, "/api/v2/alerts", [{"labels": heard}])  # processed after the muted one
    event = sources.opened(lambda a: a["labels"].get("alertname") == "OtelHeard")
    assert event["incident"]["alerts"][0]["labels"] == heard
    opened = [json.loads(line) for line in sources.daemon.jsonl.read_text().splitlines()]
    assert not [
        e
        for e in opened
        if any(a["labels"].get("alertname") == "OtelMuted" for a in e["incident"]["alerts"])
    ]
