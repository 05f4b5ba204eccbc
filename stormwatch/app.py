"""`App`: builds every component from a `Config` and runs them.

Start order (stop runs it backwards): sinks and their outbox drains, the correlator,
then HTTP. Stop follows uvicorn's order: stop accepting, let queued batches and sink
deliveries finish within `shutdown_grace`, then cancel.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Coroutine, Iterable
from importlib.resources import files
from typing import Any

import structlog
from aiohttp import web
from aiokafka.errors import KafkaError
from prometheus_client import disable_created_metrics

from correlate import Engine
from correlate.delta import StateDelta
from correlate.store import MemoryStore, Store
from correlate.suppress import Silence, active_silence
from correlate.views import wire_alert
from ingest import Intake, is_loopback
from ingest.kafka_source import KafkaSource
from ingest.limits import InflightBudget
from rules import RuleSet, load_rules, rule_files
from sinks.outbox import DeadLetter
from stormwatch.archive import AlertArchive
from stormwatch.compiled import compiled, stale
from stormwatch.config import Config
from stormwatch.control import Acknowledge, AddSilence, ExpireSilence, encode_control
from stormwatch.delivery import Delivery, merge_health
from stormwatch.errors import PayloadError, RuleError
from stormwatch.explain import explain
from stormwatch.metrics import Metrics
from stormwatch.partitions import PartitionedCorrelator
from stormwatch.pipeline import Pipeline
from stormwatch.receiver import Receiver
from stormwatch.roles import check_shard_key
from stormwatch.rulesource import log_rules_loaded
from stormwatch.silences import SilenceRequest, to_silence
from stormwatch.tasks import cancel_until_done
from stormwatch.views import AlertView
from stormwatch.web import build_web_app
from stormwatch.wire import Alert, Incident, IncidentEvent

__all__ = ["DEFAULT_RULES", "App", "serve"]

DEFAULT_RULES = str(files("rules") / "defaults")
LISTEN_BACKLOG = 2048
"""Connections the kernel queues before the daemon accepts them (aiohttp's default is
128; Linux caps it at net.core.somaxconn, 4096 on current kernels)."""
log = structlog.get_logger("stormwatch")


class App:
    """The daemon, built from config; `async with App(config):` runs it."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Callable[[], float] = time.time,
        store: Store | None = None,
        allow_empty_rules: bool = False,
    ) -> None:
        self.config = config
        self.allow_empty_rules = allow_empty_rules
        # `_created` series double /metrics for nothing a dashboard uses.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.core = "compiled" if compiled() else "interpreted"
        """Whether the modules setup.py compiles run compiled (stormwatch/compiled.py)."""
        self.metrics = Metrics(core=self.core)
        self.rule_paths = config.rules or [DEFAULT_RULES]
        self.ruleset: RuleSet = load_rules(self.rule_paths, allow_empty=allow_empty_rules)
        self._check_rules(self.ruleset)
        self.store: Store = store if store is not None else _build_store(config)
        self.shard = "0"
        """One shard until Kafka partitions split the state; keys are already per shard."""
        self.engine = Engine(self.ruleset, config.correlate)
        self.metrics.rules_loaded.set(len(self.ruleset))
        self.metrics.rules_reload_ts.set(clock())
        self.metrics.init_rules(r.name for r in self.ruleset.rules)
        self.delivery = Delivery(
            config,
            self.metrics,
            self.store,
            full_view=lambda key: self.engine.incident(key),
            rules=lambda: self.ruleset,
            clock=clock,
        )
        self.outbox = self.delivery.outbox
        self.sinks = self.delivery.sinks
        archive = config.ingest.archive
        self.archive = AlertArchive(archive) if archive is not None else None
        self.pipeline = Pipeline(
            self.engine,
            self._commit,
            self.metrics,
            capacity=config.ingest.queue_capacity_batches,
            max_queued_alerts=config.ingest.queue_max_alerts,
            max_batch_alerts=config.ingest.max_batch_alerts,
            tick_interval=config.tick_interval,
            clock=clock,
            archive=self.archive,
            heartbeats=self.store.heartbeats,
        )
        self.kafka_source = (
            KafkaSource(config.ingest.kafka, self.metrics) if config.ingest.kafka else None
        )
        self.intake = Intake(
            self.submit,
            self.metrics,
            limits=config.ingest.body_limits,
            auth=config.ingest.auth,
            rate_limit=config.ingest.rate_limit,
            mappings=config.ingest.load_mappings(),
            syslog=config.ingest.syslog,
            files=config.ingest.files,
            budget=InflightBudget(config.ingest.queue_max_alerts, config.ingest.queue_max_bytes),
            clock=self.pipeline.stamp,
        )
        self.http_source = self.intake.http
        self.correlator: PartitionedCorrelator | None = None
        self.receiver: Receiver | None = None
        self.broadcaster: Receiver | None = None
        """Partitioned mode: produces operators' actions to every partition (stormwatch/control.py)."""
        if config.role != "all":
            self._build_role(config)
        self._clock = clock
        self._tasks: list[asyncio.Task[None]] = []
        self._runner: web.AppRunner | None = None
        self.ready = False
        self.started_at = clock()
        self.last_reload_error = ""

    def _check_rules(self, ruleset: RuleSet) -> None:
        part = self.config.partitioning
        if self.config.role != "all" and part is not None:
            check_shard_key(ruleset, part.shard_key, self.config.correlate.inhibit)

    def _build_role(self, config: Config) -> None:
        """A receiver produces to the topic; a correlator owns one shard per partition."""
        part = config.partitioning
        assert part is not None  # config.py checks it
        if config.role == "receiver":
            self.receiver = self.broadcaster = Receiver(part)
            return
        self.broadcaster = Receiver(part)  # a correlator's silences and acks go out too
        from correlate.store.redis import RedisStore

        if not isinstance(self.store, RedisStore):
            msg = "role 'correlator' needs the Redis state store"
            raise TypeError(msg)
        self.correlator = PartitionedCorrelator(
            part,
            store=self.store,
            rules=lambda: self.ruleset,
            engine_config=config.correlate,
            delivery=self.delivery,
            metrics=self.metrics,
            watch=self._watch,
            max_batch_alerts=config.ingest.max_batch_alerts,
        )

    # -- wiring -------------------------------------------------------------------------

    async def submit(self, alerts: list[Alert]) -> None:
        """Take a batch in, unless a sink's outbox is full (then Overloaded: 429 +
        Retry-After; batches already taken in still reach every outbox)."""
        if self.receiver is not None:
            await self.receiver.submit(alerts)
            return
        if self.correlator is not None:
            # Not a 429 or 503: retrying here can never succeed, and a 4xx other than
            # 429 makes Prometheus and Grafana log the error and stop retrying.
            msg = "this process is a correlator: it takes alerts from its topic only; send them to a receiver"
            raise PayloadError(msg, reason="misdirected")
        self.delivery.check_capacity()
        await self.pipeline.submit(alerts)

    async def _commit(self, events: list[IncidentEvent], delta: StateDelta) -> None:
        """Store a batch's state and queue its events on every sink's outbox, together.

        With Redis both go in one atomic step (correlate/store/redis.py); in memory the order is outbox, then state.
        An outbox never refuses here: backpressure happens before a batch is taken in
        (`submit`), so nothing acknowledged is dropped or dead-lettered.
        """
        routed, appends = await self.delivery.prepare(events)
        await self.store.commit(self.shard, delta, appends)
        self.delivery.committed(events, routed)

    async def acknowledge(
        self, key: str, by: str, source: str = "api", *, comment: str = ""
    ) -> Incident | None:
        """Acknowledge an open incident; the sinks that have it are told (PagerDuty and
        Opsgenie acknowledge, tickets get a note), except `source` when the
        acknowledgement came from that sink's webhook. None if the incident is unknown;
        a resolved or already acknowledged one is returned unchanged. Partitioned: sent
        to every partition, applied by the shard that holds it; returns the incident as
        this process sees it before (None if another correlator holds it)."""
        if self.broadcaster is not None:
            await self.broadcaster.broadcast(
                encode_control(Acknowledge(key=key, by=by, source=source, comment=comment))
            )
            log.info("incident_acknowledgement_sent", incident_key=key, by=by, source=source)
            return self.incident(key)
        state = self.engine.incident_state(key)
        if state is None or state.status != "open" or state.acknowledged_at is not None:
            return self.engine.incident(key)
        # Before the event is queued: the sink it came from is not told again.
        await self.delivery.mark_acknowledged(key, source)
        effects = await self.pipeline.act(lambda engine, now: engine.acknowledge(key, by, now))
        for e in effects.events if effects is not None else []:
            log.info(
                "incident_acknowledged",
                incident_key=key,
                rule=e.incident.rule,
                severity=e.incident.severity,
                by=by,
                source=source,
                comment=comment,
            )
        return self.engine.incident(key)

    async def replay_dead_letters(self, sink: str) -> int:
        """Put a sink's dead letters back: each incident's latest state, once."""
        return sum([await d.replay(sink) for d in self.deliveries()])

    def deliveries(self) -> list[Delivery]:
        """Every outbox this process drains: a correlator has one per shard it holds."""
        if self.correlator is not None and self.correlator.shards:
            return [s.delivery for s in self.correlator.shards.values()]
        return [self.delivery]  # a correlator holding no shard yet: the sinks, all empty

    async def dead_letters(self, sink: str) -> list[DeadLetter]:
        return [d for dl in self.deliveries() for d in await dl.outbox.dead_letters(sink)]

    def dropped_dead_letters(self, sink: str) -> int:
        return sum(d.outbox.dropped.get(sink, 0) for d in self.deliveries())

    async def sink_health(self) -> list[dict[str, object]]:
        """Per sink, over every outbox held (stormwatch/delivery.py: `Delivery.health`)."""
        return merge_health([await d.health() for d in self.deliveries()])

    async def reload_rules(self) -> int:
        """Load the rule files again; on any error keep the old rules and raise RuleError."""
        try:
            ruleset = await asyncio.to_thread(
                load_rules, self.rule_paths, allow_empty=self.allow_empty_rules
            )
            self._check_rules(ruleset)
        except RuleError as err:
            self.metrics.rules_reloads.labels("failed").inc()
            self.metrics.rules_reload_ok.set(0)
            log.error("rules_reload_failed", error=str(err))
            self.last_reload_error = str(err)
            raise
        self.last_reload_error = ""
        async with self.pipeline.lock:
            self.engine.reload(ruleset)
            self.ruleset = ruleset
        if self.correlator is not None:
            await self.correlator.reload(ruleset)
        self.metrics.rules_reloads.labels("ok").inc()
        self.metrics.rules_reload_ok.set(1)
        self.metrics.rules_reload_ts.set(self._clock())
        self.metrics.rules_loaded.set(len(ruleset))
        self.metrics.init_rules(r.name for r in ruleset.rules)
        log_rules_loaded(ruleset, self.rule_paths, DEFAULT_RULES)
        return len(ruleset)

    async def add_silence(self, request: SilenceRequest) -> Silence:
        """Validate and add a silence (raises msgspec.ValidationError or MatcherError)."""
        silence = to_silence(request, self._clock())
        silence.compiled()  # a bad matcher is the client's mistake: raise before queueing
        if self.broadcaster is not None:
            await self.broadcaster.broadcast(encode_control(AddSilence(silence=silence)))
        else:
            await self.pipeline.act(lambda engine, now: engine.add_silence(silence, now))
        log.info(
            "silence_added",
            silence=silence.id,
            matchers=silence.matchers,
            ends_at=silence.ends_at,
            created_by=silence.created_by,
        )
        return silence

    async def watch_rule_files(self, interval: float = 2.0) -> None:
        """Reload when a rule file changes (mtime, size or the set of files)."""
        seen = _rule_files_stamp(self.rule_paths)
        while True:
            await asyncio.sleep(interval)
            stamp = _rule_files_stamp(self.rule_paths)
            if stamp != seen:
                seen = stamp
                with contextlib.suppress(RuleError):
                    await self.reload_rules()

    async def expire_silence(self, silence_id: str) -> bool:
        """End a silence now; the alerts it held feed the rules. False if unknown
        (a receiver, or a correlator holding no shard, knows no silences: it sends any
        id on, and says True)."""
        if self.broadcaster is not None:
            # Every shard holds every silence: one shard held is enough to know.
            knows = self.correlator is not None and bool(self.correlator.shards)
            if knows and not any(s.id == silence_id for s in self.silences()):
                return False
            await self.broadcaster.broadcast(encode_control(ExpireSilence(id=silence_id)))
            log.info("silence_expired", silence=silence_id)
            return True
        effects = await self.pipeline.act(
            lambda engine, now: engine.expire_silence(silence_id, now)
        )
        if effects is not None:
            log.info("silence_expired", silence=silence_id)
        return effects is not None

    # -- what people and tools read: the only doors into the engine's state ---------------
    # (the status page, Alertmanager's API and the CLI use these and nothing deeper)

    def now(self) -> float:
        return self._clock()

    @property
    def partitioned(self) -> bool:
        """Receivers and correlators: actions go through the topic."""
        return self.broadcaster is not None

    def delivery_of(self, key: str) -> Delivery:
        """The delivery (outboxes, remote records) of the shard holding incident `key`."""
        if self.correlator is not None:
            for shard in self.correlator.shards.values():
                if shard.engine.incident_state(key) is not None:
                    return shard.delivery
        return self.delivery

    def _engines(self) -> list[Engine]:
        if self.correlator is not None:
            return self.correlator.engines()
        return [self.engine]

    def incidents(self) -> list[Incident]:
        return [i for e in self._engines() for i in e.incidents()]

    def incident(self, key: str) -> Incident | None:
        for e in self._engines():
            inc = e.incident(key)
            if inc is not None:
                return inc
        return None

    def explain(self, key: str) -> dict[str, Any] | None:
        for e in self._engines():
            if e.incident_state(key) is not None:
                return explain(e, self.ruleset, key)
        return None

    def silences(self) -> list[Silence]:
        """Every shard holds every silence (each applies it at its own place in its
        partition): listed once per id, the latest version."""
        found: dict[str, Silence] = {}
        for e in self._engines():
            for s in e.state.silences:
                found[s.id] = s
        return list(found.values())

    def alerts(self) -> list[AlertView]:
        """Every alert tracked, with the silences and inhibitions that mute it now."""
        now = self._clock()
        out = []
        for engine in self._engines():
            out.extend(self._alerts_of(engine, now))
        return out

    def _alerts_of(self, engine: Engine, now: float) -> list[AlertView]:
        silences = [(s, s.compiled()) for s in engine.state.silences]
        out = []
        for t in list(engine.state.tracked.values()):
            held = (engine.incident_state(k) for k in t.incidents)
            alert = wire_alert(t)  # built from the compact copy (correlate/state.py)
            silenced = active_silence(silences, alert.labels, now)
            out.append(
                AlertView(
                    alert=alert,
                    status=t.status,
                    first_seen=t.first_seen,
                    last_seen=t.last_seen,
                    ends_at=t.ends_at,
                    duplicates=t.duplicates,
                    silenced_by=[silenced] if silenced else [],
                    inhibited_by=sorted({i.inhibited_by for i in held if i and i.inhibited_by}),
                    incidents=list(t.incidents),
                )
            )
        return out

    def drain_alive(self, sink: str) -> bool:
        return any(d.drain_alive(sink) for d in self.deliveries())

    def routed_sinks(self, incident: Incident) -> list[str]:
        """The sinks the routing tree sends this incident's events to."""
        event = IncidentEvent(event="opened", at=0.0, reason="", sequence=0, incident=incident)
        return sorted(self.delivery.dispatcher.router.sinks_for(event))

    # -- lifecycle ------------------------------------------------------------------------

    def _watch(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=name)

        def crashed(t: asyncio.Task[None]) -> None:
            if not t.cancelled() and t.exception() is not None:
                log.error("task_crashed", task=name, error=repr(t.exception()))

        task.add_done_callback(crashed)
        self._tasks.append(task)
        return task

    async def start(self) -> None:
        if self.config.role == "all":
            await self._start_correlating()
        elif self.correlator is not None:
            self._watch(self.correlator.run(), "partitions")
            self._watch(self._start_broadcaster(), "control-producer")
        elif self.receiver is not None:
            await self.receiver.start()
            self._watch(self.receiver.run_ticks(), "ticks")
            if self.kafka_source is not None:
                self._watch(self.kafka_source.run(self.submit), "kafka-source")
        await self._start_serving()

    async def _start_broadcaster(self) -> None:
        """A correlator's producer of actions: retried until the broker answers (the
        actions answer 503 meanwhile), never a reason not to start."""
        assert self.broadcaster is not None
        while True:
            try:
                await self.broadcaster.start()
                return
            except (KafkaError, OSError) as err:
                log.warning("control_producer_failed", error=str(err), retry_in_s=5)
                await asyncio.sleep(5)

    async def _start_correlating(self) -> None:
        """The single process: its one shard, the drains, the correlator, Kafka in."""
        state = await self.store.load(self.shard)
        discarded = getattr(self.store, "discarded_version", None)
        if discarded is not None:
            log.warning(
                "state_discarded", shard=self.shard, version=discarded, reason="older format"
            )
        if state is not None:
            # Windows, open incidents and dedup state carry over: no flood, no forgetting.
            self.engine = Engine(self.ruleset, self.config.correlate, state)
            self.pipeline.engine = self.engine
            # Stamps stay after the restored clock, even if this host's clock is behind.
            self.pipeline.stamp.last = max(self.pipeline.stamp.last, state.clock)
            log.info(
                "state_restored",
                shard=self.shard,
                incidents=len(state.incidents),
                alerts=len(state.tracked),
            )
        self.delivery.start(self.engine.open_incidents(), self._watch)
        self._watch(self.pipeline.run(), "correlator")
        if self.kafka_source is not None:
            self._watch(self.kafka_source.run(self.submit), "kafka-source")

    async def _start_serving(self) -> None:
        if self.config.rules_watch_interval > 0:
            self._watch(self.watch_rule_files(self.config.rules_watch_interval), "rules-watch")
        log_rules_loaded(self.ruleset, self.rule_paths, DEFAULT_RULES)
        for source in self.intake.background if self.correlator is None else ():
            task = self._watch(source.run(self.submit), f"source:{source.name}")
            await self.intake.wait_listening(source, task)
        self._runner = web.AppRunner(
            build_web_app(self),
            access_log=None,
            handle_signals=False,
            **self.intake.server_options,  # type: ignore[arg-type]
        )
        await self._runner.setup()
        host, port = self.config.host_port
        # A crowd of senders connecting at once waits in the accept queue and is refused
        # with a quick 429 there, rather than having SYNs dropped and retried seconds later.
        site = web.TCPSite(self._runner, host, port, reuse_address=True, backlog=LISTEN_BACKLOG)
        await site.start()
        self.ready = True
        open_routes = self.intake.unprotected_routes()
        if open_routes and not is_loopback(host):
            log.warning("routes_unauthenticated", listen=self.config.listen, routes=open_routes)
        log.info(
            "daemon_started",
            role=self.config.role,
            listen=self.config.listen,
            rules=len(self.ruleset),
            sinks=list(self.sinks),
            state=self.config.state.backend,
            core=self.core,
        )
        edited = stale()
        if edited:
            log.warning("core_stale", edited=edited, rebuild="pip install -e .")

    async def stop(self) -> None:
        self.ready = False
        self.pipeline.close()
        grace = self.config.shutdown_grace
        if self._runner is not None:
            await self._runner.shutdown()
        started = time.monotonic()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await self.pipeline.drain()
        # Let each live drain empty its outbox within what is left of the grace period.
        left = max(0.0, grace - (time.monotonic() - started))
        if self.correlator is not None:
            await self.correlator.settle(left)
        else:
            await self.delivery.settle(left)
        await cancel_until_done(self._tasks)
        if self._runner is not None:
            await self._runner.cleanup()
        if self.broadcaster is not None:
            await self.broadcaster.stop()
        if self.config.role == "all":
            await self.pipeline.save()
        if self.archive is not None:
            self.archive.close()
        log.info("daemon_stopped", undelivered=await self.delivery.close())

    async def __aenter__(self) -> App:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def serve(app: App, signals: Iterable[signal.Signals] = ()) -> None:
    """Run until one of `signals`; SIGHUP reloads the rules. A second signal forces exit."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in signals:
        loop.add_signal_handler(sig, _on_stop, stop)

    reloads: set[asyncio.Task[None]] = set()

    def reload() -> None:
        async def run() -> None:
            with contextlib.suppress(RuleError):  # logged and counted by reload_rules
                await app.reload_rules()

        task = asyncio.ensure_future(run())
        reloads.add(task)  # keep a reference until it is done
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, reload)
    async with app:
        await stop.wait()
        log.info("daemon_stopping", grace_s=float(app.config.shutdown_grace))


def _on_stop(stop: asyncio.Event) -> None:
    if stop.is_set():
        raise SystemExit(1)
    stop.set()


def _build_store(config: Config) -> Store:
    if config.state.backend == "redis":
        from correlate.store.redis import RedisStore

        return RedisStore(config.state.url, prefix=config.state.key_prefix)
    return MemoryStore()


def _rule_files_stamp(paths: list[str]) -> tuple[tuple[str, float, int], ...]:
    out = []
    for f in rule_files(paths):
        try:
            st = f.stat()
        except OSError:
            continue
        out.append((str(f), st.st_mtime, st.st_size))
    return tuple(out)
