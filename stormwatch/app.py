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
from prometheus_client import disable_created_metrics

from correlate import Engine
from correlate.delta import StateDelta
from correlate.store import MemoryStore, Store
from correlate.suppress import Silence
from ingest import Intake, is_loopback
from ingest.kafka_source import KafkaSource
from ingest.ratelimit import LogLimiter
from rules import RuleSet, load_rules, rule_files
from sinks import MemoryOutbox, OutboxDrain, OutboxEntry, Sink, build_sink
from sinks.redis_outbox import RedisOutbox
from stormwatch.config import Config
from stormwatch.errors import RuleError
from stormwatch.metrics import Metrics
from stormwatch.pipeline import Pipeline
from stormwatch.routing import Router
from stormwatch.silences import SilenceRequest, to_silence
from stormwatch.web import build_web_app
from stormwatch.wire import Incident, IncidentEvent

__all__ = ["DEFAULT_RULES", "App", "serve"]

DEFAULT_RULES = str(files("rules") / "defaults")
log = structlog.get_logger("stormwatch")


class App:
    """The daemon, built from config; `async with App(config):` runs it."""

    def __init__(
        self, config: Config, *, clock: Callable[[], float] = time.time, store: Store | None = None
    ) -> None:
        self.config = config
        # `_created` series double /metrics for nothing a dashboard uses.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.metrics = Metrics()
        self.rule_paths = config.rules or [DEFAULT_RULES]
        self.ruleset: RuleSet = load_rules(self.rule_paths)
        self.store: Store = store if store is not None else _build_store(config)
        self.shard = "0"
        """One shard until Kafka partitions split the state; keys are already per shard."""
        self.engine = Engine(self.ruleset, config.correlate)
        self.metrics.rules_loaded.set(len(self.ruleset))
        self.metrics.rules_reload_ts.set(clock())
        self.metrics.init_rules(r.name for r in self.ruleset.rules)
        self.outbox: MemoryOutbox | RedisOutbox = _build_outbox(config, self.store)
        self.router = Router(config.route, [sc.name for sc in config.sinks])
        self.sinks: dict[str, Sink] = {}
        for sc in config.sinks:
            self.metrics.init_sink(sc.name)
            self.sinks[sc.name] = build_sink(sc, self.metrics)
        self.pipeline = Pipeline(
            self.engine,
            self._commit,
            self.metrics,
            capacity=config.ingest.queue_capacity_batches,
            max_batch_alerts=config.ingest.max_batch_alerts,
            tick_interval=config.tick_interval,
            clock=clock,
        )
        self.kafka_source = (
            KafkaSource(config.ingest.kafka, self.metrics) if config.ingest.kafka else None
        )
        self.intake = Intake(
            self.pipeline.submit,
            self.metrics,
            limits=config.ingest.body_limits,
            auth=config.ingest.auth,
            rate_limit=config.ingest.rate_limit,
            mappings=config.ingest.load_mappings(),
            syslog=config.ingest.syslog,
            files=config.ingest.files,
            clock=clock,
        )
        self.http_source = self.intake.http
        self._clock = clock
        self._drains: dict[str, tuple[OutboxDrain, asyncio.Task[None]]] = {}
        self._full_log = LogLimiter()
        self._tasks: list[asyncio.Task[None]] = []
        self._runner: web.AppRunner | None = None
        self.ready = False

    # -- wiring -------------------------------------------------------------------------

    async def _commit(self, events: list[IncidentEvent], delta: StateDelta) -> None:
        """Store a batch's state and queue its events on every sink's outbox, together.

        With Redis both go in one MULTI/EXEC; in memory the order is outbox, then state.
        A sink whose outbox is full (its receiver down for long) must not stop ingestion
        for every other sink: its new events go to its dead letters, counted and logged,
        from where `POST /api/v1/deadletters/{sink}/replay` puts them back.
        """
        appends: dict[str, list[bytes]] = {}
        caps: dict[str, int] = {}
        routed: dict[str, list[IncidentEvent]] = {name: [] for name in self.sinks}
        for event in events:
            for name in self.router.sinks_for(event):
                routed[name].append(event)
        for name, for_sink in routed.items():
            entries = [OutboxEntry.new(e) for e in for_sink]
            if not entries:
                continue
            full = await self.outbox.size(name) + len(entries) > self.outbox.capacity
            if full:
                self._outbox_full(name, len(entries))
            if isinstance(self.outbox, RedisOutbox):
                if full:
                    key = self.outbox.dead_key(name)
                    appends[key] = [
                        self.outbox.encode_dead(e, "outbox_full", "outbox full") for e in entries
                    ]
                    caps[key] = self.outbox.dead_letter_capacity
                else:
                    appends[self.outbox.list_key(name)] = [self.outbox.encode(e) for e in entries]
            elif full:
                await self.outbox.bury(name, entries, "outbox_full", "outbox full")
            else:
                await self.outbox.put(name, entries)
        await self.store.save(self.shard, delta, appends, caps)
        for name in self.sinks:
            if events and name in self._drains:
                self._drains[name][0].notify()

    def _outbox_full(self, sink: str, n: int) -> None:
        self.metrics.dead_letters.labels(sink, "outbox_full").inc(n)
        allowed, suppressed = self._full_log.allow(sink)
        if allowed:
            log.error("outbox_full", sink=sink, dead_lettered=n, suppressed=suppressed)

    async def replay_dead_letters(self, sink: str) -> int:
        """Put a sink's dead letters back on its outbox, oldest first; returns how many."""
        letters = await self.outbox.take_dead_letters(sink)
        room = self.outbox.capacity - await self.outbox.size(sink)
        back, keep = letters[:room], letters[room:]
        await self.outbox.put(sink, [d.entry for d in back])
        for d in keep:  # back where they were, oldest first
            await self.outbox.bury(sink, [d.entry], d.reason, d.error)
        if sink in self._drains:
            self._drains[sink][0].notify()
        log.info("dead_letters_replayed", sink=sink, replayed=len(back), kept=len(keep))
        return len(back)

    async def reload_rules(self) -> int:
        """Load the rule files again; on any error keep the old rules and raise RuleError."""
        try:
            ruleset = await asyncio.to_thread(load_rules, self.rule_paths)
        except RuleError as err:
            self.metrics.rules_reloads.labels("failed").inc()
            self.metrics.rules_reload_ok.set(0)
            log.error("rules_reload_failed", error=str(err))
            raise
        async with self.pipeline.lock:
            self.engine.reload(ruleset)
            self.ruleset = ruleset
        self.metrics.rules_reloads.labels("ok").inc()
        self.metrics.rules_reload_ok.set(1)
        self.metrics.rules_reload_ts.set(self._clock())
        self.metrics.rules_loaded.set(len(ruleset))
        self.metrics.init_rules(r.name for r in ruleset.rules)
        log.info("rules_loaded", rules=len(ruleset), paths=self.rule_paths)
        return len(ruleset)

    def add_silence(self, request: SilenceRequest) -> Silence:
        """Validate and add a silence (raises msgspec.ValidationError or MatcherError)."""
        silence = to_silence(request, self._clock())
        self.engine.add_silence(silence)
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

    def incidents(self) -> list[Incident]:
        views = (self.engine.incident(k) for k in list(self.engine.state.incidents))
        return [v for v in views if v is not None]

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
        state = await self.store.load(self.shard)
        if state is not None:
            # Windows, open incidents and dedup state carry over: no flood, no forgetting.
            self.engine = Engine(self.ruleset, self.config.correlate, state)
            self.pipeline.engine = self.engine
            log.info(
                "state_restored",
                shard=self.shard,
                incidents=len(state.incidents),
                alerts=len(state.tracked),
            )
        for name, sink in self.sinks.items():
            drain = OutboxDrain(self.outbox, sink, self.metrics)
            self._drains[name] = (drain, self._watch(drain.run(), f"drain:{name}"))
        self._watch(self.pipeline.run(), "correlator")
        if self.kafka_source is not None:
            self._watch(self.kafka_source.run(self.pipeline.submit), "kafka-source")
        if self.config.rules_watch_interval > 0:
            self._watch(self.watch_rule_files(self.config.rules_watch_interval), "rules-watch")
        for source in self.intake.background:
            task = self._watch(source.run(self.pipeline.submit), f"source:{source.name}")
            await self.intake.wait_listening(source, task)
        self._runner = web.AppRunner(
            build_web_app(self),
            access_log=None,
            handle_signals=False,
            **self.intake.server_options,  # type: ignore[arg-type]
        )
        await self._runner.setup()
        host, port = self.config.host_port
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await site.start()
        self.ready = True
        open_routes = self.intake.unprotected_routes()
        if open_routes and not is_loopback(host):
            log.warning("routes_unauthenticated", listen=self.config.listen, routes=open_routes)
        log.info(
            "daemon_started",
            listen=self.config.listen,
            rules=len(self.ruleset),
            sinks=list(self.sinks),
            state=self.config.state.backend,
        )

    async def stop(self) -> None:
        self.ready = False
        self.pipeline.close()
        grace = self.config.shutdown_grace
        if self._runner is not None:
            await self._runner.shutdown()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await self.pipeline.drain()
                for name in self.sinks:
                    # Let each live drain empty its outbox within the grace period.
                    _, task = self._drains[name]
                    while await self.outbox.size(name) and not task.done():
                        await asyncio.sleep(0.05)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
        for sink in self.sinks.values():
            await sink.close()
        await self.pipeline.save()
        pending = {n: await self.outbox.size(n) for n in self.sinks}
        log.info("daemon_stopped", undelivered=pending)

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


def _build_outbox(config: Config, store: Store) -> MemoryOutbox | RedisOutbox:
    """A durable store keeps the outboxes beside the state, on the same connection."""
    cap, dead = config.outbox.capacity, config.outbox.dead_letter_capacity
    client = getattr(store, "client", None)
    if client is not None:
        prefix = getattr(store, "prefix", "stormwatch")
        return RedisOutbox(client, prefix=prefix, capacity=cap, dead_letter_capacity=dead)
    return MemoryOutbox(capacity=cap, dead_letter_capacity=dead)


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
