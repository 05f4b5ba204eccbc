"""The real `amtool` (Debian's prometheus-alertmanager) against a running stormwatch:
alert query, silence add, query and expire, through Alertmanager's API v2."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.conftest import Daemon
from tests.e2e.tools import burst, post_alerts, require_binary, run

pytestmark = pytest.mark.tools


@pytest.fixture
def amtool() -> str:
    return require_binary("amtool", "prometheus-alertmanager")


def test_amtool_queries_alerts_and_adds_queries_and_expires_a_silence(
    daemon_factory: Callable[..., Daemon], amtool: str
) -> None:
    daemon = daemon_factory()
    post_alerts(daemon, burst(5))
    am = [amtool, f"--alertmanager.url={daemon.url}"]

    query = run([*am, "-o", "json", "alert", "query"])
    assert query.returncode == 0, query.stderr
    names = sorted(a["labels"]["alertname"] for a in json.loads(query.stdout))
    assert names == [f"HighErrorRate{i}" for i in range(1, 6)]
    simple = run([*am, "alert", "query", "alertname=HighErrorRate3"])
    assert simple.returncode == 0 and "HighErrorRate3" in simple.stdout
    assert "HighErrorRate2" not in simple.stdout

    add = run(
        [*am, "silence", "add", "alertname=~HighErrorRate[12]", "--comment=deploy", "-d", "1h"]
    )
    assert add.returncode == 0, add.stderr
    silence_id = add.stdout.strip()
    assert len(silence_id) == 36  # a UUID, as Alertmanager's

    listed = run([*am, "-o", "json", "silence", "query"])
    assert listed.returncode == 0, listed.stderr
    (silence,) = json.loads(listed.stdout)
    assert silence["id"] == silence_id and silence["status"]["state"] == "active"
    assert silence["matchers"] == [
        {"name": "alertname", "value": "HighErrorRate[12]", "isRegex": True, "isEqual": True}
    ]
    assert silence["comment"] == "deploy"

    unmuted = run([*am, "-o", "json", "alert", "query"])
    assert sorted(a["labels"]["alertname"] for a in json.loads(unmuted.stdout)) == [
        "HighErrorRate3",
        "HighErrorRate4",
        "HighErrorRate5",
    ]
    muted = run([*am, "-o", "json", "alert", "query", "--silenced", "alertname=HighErrorRate1"])
    (one,) = json.loads(muted.stdout)
    assert one["status"] == {"state": "suppressed", "silencedBy": [silence_id], "inhibitedBy": []}

    expire = run([*am, "silence", "expire", silence_id])
    assert expire.returncode == 0, expire.stderr
    assert json.loads(run([*am, "-o", "json", "silence", "query"]).stdout) == []
    after = run([*am, "-o", "json", "alert", "query"])
    assert len(json.loads(after.stdout)) == 5

    gone = run([*am, "silence", "expire", silence_id])
    assert gone.returncode != 0  # expiring twice: 404 from stormwatch, amtool says so
