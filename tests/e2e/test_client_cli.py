"""`stormwatch incidents ...` and `stormwatch silence ...` against a running daemon."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

import pytest

from stormwatch.cli import main
from tests.conftest import Daemon, pick_free_port
from tests.e2e.tools import burst, post_alerts


def _burst(daemon: Daemon) -> None:
    post_alerts(daemon, burst(5))


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    assert main(list(argv)) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_incidents_list_show_and_explain(
    daemon_factory: Callable[..., Daemon], capsys: pytest.CaptureFixture[str]
) -> None:
    daemon = daemon_factory()
    _burst(daemon)
    url = ["--url", daemon.url]
    (listed,) = _json(capsys, "incidents", "list", *url, "--output", "json")  # type: ignore[misc]
    key = listed["key"]
    assert listed["rule"] == "service-alert-burst" and listed["alert_count"] == 5

    assert main(["incidents", "list", *url]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["KEY", "SEV", "STATUS", "AGE", "RULE", "ALERTS", "TITLE"]
    assert table[1].startswith(key) and "P2" in table[1] and "checkout: 5 alerts" in table[1]

    assert main(["incidents", "show", key, *url]) == 0
    shown = capsys.readouterr().out
    assert 'group service="checkout", 5 alerts' in shown and 'alertname="HighErrorRate3"' in shown

    assert main(["incidents", "explain", key, *url]) == 0
    explained = capsys.readouterr().out
    assert "rule:   service-alert-burst at " in explained and "monitoring.yaml:" in explained
    assert "window: 5 alerts" in explained
    detail = _json(capsys, "incidents", "explain", key, *url, "-o", "json")
    assert detail["rule"]["line"] and detail["why"]  # type: ignore[index]

    assert main(["incidents", "show", "inc-nope", *url]) == 1
    assert "404" in capsys.readouterr().err
    assert main(["incidents", "list", "--status", "resolved", *url]) == 0


def test_silence_add_query_expire_and_exit_codes(
    daemon_factory: Callable[..., Daemon], capsys: pytest.CaptureFixture[str]
) -> None:
    daemon = daemon_factory()
    url = ["--url", daemon.url]
    assert (
        main(["silence", "add", 'service="db"', 'env=~"prod.*"', "-d", "2h", "-c", "upgrade", *url])
        == 0
    )
    sid = capsys.readouterr().out.strip()
    (found,) = _json(capsys, "silence", "query", 'service="db"', *url, "-o", "json")  # type: ignore[misc]
    assert found["id"] == sid and found["comment"] == "upgrade"
    assert main(["silence", "query", *url]) == 0
    row = capsys.readouterr().out.splitlines()[1]
    assert sid in row and 'service="db" env=~"prod.*"' in row and "active" in row
    assert _json(capsys, "silence", "query", 'service="web"', *url, "-o", "json") == []

    assert main(["silence", "expire", sid, *url]) == 0
    assert _json(capsys, "silence", "query", *url, "-o", "json") == []
    assert main(["silence", "expire", sid, *url]) == 1  # no longer there
    capsys.readouterr()

    assert main(["silence", "add", 'service=~"(db"', "-c", "x", *url]) == 2  # bad regex
    assert "invalid regex" in capsys.readouterr().err
    assert main(["silence", "add", "service=db", "-d", "soon", "-c", "x", *url]) == 2
    assert "invalid duration" in capsys.readouterr().err
    dead = f"http://127.0.0.1:{pick_free_port()}"
    assert main(["silence", "query", "--url", dead]) == 1
    assert "cannot reach" in capsys.readouterr().err


def test_ack_names_the_route_it_needs(
    daemon_factory: Callable[..., Daemon], capsys: pytest.CaptureFixture[str]
) -> None:
    """`incidents ack` posts {"by", "comment"} to POST /api/v1/incidents/{key}/ack; a daemon
    without that route gets a 404 that says so, exit 1."""
    daemon = daemon_factory()
    _burst(daemon)
    (inc,) = _json(capsys, "incidents", "list", "--url", daemon.url, "-o", "json")  # type: ignore[misc]
    code = main(["incidents", "ack", inc["key"], "--by", "alice", "--url", daemon.url])
    if code == 0:  # the route exists (merged): the incident says who acknowledged it
        assert "acknowledged" in capsys.readouterr().out
    else:
        assert code == 1
        assert "POST /api/v1/incidents/{key}/ack" in capsys.readouterr().err


def test_version_and_usage_errors_exit_as_documented() -> None:
    version = subprocess.run(
        [sys.executable, "-m", "stormwatch.cli", "--version"], capture_output=True, text=True
    )
    assert version.returncode == 0 and version.stdout.startswith("stormwatch 0.")
    usage = subprocess.run(
        [sys.executable, "-m", "stormwatch.cli", "silence", "add", "a=b"],
        capture_output=True,
        text=True,
    )
    assert usage.returncode == 2 and "--comment" in usage.stderr
