"""One round of one in-process measure, printed as a JSON line: what `bench.targets`
runs in a fresh interpreter per round, with the checkout under test on PYTHONPATH (so
the same workload code drives the old and the new core).

    python -m bench.measure core --alerts 200000 --rules 50
    python -m bench.measure core --alerts 300000 --rule-file deploy/scaleout/rules.yaml
    python -m bench.measure groups --groups 100000
    python -m bench.measure memory --checkpoints 10000,100000,1000000 [--tracemalloc]
    python -m bench.measure decode --alerts 20000 --passes 5 [--dry]
    valgrind --tool=callgrind --callgrind-out-file=/dev/null python -m bench.measure core [--dry]

Only the engine work is timed: the workload is built first, and each figure says what it
counted.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import correlate
from bench.feed import feed
from bench.fleet import fleet_bodies
from bench.procs import status_kib
from bench.workload import Workload, rules
from correlate import Engine, EngineConfig
from ingest.normalize.alertmanager import normalize_alertmanager_v2
from rules import RuleSet, load_rules
from rules.schema import Condition, EventCount, IncidentSpec, Rule
from stormwatch.wire import Alert, Duration

__all__ = ["main"]

_START = Workload().start


def _tune_gc() -> None:
    """The checkout's daemon's garbage-collector settings (`stormwatch run` applies them;
    a checkout without them runs CPython's)."""
    try:
        from stormwatch.gctune import tune_gc
    except ImportError:
        gc.collect()
        return
    tune_gc()


def _timed(engine: Engine, requests: list[list[Alert]]) -> dict[str, Any]:
    _tune_gc()
    started = time.perf_counter()
    events = feed(engine, requests)
    seconds = time.perf_counter() - started
    n = sum(len(r) for r in requests)
    return {"alerts": n, "seconds": seconds, "alerts_per_s": n / seconds, "events": events}


def core(
    alerts: int, n_rules: int, dry: bool = False, rule_file: str | None = None
) -> dict[str, Any]:
    """Alerts/s of `feed` on the workload's first `alerts` records with `n_rules` rules
    (or the rules of `rule_file`, e.g. deploy/scaleout/rules.yaml: the engine's share of
    a correlator's Kafka intake, bench/kafka_load.py). `dry`: everything but the feed, so
    that an instruction count of a dry run, taken from one of a full run, leaves the
    feed's (callgrind counts whole processes)."""
    requests = list(Workload().requests(alerts))
    ruleset = load_rules([rule_file]) if rule_file else rules(n_rules)
    engine = Engine(ruleset)
    described: dict[str, Any] = {"rules": rule_file or n_rules}
    if dry:
        return {**described, "alerts": sum(len(r) for r in requests), "dry": True}
    return {**described, **_timed(engine, requests)}


def _fleet_requests(
    n: int, start: float, span_s: float, first: int = 0, probe: bool = False
) -> Iterator[list[Alert]]:
    """The fleet's records decoded by the HTTP route's normaliser, request by request."""
    for at, body in fleet_bodies(n, start=start, span_s=span_s, first=first, probe=probe):
        yield normalize_alertmanager_v2(body, at)


def _with_host_rule(base: RuleSet) -> RuleSet:
    """`base` plus a rule with one group per `instance` that holds its alerts a day and
    never fires: the live groups the `groups` target counts."""
    host = Rule(
        name="fleet-hosts",
        match=['instance=~"host-.*"'],
        correlation=EventCount(
            group_by=["instance"], timespan=Duration(86_400), condition=Condition(gte=1_000_000)
        ),
        incident=IncidentSpec(severity="P4"),
    )
    return RuleSet(rules=(*base.rules, host))


def groups(n_groups: int, alerts: int) -> dict[str, Any]:
    """Alerts/s of the core stream (50 rules) while `n_groups` groups are live: a probe
    fleet's distinct alerts (which the stream's alerts never join) are fed first (untimed,
    arriving at 1,000/s up to the stream's start),
    then the stream's first hour (untimed: the 50 rules' windows drop the fleet's
    entries), then `alerts` records timed."""
    span = n_groups / 1000
    # the default cap (50,000 groups a rule) would refuse the rest: lifted, as a fleet
    # holding a million groups would configure it
    engine = Engine(_with_host_rule(rules(50)), EngineConfig(max_groups_per_rule=2 * n_groups))
    feed(engine, _fleet_requests(n_groups, _START - span, span, probe=True))
    requests = list(Workload().requests(alerts + 10_000))
    hour = next(i for i, r in enumerate(requests) if r[0].received_at >= _START + 3600)
    warm, timed = requests[:hour], requests[hour:]
    feed(engine, warm)
    live = engine.windows_by_rule().get("fleet-hosts", 0)
    result = _timed(engine, timed)
    after = engine.windows_by_rule().get("fleet-hosts", 0)
    return {"groups": n_groups, "live_groups": live, "live_after": after, **result}


def decode(alerts: int, passes: int, dry: bool = False) -> dict[str, Any]:
    """Alerts/s of the HTTP route's Alertmanager API normaliser (decode, checks,
    fingerprint) on the fleet's bodies of 100: a first pass untimed (the fingerprint
    cache warm, as for re-sends), then `passes` timed. `dry`: the bodies only."""
    now = _START + 3600
    bodies = [body for _, body in fleet_bodies(alerts, start=now - 3600, span_s=3600)]
    if dry:
        return {"alerts": 0, "seconds": 0.0, "alerts_per_s": 0.0}
    n = sum(len(normalize_alertmanager_v2(body, now)) for body in bodies)
    _tune_gc()
    started = time.perf_counter()
    for _ in range(passes):
        for body in bodies:
            normalize_alertmanager_v2(body, now)
    seconds = time.perf_counter() - started
    return {"alerts": n * passes, "seconds": seconds, "alerts_per_s": n * passes / seconds}


def _rss_kib() -> int:
    return status_kib("self", "VmRSS")


def memory(checkpoints: list[int], traced: bool) -> dict[str, Any]:
    """RSS (or tracemalloc's bytes) per live fingerprint, minus the idle engine's, after
    the fleet's first `checkpoint` distinct alerts went through the pipeline's decode
    and `feed` with the 50 rules (1,000 arriving per second of arrival time)."""
    engine = Engine(rules(50))
    top = max(checkpoints)
    gc.collect()
    if traced:
        tracemalloc.start()
    base_rss, base_traced = _rss_kib(), tracemalloc.get_traced_memory()[0]
    out: list[dict[str, Any]] = []
    done = 0
    for n in sorted(checkpoints):
        feed(engine, _fleet_requests(n - done, _START + done / 1000, (n - done) / 1000, done))
        done = n
        gc.collect()
        live = len(engine.state.tracked)
        point: dict[str, Any] = {"sent": n, "live_fingerprints": live}
        if traced:
            point["traced_bytes_per_fp"] = (tracemalloc.get_traced_memory()[0] - base_traced) / live
        else:
            rss = _rss_kib()
            point["rss_mib"] = rss / 1024
            point["rss_bytes_per_fp"] = (rss - base_rss) * 1024 / live
        out.append(point)
    return {"top": top, "baseline_rss_mib": base_rss / 1024, "points": out}


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("kind", choices=("core", "groups", "memory", "decode"))
    p.add_argument("--alerts", type=int, default=200_000)
    p.add_argument("--rules", type=int, default=50)
    p.add_argument("--groups", type=int, default=100_000)
    p.add_argument("--checkpoints", default="10000,100000,1000000")
    p.add_argument("--tracemalloc", action="store_true")
    p.add_argument("--dry", action="store_true", help="core, decode: build the input only")
    p.add_argument("--passes", type=int, default=5, help="decode: timed passes over the bodies")
    p.add_argument("--rule-file", help="core: these rules instead of --rules N generated ones")
    args = p.parse_args()
    if args.kind == "core":
        result = core(args.alerts, args.rules, args.dry, args.rule_file)
    elif args.kind == "groups":
        result = groups(args.groups, args.alerts)
    elif args.kind == "decode":
        result = decode(args.alerts, args.passes, args.dry)
    else:
        points = [int(x) for x in args.checkpoints.split(",")]
        result = memory(points, args.tracemalloc)
    result["code"] = correlate.__file__.rsplit("/correlate/", 1)[0]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
