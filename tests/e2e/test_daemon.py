"""`stormwatch run` as a real process: Prometheus-format alerts in, JSONL incidents out."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Daemon

RULE = """\
- name: service-burst
  description: five alerts of one service within a minute
  correlation:
    type: event_count
    group-by: [service]
    timespan: 60s
    condition: {gte: 5}
  incident:
    title: "{service}: {count} alerts within 60s"
    severity: P2
    category: availability
"""


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _scenario(
    base: float, seed: int = 7
) -> tuple[list[list[dict[str, Any]]], dict[str, int], Counter[str]]:
    """1,000 alerts in batches of 100: 200 distinct, 800 re-sends of earlier ones.

    Services 0-9 burst (alerts 5 s apart), services 10-19 trickle (20 s apart, so never 5
    within 60 s). A bursting service with k >= 5 alerts makes exactly one incident of k
    alerts; nothing else does. Returns the batches, the expected {service: alert count}
    and the expected re-send count per alert name.
    """
    rng = random.Random(seed)
    sizes = [rng.randint(2, 18) for _ in range(20)]
    while sum(sizes) != 200:  # exactly 200 distinct alerts, each service 2..18 of them
        i = rng.randrange(20)
        step = 1 if sum(sizes) < 200 else -1
        if 2 <= sizes[i] + step <= 18:
            sizes[i] += step
    distinct = []
    for svc, k in enumerate(sizes):
        gap = 5 if svc < 10 else 20
        for j in range(k):
            distinct.append(
                {
                    "labels": {
                        "alertname": f"A{svc}-{j}",
                        "service": f"svc-{svc}",
                        "severity": "warning",
                        "instance": f"10.0.{svc}.{j}:9100",
                    },
                    "annotations": {"summary": f"alert {j} of svc-{svc}"},
                    "startsAt": _iso(base + j * gap),
                    "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
                }
            )
    distinct.sort(key=lambda a: a["startsAt"])
    stream: list[dict[str, Any]] = []
    sent: list[dict[str, Any]] = []
    resends: Counter[str] = Counter()
    pending = list(distinct)
    while pending or len(stream) < 1000:
        if pending and (not sent or rng.random() < 0.2 or len(stream) + len(pending) >= 1000):
            a = pending.pop(0)
            sent.append(a)
        else:
            a = rng.choice(sent)
            resends[a["labels"]["alertname"]] += 1
        stream.append(a)
    assert len(stream) == 1000 and sum(resends.values()) == 800
    expected = {f"svc-{s}": k for s, k in enumerate(sizes) if s < 10 and k >= 5}
    return [stream[i : i + 100] for i in range(0, 1000, 100)], expected, resends


def _read_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)


def test_thousand_alerts_with_resends_give_the_hand_counted_incidents(
    daemon_factory: Any, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULE)
    config = tmp_path / "stormwatch.yaml"
    # Updates flush on every tick, so the file's last line per incident is current soon.
    config.write_text(
        "tick_interval: 200ms\ncorrelate: {update_interval: 0s, duplicates_interval: 0s}\n"
    )
    daemon: Daemon = daemon_factory("--config", str(config), "--rules", str(rules))
    # Event times 400..40 s in the past: none in the future (those count as now) and
    # all within the default allowed lateness of 10 minutes.
    batches, expected, resends = _scenario(base=time.time() - 400)
    for batch in batches:
        status, body, _ = daemon.post("/api/v2/alerts", json.dumps(batch).encode())
        assert status == 200, body

    def current() -> list[dict[str, Any]]:
        status, body = daemon.get("/api/v1/incidents?status=all")
        assert status == 200
        return json.loads(body)  # type: ignore[no-any-return]

    def settled() -> bool:
        incidents = current()
        counts = sorted(i["alert_count"] for i in incidents)
        dups = sum(a["duplicates"] for i in incidents for a in i["alerts"])
        return counts == sorted(expected.values()) and dups == sum(
            resends[f"A{s[4:]}-{j}"] for s, k in expected.items() for j in range(k)
        )

    _wait_for(settled)
    for inc in current():
        service = inc["group"]["service"]
        assert inc["status"] == "open"
        for a in inc["alerts"]:
            assert a["duplicates"] == resends[a["labels"]["alertname"]], a["labels"]["alertname"]
        assert inc["title"] == f"{service}: {expected[service]} alerts within 60s"

    # The file: one `opened` per incident with the alerts that opened it; compact
    # `updated` events add the rest (the outbox may fold an update into a waiting
    # `opened`), and the title is current. Re-send counts are the API's to tell.
    def file_settled() -> bool:
        last = {e["incident"]["key"]: e for e in _read_events(daemon.jsonl)}
        return sorted(e["incident"]["alert_count"] for e in last.values()) == sorted(
            expected.values()
        )

    _wait_for(file_settled)
    events = _read_events(daemon.jsonl)
    opened = [e for e in events if e["event"] == "opened"]
    assert sorted(e["incident"]["group"]["service"] for e in opened) == sorted(expected)
    assert len({e["incident"]["key"] for e in opened}) == len(opened), (
        "an incident was opened twice"
    )
    names: dict[str, set[str]] = {}
    last: dict[str, dict[str, Any]] = {}
    for e in events:
        key = e["incident"]["key"]
        last[key] = e["incident"]
        listed = e["incident"]["alerts"] + e.get("changes", {}).get("alerts_added", [])
        names.setdefault(key, set()).update(a["labels"]["alertname"] for a in listed)
    for key, inc in last.items():
        service = inc["group"]["service"]
        assert inc["alert_count"] == expected[service]
        assert names[key] == {f"A{service[4:]}-{j}" for j in range(expected[service])}
        assert inc["title"] == f"{service}: {expected[service]} alerts within 60s"

    status, metrics = daemon.get("/metrics")
    text = metrics.decode()
    assert 'stormwatch_alerts_received_total{source="alertmanager",status="firing"} 1000.0' in text
    assert 'stormwatch_alerts_deduplicated_total{source="alertmanager"} 800.0' in text
    assert (
        f'stormwatch_incidents_total{{event="opened",rule="service-burst"}} {float(len(expected))}'
        in text
    )


@pytest.mark.parametrize(
    ("body", "status", "error", "field_part"),
    [
        (b'[{"labels": {"alertname": "x"}', 400, "invalid_json", ""),
        (
            b'[{"labels": {"alertname": "x"}, "startsAt": 12}]',
            400,
            "invalid_payload",
            "$[0].startsAt",
        ),
        (b'[{"labels": {"alertname": 5}}]', 400, "invalid_payload", "$[0].labels.alertname"),
    ],
)
def test_bad_bodies_get_a_4xx_naming_the_problem(
    daemon_factory: Any, body: bytes, status: int, error: str, field_part: str
) -> None:
    daemon: Daemon = daemon_factory()
    got, raw, _ = daemon.post("/api/v2/alerts", body)
    assert got == status
    payload = json.loads(raw)
    assert payload["error"] == error
    assert field_part in payload["field"]
    assert payload["message"]
    ok, _, _ = daemon.post("/api/v2/alerts", b'[{"labels": {"alertname": "still-serving"}}]')
    assert ok == 200


def test_ten_mib_body_gets_413_and_the_daemon_goes_on(daemon_factory: Any) -> None:
    daemon: Daemon = daemon_factory()
    big = b"[" + b",".join([b'{"labels": {"alertname": "' + b"x" * 1000 + b'"}}'] * 10_300) + b"]"
    assert len(big) > 10 * 1024 * 1024
    got, raw, _ = daemon.post("/api/v2/alerts", big)
    assert got == 413
    assert json.loads(raw)["error"] == "too_large"
    assert daemon.post("/api/v2/alerts", b'[{"labels": {"alertname": "after"}}]')[0] == 200
    assert daemon.alive()


def test_embedded_default_needs_no_flags_and_restarts_cleanly(daemon_factory: Any) -> None:
    daemon: Daemon = daemon_factory()
    assert daemon.get("/healthz")[0] == 200
    assert daemon.stop() == 0
    again: Daemon = daemon_factory()
    assert again.get("/readyz")[0] == 200


def test_sighup_reloads_and_a_broken_file_keeps_the_old_rules(
    daemon_factory: Any, tmp_path: Path
) -> None:
    import signal

    rules = tmp_path / "rules.yaml"
    rules.write_text(RULE.replace("gte: 5", "gte: 2"))
    config = tmp_path / "stormwatch.yaml"
    config.write_text("rules_watch_interval: 0s\n")  # only the signal reloads here
    daemon: Daemon = daemon_factory("--config", str(config), "--rules", str(rules))
    rules.write_text(RULE + "- name: broken\n  correlation: {type: event_count, timespan: 5x}\n")
    daemon.proc.send_signal(signal.SIGHUP)
    _wait_for(lambda: "rules_reload_failed" in daemon.log.read_text())
    assert "rule broken: correlation.timespan" in daemon.log.read_text()
    now = time.time()
    batch = [
        {"labels": {"alertname": f"A{i}", "service": "s"}, "startsAt": _iso(now - 5 + i)}
        for i in range(2)
    ]
    assert daemon.post("/api/v2/alerts", json.dumps(batch).encode())[0] == 200
    _wait_for(lambda: any(e["event"] == "opened" for e in _read_events(daemon.jsonl)))
    opened = [e for e in _read_events(daemon.jsonl) if e["event"] == "opened"]
    assert [e["incident"]["alert_count"] for e in opened] == [2]  # the old threshold, still live
    assert "stormwatch_rules_last_reload_successful 0.0" in daemon.get("/metrics")[1].decode()


@pytest.mark.redis
def test_kill_9_and_restart_with_redis_loses_no_acknowledged_alert(
    daemon_factory: Any, tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULE.replace("gte: 5", "gte: 3"))
    config = tmp_path / "stormwatch.yaml"
    config.write_text(
        f"state: {{backend: redis, url: '{redis_url}', key_prefix: '{redis_prefix}'}}\n"
    )
    now = time.time()

    def post(d: Daemon, *names: str) -> None:
        batch = [
            {"labels": {"alertname": n, "service": "s"}, "startsAt": _iso(now - 30)} for n in names
        ]
        assert d.post("/api/v2/alerts", json.dumps(batch).encode())[0] == 200

    first: Daemon = daemon_factory("--config", str(config), "--rules", str(rules))
    post(first, "a", "b")  # acknowledged: in Redis, 2 of 3
    first.proc.kill()  # no graceful shutdown
    first.proc.wait()
    second: Daemon = daemon_factory("--config", str(config), "--rules", str(rules))
    post(second, "a")  # a re-send after the restart: still a duplicate
    assert [e for e in _read_events(second.jsonl) if e["event"] == "opened"] == []
    post(second, "c")
    _wait_for(lambda: any(e["event"] == "opened" for e in _read_events(second.jsonl)))
    opened = [e["incident"] for e in _read_events(second.jsonl) if e["event"] == "opened"]
    assert [i["alert_count"] for i in opened] == [3]
    assert sorted(a["labels"]["alertname"] for a in opened[0]["alerts"]) == ["a", "b", "c"]
    assert {a["labels"]["alertname"]: a["duplicates"] for a in opened[0]["alerts"]}["a"] == 1


@pytest.mark.redis
def test_incident_events_waiting_for_a_sink_survive_kill_9(
    daemon_factory: Any, tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    from tests.fakes.threaded import threaded_receiver

    rules = tmp_path / "rules.yaml"
    rules.write_text(RULE.replace("gte: 5", "gte: 1"))
    with threaded_receiver() as receiver:
        receiver.status = 503  # the receiver is down: the event waits in the outbox
        config = tmp_path / "stormwatch.yaml"
        config.write_text(
            f"state: {{backend: redis, url: '{redis_url}', key_prefix: '{redis_prefix}'}}\n"
            f"sinks:\n  - {{type: webhook, name: hook, url: '{receiver.url}',"
            " retry: {initial_backoff: 50ms, max_backoff: 100ms, max_attempts: 1000}}\n"
        )
        first: Daemon = daemon_factory("--config", str(config), "--rules", str(rules))
        batch = [
            {"labels": {"alertname": "Down", "service": "s"}, "startsAt": _iso(time.time() - 5)}
        ]
        assert first.post("/api/v2/alerts", json.dumps(batch).encode())[0] == 200
        _wait_for(lambda: len(receiver.received) >= 2)  # tried, refused, retrying
        first.proc.kill()
        first.proc.wait()
        receiver.status = 202  # the receiver is back
        tried = len(receiver.received)
        daemon_factory("--config", str(config), "--rules", str(rules))
        _wait_for(lambda: len(receiver.received) > tried)
        time.sleep(0.3)
        delivered = receiver.received[tried:]
    assert [b["event"] for _, b in delivered] == ["opened"]
    keys = {h["Idempotency-Key"] for h, _ in receiver.received}
    assert len(keys) == 1  # every attempt, before and after the crash, is the same event


def test_deadletters_cli_lists_and_replays_a_running_daemons(
    daemon_factory: Any, tmp_path: Path
) -> None:
    import subprocess
    import sys

    from tests.fakes.threaded import threaded_receiver

    rules = tmp_path / "rules.yaml"
    rules.write_text(RULE.replace("gte: 5", "gte: 1"))
    with threaded_receiver() as receiver:
        receiver.status = 400  # refused: dead-lettered at once
        config = tmp_path / "stormwatch.yaml"
        config.write_text(f"sinks:\n  - {{type: webhook, name: hook, url: '{receiver.url}'}}\n")
        daemon: Daemon = daemon_factory("--config", str(config), "--rules", str(rules))
        batch = [
            {"labels": {"alertname": "Down", "service": "s"}, "startsAt": _iso(time.time() - 5)}
        ]
        assert daemon.post("/api/v2/alerts", json.dumps(batch).encode())[0] == 200
        _wait_for(lambda: len(receiver.received) >= 1)
        time.sleep(0.2)

        def cli(*args: str) -> str:
            return subprocess.run(
                [sys.executable, "-m", "stormwatch.cli", "deadletters", *args, "--url", daemon.url],
                capture_output=True,
                text=True,
                check=True,
            ).stdout

        listed = cli("list", "hook")
        assert (
            "opened" in listed
            and "permanent" in listed
            and listed.strip().endswith("1 dead letters")
        )
        receiver.status = 202
        assert cli("replay", "hook").startswith("1 dead letters of hook back")
        _wait_for(lambda: len(receiver.received) >= 2)
    assert [b["event"] for _, b in receiver.received] == ["opened", "opened"]
