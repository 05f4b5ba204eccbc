"""`stormwatch config check`: everything `run` would refuse, found without starting it.

`run` builds the rules, the sinks (which read their `*_file` secrets) and the Kafka
source before it listens; a config that passes here passes there. Nothing is opened,
connected to or written: paths are looked at, secrets read, URLs parsed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import msgspec

from rules import collect_rules
from sinks import FileSinkConfig, SinkConfig, build_sink
from stormwatch.config import Config
from stormwatch.errors import ConfigError, RuleError, StormwatchError
from stormwatch.metrics import Metrics

__all__ = ["preflight"]

_WEB_SCHEMES = ("http", "https")
_REDIS_SCHEMES = ("redis", "rediss", "unix")


def preflight(
    config: Config, default_rules: str, *, path: str = "", allow_empty: bool = False
) -> list[StormwatchError]:
    """Every problem `run` would stop at, in the order it would meet them."""
    problems: list[StormwatchError] = []
    ruleset, rule_errors, _ = collect_rules(
        config.rules or [default_rules], allow_empty=allow_empty
    )
    problems.extend(rule_errors)
    part = config.partitioning
    if config.role != "all" and part is not None:
        from stormwatch.roles import check_shard_key

        problems.extend(_bootstrap(part.bootstrap, "$.partitioning.bootstrap", path))
        try:
            check_shard_key(ruleset, part.shard_key, config.correlate.inhibit)
        except RuleError as err:
            problems.append(err)
    problems.extend(_state(config, path))
    if config.ingest.kafka is not None:
        from ingest.kafka_source import KafkaSource

        problems.extend(_bootstrap(config.ingest.kafka.bootstrap, "$.ingest.kafka.bootstrap", path))
        try:
            KafkaSource(config.ingest.kafka, Metrics())
        except ValueError as err:
            problems.append(ConfigError(str(err), path=path, field="$.ingest.kafka.format"))
    for i, sink in enumerate(config.sinks):
        where = f"$.sinks[{i}]"
        try:
            build_sink(sink)  # reads the sink's secrets; opens nothing
        except ConfigError as err:
            problems.append(ConfigError(err.message, path=path, field=f"{where} ({err.field})"))
        problems.extend(_sink_urls(sink, where, path))
        if isinstance(sink, FileSinkConfig) and sink.path != "-":
            problems.extend(_writable(sink.path, f"{where}.path", path))
        bootstrap = getattr(sink, "bootstrap", None)
        if isinstance(bootstrap, str):
            problems.extend(_bootstrap(bootstrap, f"{where}.bootstrap", path))
    return problems


def _state(config: Config, path: str) -> Iterator[ConfigError]:
    if config.state.backend != "redis":
        return
    url = urlsplit(config.state.url)
    if url.scheme not in _REDIS_SCHEMES or (url.scheme != "unix" and not url.hostname):
        msg = f"not a Redis URL: {config.state.url!r} (redis://HOST:PORT/DB, rediss://, unix://)"
        yield ConfigError(msg, path=path, field="$.state.url")


def _sink_urls(sink: SinkConfig, where: str, path: str) -> Iterator[ConfigError]:
    for key, value in msgspec.structs.asdict(sink).items():
        if not key.endswith("url") or not isinstance(value, str):
            continue
        url = urlsplit(value.replace("{key}", "key"))
        try:
            port_ok = url.port is None or url.port > 0
        except ValueError:
            port_ok = False
        if url.scheme not in _WEB_SCHEMES or not url.hostname or not port_ok:
            msg = f"not an http(s) URL: {value!r}"
            yield ConfigError(msg, path=path, field=f"{where}.{key}")


def _writable(file: str, field: str, path: str) -> Iterator[ConfigError]:
    """The file, or the nearest folder that exists above it, must be writable."""
    target = Path(file)
    if target.is_dir():
        yield ConfigError(f"{file} is a folder, not a file", path=path, field=field)
        return
    if target.exists():
        probe = target
    else:
        probe = target.parent
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if not probe.is_dir():
            yield ConfigError(
                f"cannot write {file}: {probe} is not a folder", path=path, field=field
            )
            return
    if not os.access(probe, os.W_OK):
        yield ConfigError(f"cannot write {file}: {probe} is not writable", path=path, field=field)


def _bootstrap(value: str, field: str, path: str) -> Iterator[ConfigError]:
    for server in value.split(","):
        host, _, port = server.strip().rpartition(":")
        if not host or not port.isdigit():
            msg = f"bootstrap servers are HOST:PORT[,HOST:PORT...]; got {value!r}"
            yield ConfigError(msg, path=path, field=field)
            return
