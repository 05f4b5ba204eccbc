"""Shared by the e2e tests that drive real tools: finding binaries, posting alerts,
running a command with a deadline."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tests.conftest import Daemon, missing_service


def require_binary(name: str, package: str) -> str:
    """The path of `name`, or fail (CI=true) / skip naming the Debian package to install."""
    path = shutil.which(name)
    if path is None:
        missing_service(f"{name} not found: apt-get install -y {package} (.ci/run does)")
        raise AssertionError("unreachable")  # missing_service fails or skips
    return path


def iso_now(offset_s: float = 0.0) -> str:
    return datetime.fromtimestamp(time.time() + offset_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def post_alerts(daemon: Daemon, alerts: list[dict[str, Any]]) -> None:
    status, body, _ = daemon.post("/api/v2/alerts", json.dumps(alerts).encode())
    assert status == 200, body


def get_json(daemon: Daemon, path: str) -> Any:
    status, body = daemon.get(path)
    assert status == 200, (path, status, body)
    return json.loads(body)


def run(args: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.2) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def burst(n: int = 5, service: str = "checkout") -> list[dict[str, Any]]:
    """What the README's worked example posts: n warnings of one service, starting now
    (five match the shipped `service-alert-burst` rule)."""
    return [
        {
            "labels": {"alertname": f"HighErrorRate{i}", "service": service, "severity": "warning"},
            "annotations": {"summary": "5xx ratio above 5%"},
            "startsAt": iso_now(),
        }
        for i in range(1, n + 1)
    ]
