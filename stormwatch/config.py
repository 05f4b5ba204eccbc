"""The daemon's configuration: one YAML file decoded into one Struct tree.

Precedence, lowest first: built-in defaults < the file (`--config`) < `STORMWATCH_*`
environment variables < command-line flags. The defaults are the embedded mode: state in
memory, HTTP on loopback, the default rules, incidents to `incidents.jsonl`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from correlate import EngineConfig
from ingest.auth import AuthConfig, Authenticator
from ingest.body import BodyLimits
from ingest.file_source import FileSourceConfig
from ingest.kafka_source import KafkaSourceConfig
from ingest.limits import RateLimitConfig
from ingest.normalize import NORMALIZERS, Normalizer
from ingest.normalize.mapping import load_mappings
from ingest.syslog_source import SyslogConfig
from sinks import FileSinkConfig, SinkConfig
from stormwatch.archive import ArchiveConfig
from stormwatch.defaults import DEFAULT_LISTEN
from stormwatch.errors import ConfigError, split_validation_message
from stormwatch.roles import PartitionConfig, Role
from stormwatch.routing import Route, Router
from stormwatch.wire import Duration, decode_hook, encode_hook

__all__ = [
    "DEFAULT_LISTEN",
    "Config",
    "IngestConfig",
    "OutboxConfig",
    "StateConfig",
    "check_secrets",
    "load_config",
    "redacted",
]


class IngestConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    max_body_bytes: int = 4 * 1024 * 1024
    """Larger request bodies get 413 before they are read whole (and after decompression)."""
    body_timeout: Duration = Duration(10)
    """A request body must arrive whole within this; slower or stalled ones get 408."""
    max_json_depth: int = 64
    """Deeper JSON nesting gets 400 before it is decoded."""
    auth: AuthConfig = AuthConfig()
    """Credentials per source and for the API (ingest/auth.py)."""
    rate_limit: RateLimitConfig = RateLimitConfig()
    """Token buckets per client address and per credential (ingest/limits.py)."""
    mappings: dict[str, dict[str, Any]] = {}
    """JSON from any tool, by config: each is served at POST /webhook/<name>. Checked by
    `load_mappings` (ingest/normalize/mapping.py), which names the mapping in errors."""
    mapping_files: list[str] = []
    """Files of more mappings ({name: mapping}), such as deploy/mappings/*.yaml."""
    syslog: SyslogConfig | None = None
    """Syslog over UDP and TCP, with log patterns (ingest/syslog_source.py)."""
    files: list[FileSourceConfig] = []
    """Log files to tail, each with its patterns (ingest/file_source.py)."""
    queue_capacity_batches: int = 1024
    """Requests waiting for the correlator; past it, senders get 429 + Retry-After."""
    queue_max_alerts: Annotated[int, msgspec.Meta(ge=1)] = 10_000
    """Alerts waiting for or in correlation (every source), and alerts of HTTP requests
    taken in and not yet answered; past it, 429 + Retry-After, over HTTP before the body
    is read. At the 15-50k alerts/s one process correlates, a wait under a second."""
    queue_max_bytes: Annotated[int, msgspec.Meta(ge=1)] = 64 * 1024 * 1024
    """Bytes of HTTP request bodies taken in and not yet answered (the Content-Length,
    checked before the body is read); past it, 429 + Retry-After."""
    max_batch_alerts: int = 1000
    """Alerts correlated in one engine call, so one call stays at a few milliseconds."""
    kafka: KafkaSourceConfig | None = None
    """Consume alerts from Kafka too (ingest/kafka_source.py)."""
    archive: ArchiveConfig | None = None
    """Write every accepted alert, as correlated, to a rotating JSONL file for
    `stormwatch replay` (stormwatch/archive.py)."""

    def load_mappings(self) -> dict[str, Normalizer]:
        """The mappings' normalisers by route name. Raises ConfigError."""
        return dict(load_mappings(self.mappings, self.mapping_files, set(NORMALIZERS)))

    @property
    def body_limits(self) -> BodyLimits:
        return BodyLimits(
            max_bytes=self.max_body_bytes, timeout=self.body_timeout, max_depth=self.max_json_depth
        )


class OutboxConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    capacity: int = 10_000
    """Incidents waiting per sink (an incident's events fold into one entry). Past it,
    new alerts are refused with 429 + Retry-After until the sink catches up; events of
    batches already taken in are still queued, so nothing acknowledged is lost."""
    retry_after: Duration = Duration(30)
    """The Retry-After told to senders while an outbox is full."""
    dead_letter_capacity: int = 10_000
    """Dead letters kept per sink; past it the oldest are dropped (and counted)."""


class StateConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """Where correlation state lives: `memory` (gone with the process) or `redis`
    (saved per batch before the batch is acknowledged; a restart resumes)."""

    backend: Literal["memory", "redis"] = "memory"
    url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = "stormwatch"


def _default_sinks() -> list[SinkConfig]:
    return [FileSinkConfig(name="jsonl", path="incidents.jsonl")]


class Config(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    role: Role = "all"
    """`all`: one process does everything, in memory between intake and correlation;
    `receiver` / `correlator`: the scale-out split over `partitioning` (stormwatch/roles.py)."""
    partitioning: PartitionConfig | None = None
    listen: str = DEFAULT_LISTEN
    rules: list[str] = []
    """Rule files or folders; empty means the default rules shipped with stormwatch."""
    rules_watch_interval: Duration = Duration(2)
    """How often to look for changed rule files and reload them; 0 turns it off."""
    state: StateConfig = StateConfig()
    ingest: IngestConfig = IngestConfig()
    outbox: OutboxConfig = OutboxConfig()
    correlate: EngineConfig = EngineConfig()
    sinks: list[SinkConfig] = msgspec.field(default_factory=_default_sinks)
    route: Route | None = None
    """Which sinks get which incident events (stormwatch/routing.py); none: all get all."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    tick_interval: Duration = Duration(1)
    shutdown_grace: Duration = Duration(10)
    """How long in-flight batches and deliveries get to finish on SIGTERM."""
    external_url: str = ""
    """Where people reach this daemon (as Alertmanager's --web.external-url); sinks link
    every ticket to `{external_url}/incidents/{key}`."""

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]") or "127.0.0.1", int(port)


def _check(config: Config, path: str) -> None:
    host, _, port = config.listen.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        msg = f"invalid listen address {config.listen!r}: expected HOST:PORT"
        raise ConfigError(msg, path=path, field="$.listen")
    if config.role != "all" and config.partitioning is None:
        msg = f"role {config.role!r} needs `partitioning` (bootstrap, topic, shard_key)"
        raise ConfigError(msg, path=path, field="$.partitioning")
    if config.role == "correlator" and config.state.backend != "redis":
        msg = "role 'correlator' keeps each partition's state in Redis: set state.backend: redis"
        raise ConfigError(msg, path=path, field="$.state.backend")
    try:
        Router(config.route, [s.name for s in config.sinks])
    except ConfigError as err:
        raise ConfigError(err.message, path=path, field=err.field) from err
    names = [s.name for s in config.sinks]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        msg = f"sink names must be unique: {', '.join(dupes)}"
        raise ConfigError(msg, path=path, field="$.sinks")


def _with_jsonl(sinks: list[SinkConfig], path: str) -> list[SinkConfig]:
    out = list(sinks)
    for i, s in enumerate(out):
        if isinstance(s, FileSinkConfig):
            out[i] = msgspec.structs.replace(s, path=path)
            return out
    return [*out, FileSinkConfig(name="jsonl", path=path)]


_SECRET_KEYS = (
    "routing_key",
    "api_key",
    "token",
    "password",
    "secret",
    "authorization",
    "webhook_url",
)


def redacted(config: Config) -> object:
    """The config as builtins with every secret replaced by "<secret>" (config check)."""

    def walk(node: object) -> object:
        if isinstance(node, dict):
            return {
                k: "<secret>"
                if v
                and any(s in k.lower() for s in _SECRET_KEYS)
                and not k.endswith(("_file", "_env", "_header"))
                else walk(v)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(msgspec.to_builtins(config, enc_hook=encode_hook))


def load_config(
    file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    *,
    listen: str | None = None,
    rules: list[str] | None = None,
    incidents_jsonl: str | None = None,
    log_level: str | None = None,
) -> Config:
    """Build the effective config. Raises ConfigError naming the file and `$.field`."""
    env = os.environ if env is None else env
    file = file or env.get("STORMWATCH_CONFIG") or None
    path = str(file) if file else ""
    if file:
        try:
            raw = Path(file).read_bytes()
        except OSError as err:
            msg = f"cannot read config file: {err.strerror}"
            raise ConfigError(msg, path=path) from err
        try:
            config = (
                msgspec.yaml.decode(raw or b"{}", type=Config, dec_hook=decode_hook)
                if raw.strip()
                else Config()
            )
        except msgspec.ValidationError as err:
            message, field = split_validation_message(str(err))
            raise ConfigError(message, path=path, field=field) from err
        except msgspec.DecodeError as err:
            raise ConfigError(f"not valid YAML: {err}", path=path) from err
    else:
        config = Config()
    overrides: dict[str, object] = {}
    for key, flag, env_name in (
        ("listen", listen, "STORMWATCH_LISTEN"),
        ("log_level", log_level, "STORMWATCH_LOG_LEVEL"),
        ("role", None, "STORMWATCH_ROLE"),
    ):
        value = flag if flag is not None else env.get(env_name)
        if value:
            overrides[key] = value
    instance = env.get("STORMWATCH_INSTANCE_ID")
    if instance and config.partitioning is not None:
        # One file for every replica of a StatefulSet: each takes its pod name.
        overrides["partitioning"] = msgspec.structs.replace(
            config.partitioning, instance_id=instance
        )
    rule_paths = (
        rules if rules else [p for p in env.get("STORMWATCH_RULES", "").split(os.pathsep) if p]
    )
    if rule_paths:
        overrides["rules"] = rule_paths
    jsonl = incidents_jsonl or env.get("STORMWATCH_INCIDENTS_JSONL")
    if jsonl:
        overrides["sinks"] = _with_jsonl(config.sinks, jsonl)
    if overrides:
        try:
            config = msgspec.convert(
                {
                    **msgspec.to_builtins(config, enc_hook=encode_hook),
                    **msgspec.to_builtins(overrides, enc_hook=encode_hook),
                },
                Config,
                dec_hook=decode_hook,
            )
        except msgspec.ValidationError as err:
            message, field = split_validation_message(str(err))
            raise ConfigError(message, path="(flags/env)", field=field) from err
    _check(config, path)
    try:  # the mapping files are part of the config: a bad one is a config error now
        config.ingest.load_mappings()
    except ConfigError as err:
        raise ConfigError(err.message, path=err.path or path, field=err.field) from err
    return config


def check_secrets(config: Config, path: str = "", env: Mapping[str, str] | None = None) -> None:
    """Read every secret the config names (`*_file`, `*_env`), as the daemon will at start,
    so `config check` reports a missing one. Raises ConfigError naming the key."""
    try:
        Authenticator(config.ingest.auth, env)
    except ConfigError as err:
        raise ConfigError(err.message, path=path, field=err.field) from err
