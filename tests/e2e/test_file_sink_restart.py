"""kill -9 of `stormwatch run` just after the JSONL sink wrote a line and before the
outbox heard of it: the restarted daemon delivers that event again, and the sink must
not write the line twice."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import Daemon
from tests.e2e.tools import wait_for

pytestmark = pytest.mark.redis

RULE = """\
- name: down
  correlation: {type: event_count, group-by: [service], timespan: 60s, condition: {gte: 1}}
  incident: {title: "{service} down", severity: P2}
"""


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_a_line_written_but_not_acknowledged_before_kill_9_is_not_written_again(
    daemon_factory: Any, tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULE)
    config = tmp_path / "stormwatch.yaml"
    config.write_text(
        f"state: {{backend: redis, url: '{redis_url}', key_prefix: '{redis_prefix}'}}\n"
    )
    r = redis.Redis.from_url(redis_url)
    inbox, pending = f"{redis_prefix}:outbox:jsonl", f"{redis_prefix}:outbox:jsonl:pending"

    def delivered() -> bool:
        return r.llen(inbox) == 0 and r.hlen(pending) == 0

    first: Daemon = daemon_factory("--config", str(config), "--rules", str(rules))
    batch = [{"labels": {"alertname": "Down", "service": "s"}}]
    assert first.post("/api/v2/alerts", json.dumps(batch).encode())[0] == 200
    opened = wait_for("the opened line", lambda: _lines(first.jsonl), timeout=20)
    wait_for("the outbox to hear of it", delivered, timeout=20)
    first.proc.kill()
    first.proc.wait()
    # Put Redis back as it was between the write and the acknowledgement: the sink's
    # record of the incident not yet written, the event still in the sink's inbox (the
    # drain folds the inbox into `pending` and delivers from there). The kill cannot be
    # timed to that microsecond from outside; the state it leaves can be made exactly.
    event = opened[0]
    remote = f"{redis_prefix}:remote:jsonl:{event['incident']['key']}"
    assert r.delete(remote) == 1
    r.rpush(inbox, json.dumps({"id": 1, "event": event}))

    second: Daemon = daemon_factory("--config", str(config), "--rules", str(rules))
    wait_for("the event to be delivered again", lambda: delivered() and r.exists(remote), 20)
    assert json.loads(r.get(remote) or b"{}")["sequence"] == event["sequence"]
    batch[0]["endsAt"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    assert second.post("/api/v2/alerts", json.dumps(batch).encode())[0] == 200
    wait_for("the resolved line", lambda: len(_lines(second.jsonl)) >= 2, timeout=20)
    events = [(e["incident"]["key"], e["sequence"], e["event"]) for e in _lines(second.jsonl)]
    assert [e[2] for e in events] == ["opened", "resolved"]
    assert len(set(events)) == len(events)
