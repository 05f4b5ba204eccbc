"""Syslog over UDP and TCP and tailed files, on real sockets and files: framing,
backpressure, drops counted, rotation followed, nothing lost."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ingest.file_source import FileSource, FileSourceConfig
from ingest.syslog_source import SyslogConfig, SyslogSource
from stormwatch.errors import Overloaded
from stormwatch.metrics import Metrics
from stormwatch.wire import Alert, decode_hook

PATTERNS = [
    {
        "alertname": "SSHLoginFailed",
        "program": "sshd",
        "regex": r"Failed password for (?P<user>\S+) from (?P<src_ip>\S+) port (?P<port>\d+)",
    }
]


def failed(n: int, host: str = "web1") -> bytes:
    return f"<38>Aug  9 06:07:46 {host} sshd[1]: Failed password for u{n} from 10.0.0.1 port {n}".encode()


class Pipeline:
    """A submit that records, and refuses (Overloaded) while `full` is set."""

    def __init__(self) -> None:
        self.alerts: list[Alert] = []
        self.full = False
        self.refusals = 0

    async def __call__(self, alerts: list[Alert]) -> None:
        if self.full:
            self.refusals += 1
            raise Overloaded(retry_after_s=0.01)
        self.alerts.extend(alerts)


async def until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def lines_counted(metrics: Metrics, source: str, outcome: str) -> float:
    value = metrics.registry.get_sample_value(
        "stormwatch_log_lines_total", {"source": source, "outcome": outcome}
    )
    return value or 0.0


async def running(
    source: Any, submit: Pipeline, ready: Callable[[], Awaitable[Any]]
) -> AsyncIterator[None]:
    task = asyncio.create_task(source.run(submit))
    await asyncio.wait_for(ready(), 10)
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
async def syslog() -> AsyncIterator[tuple[SyslogSource, Pipeline, Metrics]]:
    config = msgspec.convert(
        {
            "udp": "127.0.0.1:0",
            "tcp": "127.0.0.1:0",
            "patterns": PATTERNS,
            "max_line_bytes": 256,
            "max_pending_alerts": 5,
        },
        SyslogConfig,
        dec_hook=decode_hook,
    )
    metrics, pipeline = Metrics(), Pipeline()
    source = SyslogSource(config, metrics)
    async for _ in running(source, pipeline, source.listening.wait):
        yield source, pipeline, metrics


async def test_udp_datagrams_become_alerts(syslog: Any) -> None:
    source, pipeline, metrics = syslog
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for n in range(3):
            s.sendto(failed(n), source.udp_address)
        s.sendto(b"<13>Aug  9 06:07:46 web1 cron[2]: nothing to see", source.udp_address)
        s.sendto(
            b"<13>1 - web2 sshd - - - Failed password for \xff\x00x from 10.0.0.9 port 9",
            source.udp_address,
        )
    await until(lambda: len(pipeline.alerts) == 4, "four alerts")
    assert {a.labels["user"] for a in pipeline.alerts} == {"u0", "u1", "u2", "\ufffd\ufffdx"}
    assert all(a.source == "syslog" for a in pipeline.alerts)
    await until(lambda: lines_counted(metrics, "syslog", "unmatched") == 1, "the unmatched line")


async def test_udp_drops_when_the_pipeline_has_no_room_and_counts_them(syslog: Any) -> None:
    source, pipeline, metrics = syslog
    pipeline.full = True
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for n in range(20):
            s.sendto(failed(n), source.udp_address)
    await until(lambda: lines_counted(metrics, "syslog", "matched") == 20, "20 lines read")
    dropped = lines_counted(metrics, "syslog", "dropped")
    assert dropped > 0
    pipeline.full = False
    await until(lambda: len(pipeline.alerts) + dropped == 20, "the rest delivered")
    assert len(pipeline.alerts) <= 1 + 5  # one in flight, max_pending_alerts waiting


async def test_tcp_octet_counted_and_newline_framed_in_one_connection(syslog: Any) -> None:
    source, pipeline, metrics = syslog
    one, two = failed(1), failed(2)
    stream = b"%d %s" % (len(one), one) + two + b"\n" + b"%d %s" % (len(failed(3)), failed(3))
    long = (
        b"<38>Aug  9 06:07:46 web1 sshd[1]: Failed password for longuser from 10.0.0.1 port 7 "
        + b"x" * 500
        + b"\n"
    )
    _, writer = await asyncio.open_connection(*source.tcp_address)
    writer.write(stream + b"\n" + long)
    await writer.drain()
    writer.close()
    await until(lambda: len(pipeline.alerts) == 4, "four alerts")
    assert [a.labels["user"] for a in pipeline.alerts] == ["u1", "u2", "u3", "longuser"]
    truncated = metrics.registry.get_sample_value(
        "stormwatch_log_lines_truncated_total", {"source": "syslog"}
    )
    assert truncated == 1


async def test_tcp_stops_reading_while_the_pipeline_is_full_and_loses_nothing(syslog: Any) -> None:
    source, pipeline, metrics = syslog
    n = 20_000
    payload = b"".join(failed(i) + b"\n" for i in range(n))
    pipeline.full = True
    _, writer = await asyncio.open_connection(*source.tcp_address)
    writer.write(payload)
    sending = asyncio.ensure_future(writer.drain())
    await until(lambda: pipeline.refusals >= 5, "the source retrying a full pipeline")
    read_while_full = lines_counted(metrics, "syslog", "matched")
    assert 0 < read_while_full < n  # one read's worth, then no more reading
    await until(lambda: pipeline.refusals >= 10, "more retries")
    assert lines_counted(metrics, "syslog", "matched") == read_while_full
    pipeline.full = False
    await until(lambda: len(pipeline.alerts) == n, f"all {n} alerts")
    await sending
    writer.close()
    assert len({a.labels["port"] for a in pipeline.alerts}) == n


def _file_source(path: Path, metrics: Metrics, **extra: Any) -> FileSource:
    config = msgspec.convert(
        {"path": str(path), "patterns": PATTERNS, "poll_interval": "20ms", **extra},
        FileSourceConfig,
        dec_hook=decode_hook,
    )
    return FileSource(config, metrics)


def append(path: Path, *lines: bytes, end: bytes = b"\n") -> None:
    with path.open("ab") as f:
        f.write(b"".join(line + end for line in lines))


async def test_a_tailed_file_from_its_end_through_rotation_and_truncation(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    append(log, failed(0))  # already there at start: not news
    metrics, pipeline = Metrics(), Pipeline()
    source = _file_source(log, metrics)
    async for _ in running(source, pipeline, source.opened.wait):
        append(log, failed(1), b"Aug  9 06:07:46 web1 cron[2]: unrelated")
        append(log, failed(2)[:30], end=b"")  # half a line: waits for the rest
        await until(lambda: len(pipeline.alerts) == 1, "the first alert")
        append(log, failed(2)[30:])
        await until(lambda: len(pipeline.alerts) == 2, "the completed line")
        # logrotate: rename, the writer's last line lands in the old file, a new file starts.
        os.rename(log, tmp_path / "auth.log.1")
        append(tmp_path / "auth.log.1", failed(3))
        append(log, failed(4))
        await until(lambda: len(pipeline.alerts) == 4, "lines of both files")
        # copytruncate: the file is cut to nothing and written again.
        append(log, failed(5))
        await until(lambda: len(pipeline.alerts) == 5, "the line before truncation")
        with log.open("r+b") as f:
            f.truncate(0)
        append(log, failed(6))
        await until(lambda: len(pipeline.alerts) == 6, "the line after truncation")
    assert [a.labels["user"] for a in pipeline.alerts] == ["u1", "u2", "u3", "u4", "u5", "u6"]
    assert all(a.annotations["log_file"] == str(log) for a in pipeline.alerts)
    assert lines_counted(metrics, "file", "unmatched") == 1


async def test_a_file_that_appears_later_is_read_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "late.log"
    metrics, pipeline = Metrics(), Pipeline()
    source = _file_source(log, metrics)
    async for _ in running(source, pipeline, source.missing.wait):
        append(log, failed(1), failed(2))
        await until(lambda: len(pipeline.alerts) == 2, "both lines of the new file")


async def test_from_beginning_and_backpressure_on_a_file(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    append(log, *(failed(i) for i in range(3000)))
    metrics, pipeline = Metrics(), Pipeline()
    pipeline.full = True
    source = _file_source(log, metrics, from_beginning=True)
    async for _ in running(source, pipeline, source.opened.wait):
        await until(lambda: pipeline.refusals >= 5, "retries while full")
        assert lines_counted(metrics, "file", "matched") < 3000  # not read ahead into memory
        pipeline.full = False
        await until(lambda: len(pipeline.alerts) == 3000, "every line")
