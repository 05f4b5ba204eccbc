"""Redis stopped under load in partitioned mode (a receiver and a correlator process,
tests/e2e/test_redis_outage.py for the single process). The receiver needs no Redis: it
keeps answering 200 throughout. The correlator's `/readyz` is 503 while its shards
cannot commit; it logs one line each way, reloads its shards once Redis answers, and
resumes from what was stored. Restarted with its data, every alert taken is in an
incident and none is opened twice at the sink; restarted empty, the shards start from
the partitions' committed offsets (the README says what is lost then) and everything
after them is correlated.

The outage lasts STORMWATCH_OUTAGE_S seconds (3 in CI). The test runs its own
redis-server (tests/redis_server.py), never the machine's.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Daemon, start_daemon
from tests.e2e.test_redis_outage import OUTAGE_S, HttpLoad, _log_events, restart_until_ready
from tests.e2e.tools import wait_for
from tests.redis_server import OwnRedis

pytestmark = [pytest.mark.redis, pytest.mark.kafka]

RULE = """\
- name: each
  correlation: {type: event_count, group-by: [service], timespan: 10m, condition: {gte: 1}}
  incident: {title: "{service}", severity: P3}
"""


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for d in started:
        d.stop()


def _services(daemon: Daemon) -> set[str]:
    status, body = daemon.get("/api/v1/incidents?status=all")
    assert status == 200, body
    return {i["group"]["service"] for i in json.loads(body)}


def _opened(jsonl: Path) -> Counter[tuple[str, str]]:
    """(title, key) of each `opened` event the file sink wrote, and how often."""
    if not jsonl.exists():
        return Counter()
    data = jsonl.read_bytes()
    # Only whole lines: the sink may be writing the last one as we read.
    lines = [json.loads(x) for x in data[: data.rfind(b"\n") + 1].splitlines() if x]
    return Counter(
        (e["incident"]["title"], e["incident"]["key"]) for e in lines if e["event"] == "opened"
    )


@pytest.mark.parametrize("restart", ["empty", "with_data"])
def test_a_redis_outage_under_a_correlator_stops_nothing_for_good(
    tmp_path: Path,
    kafka_bootstrap: str,
    kafka_topic: str,
    restart: str,
    daemons: list[Daemon],
) -> None:
    server = OwnRedis(tmp_path / "redis")
    server.start()
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULE)
    part = (
        f"partitioning: {{bootstrap: '{kafka_bootstrap}', topic: {kafka_topic}, partitions: 3,"
        f" group_id: {kafka_topic}, tick_interval: 200ms, session_timeout: 3s}}\n"
    )
    configs = {}
    for role, extra in [
        ("receiver", ""),
        ("correlator", f"state: {{backend: redis, url: '{server.url}', key_prefix: outage}}\n"),
    ]:
        (tmp_path / role).mkdir()
        configs[role] = tmp_path / role / "stormwatch.yaml"
        configs[role].write_text(
            f"role: {role}\n{part}{extra}correlate: {{max_groups_per_rule: 1000000}}\n"
        )
    try:
        receiver = start_daemon(
            tmp_path / "receiver", "--config", str(configs["receiver"]), "--rules", str(rules)
        )
        daemons.append(receiver)
        correlator = start_daemon(
            tmp_path / "correlator", "--config", str(configs["correlator"]), "--rules", str(rules)
        )
        daemons.append(correlator)
        http = HttpLoad(receiver.url)
        http.start()
        wait_for("incidents before the outage", lambda: len(_services(correlator)) >= 20, 30)

        server.stop()
        stopped = time.monotonic()
        ready: list[tuple[int, int]] = []
        while time.monotonic() - stopped < OUTAGE_S:
            ready.append((receiver.get("/readyz")[0], correlator.get("/readyz")[0]))
            time.sleep(0.1)
        assert {r for r, _ in ready} == {200}, ready  # the receiver never needed Redis
        assert ready[-1][1] == 503, ready
        taken_during = len(http.taken)
        recovered_after = restart_until_ready(server, restart, correlator)
        after = len(http.taken)
        wait_for("load after the recovery", lambda: len(http.taken) >= after + 50, 30)
        http.stop.set()
        http.join(60)
        assert not http.is_alive()

        # Restarted empty, what the shards held is gone: only what came after the
        # committed offsets can be asked for (at least everything sent after the restart).
        expected = set(http.taken if restart == "with_data" else http.taken[after:])
        wait_for("every alert in an incident", lambda: _services(correlator) >= expected, 60)
        # The sink hears of each incident once its shard's drain gets to it.
        wait_for(
            "an opened event at the sink for each",
            lambda: {t for t, _ in _opened(correlator.jsonl)} >= expected,
            60,
        )
        opened = _opened(correlator.jsonl)
        assert correlator.alive() and receiver.alive()
        events = _log_events(correlator.log)  # before Redis stops again, at the teardown
    finally:
        server.stop()
    names = Counter(e.get("event") for e in events)
    twice = [k for k, n in opened.items() if n > 1]
    print(
        f"\n{restart}: outage {OUTAGE_S:.0f}s; receiver answers {dict(http.statuses)} "
        f"({len(http.taken)} alerts, {taken_during} of them by the end of the outage); "
        f"correlator /readyz 503 {sum(c == 503 for _, c in ready)}/{len(ready)} "
        f"polls while down, 200 again {recovered_after:.2f}s after Redis restarted; "
        f"{len(opened)} incidents opened, {len(twice)} twice; log lines {sum(names.values())}"
    )
    assert set(http.statuses) == {200}
    assert names["store_unavailable"] == 1 and names["store_recovered"] == 1
    if restart == "with_data":
        assert twice == []
    for bad in ("task_crashed", "batch_failed", "drain_failed", "shard_fenced"):
        assert names[bad] == 0, bad
    assert not any("exception" in e for e in events)
