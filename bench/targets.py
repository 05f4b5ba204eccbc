"""Print issue 7's targets, each as the issue defines it: medians of several rounds.

    python -m bench.targets core                      # this checkout
    python -m bench.targets all --code /work/wt-old   # and another, side by side

Every round runs in a fresh interpreter (or daemon) with one checkout's packages on
PYTHONPATH and this checkout's bench/ driving it, so the old and the new core see the
same workload. With `--code`, rounds alternate between the checkouts (this one, the
other, this one, ...) so both share the machine's load alike; each line gives the
median, the spread (min..max) and the ratio of the medians. Where the other checkout
lacks what a measure needs, the line says so instead of a figure.

Targets: core, rules, groups (in-process, bench/measure.py); replay (`stormwatch replay`
of a 1,000,000-alert archive, wall clock); http and http-redis (a `stormwatch run`
subprocess driven by bench/load.py over loopback); memory (RSS and tracemalloc per live
fingerprint).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.calibrate import REFERENCE_US, label_hash_us
from bench.procs import cpu_seconds, status_kib
from tests.conftest import pick_free_port

__all__ = ["main"]

HERE = Path(__file__).resolve().parent.parent
WORK = Path(tempfile.gettempdir()) / "stormwatch-bench"
ARCHIVE_ALERTS = 1_000_000
GROUPS_TIMEOUT = 300.0
"""A groups round (fill, then 50,000 records timed) past this is reported, not waited for."""
SCALE = 1.0
"""Alerts sent by the http targets, as a share of the issue's counts (`--scale`, to try them)."""
ONE_RULE = """\
- name: service-burst
  description: the rule SEC is compared on, 5 alerts of a service within 60s
  correlation:
    type: event_count
    group-by: [service]
    timespan: 60s
    condition: {gte: 5}
  incident:
    title: "{service}: {count} alerts within 60s"
    severity: P2
"""


@dataclass(frozen=True)
class Code:
    """One checkout under test: its packages, and a bench/ that drives them."""

    root: Path
    bench_root: Path

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": f"{self.bench_root}{os.pathsep}{self.root}"}

    def python(self, *args: str) -> list[str]:
        # -P: not the working directory first on sys.path, so PYTHONPATH picks the tree
        return [sys.executable, "-P", *args]

    @property
    def name(self) -> str:
        return str(self.root)


def checkouts(other: str | None) -> list[Code]:
    codes = [Code(HERE, HERE)]
    if other:
        root = Path(other).resolve()
        copy = WORK / "bench-for" / root.name
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(
            HERE / "bench", copy / "bench", ignore=shutil.ignore_patterns("__pycache__")
        )
        codes.append(Code(root, copy))
    return codes


@dataclass
class Series:
    """One figure's rounds per checkout."""

    label: str
    unit: str
    target: float | None = None
    higher_is_better: bool = True
    values: dict[str, list[float]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def add(self, code: Code, value: float) -> None:
        self.values.setdefault(code.name, []).append(value)

    def lines(self, codes: Sequence[Code]) -> Iterator[str]:
        yield f"{self.label}"
        meds: list[float] = []
        for code in codes:
            vals = self.values.get(code.name, [])
            note = self.notes.get(code.name, "")
            if not vals:
                yield f"  {code.name:<22} n/a  {note}"
                continue
            med = statistics.median(vals)
            meds.append(med)
            met = ""
            if self.target is not None and code is codes[0]:
                ok = med >= self.target if self.higher_is_better else med <= self.target
                met = f"  target {'>=' if self.higher_is_better else '<='} {_fmt(self.target)}: {'met' if ok else 'NOT met'}"
            yield (
                f"  {code.name:<22} median {_fmt(med):>10} {self.unit}  "
                f"[{_fmt(min(vals))} .. {_fmt(max(vals))}, {len(vals)} rounds]{met}  {note}"
            ).rstrip()
        if len(meds) == 2 and meds[1]:
            yield f"  ratio this/other: {meds[0] / meds[1]:.2f}x"

    def as_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "unit": self.unit,
            "target": self.target,
            "values": self.values,
            "notes": self.notes,
        }


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def _run_json(cmd: list[str], env: dict[str, str], timeout: float = 1800) -> dict[str, Any]:
    try:
        out = subprocess.run(
            cmd, env=env, cwd=WORK, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"gave up: a round did not finish within {timeout:.0f} s") from None
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {out.returncode}: {out.stderr.strip()[-2000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _rounds(
    codes: Sequence[Code], rounds: int, one: Callable[[Code], None], series: Sequence[Series]
) -> None:
    """`one(code)` for every round and checkout, alternating which goes first. A checkout
    that cannot run the measure is noted on every series and not tried again."""
    failed: set[str] = set()
    for r in range(rounds):
        for code in codes if r % 2 == 0 else list(reversed(codes)):
            if code.name in failed:
                continue
            try:
                one(code)
            except (RuntimeError, subprocess.CalledProcessError, KeyError) as e:
                failed.add(code.name)
                for s in series:
                    s.notes[code.name] = f"not measured: {str(e).splitlines()[-1][:300]}"


# -- in-process measures ------------------------------------------------------------------


def t_core(codes: Sequence[Code], rounds: int) -> list[Series]:
    s = Series(
        "core: alerts/s, engine fed as the live pipeline (200,000 records, 50 rules)",
        "alerts/s",
        target=300_000,
    )

    def one(code: Code) -> None:
        s.add(
            code,
            _run_json(code.python("-m", "bench.measure", "core", "--alerts", "200000"), code.env)[
                "alerts_per_s"
            ],
        )

    _rounds(codes, rounds, one, [s])
    return [s]


def t_rules(codes: Sequence[Code], rounds: int) -> list[Series]:
    out = {
        n: Series(f"rules: alerts/s with {n:,} rules (100,000 records)", "alerts/s")
        for n in (10, 100, 1000)
    }

    def one(code: Code) -> None:
        for n, s in out.items():
            r = _run_json(
                code.python("-m", "bench.measure", "core", "--alerts", "100000", "--rules", str(n)),
                code.env,
            )
            s.add(code, r["alerts_per_s"])

    _rounds(codes, rounds, one, list(out.values()))
    return list(out.values())


def t_groups(codes: Sequence[Code], rounds: int) -> list[Series]:
    out = {
        g: Series(
            f"groups: alerts/s with {g:,} live groups (50 rules + 1 by instance, "
            "50,000 records timed)",
            "alerts/s",
        )
        for g in (10_000, 100_000, 1_000_000)
    }

    for g, s in out.items():

        def one(code: Code, g: int = g, s: Series = s) -> None:
            r = _run_json(
                code.python(
                    "-m", "bench.measure", "groups", "--groups", str(g), "--alerts", "50000"
                ),
                code.env,
                timeout=GROUPS_TIMEOUT,
            )
            s.add(code, r["alerts_per_s"])
            s.notes[code.name] = f"(live groups held: {r['live_groups']:,})"

        _rounds(codes, rounds, one, [s])
    return list(out.values())


def t_memory(codes: Sequence[Code], rounds: int) -> list[Series]:
    points = (10_000, 100_000, 1_000_000)
    rss = {
        n: Series(
            f"memory: RSS bytes per live fingerprint at {n:,} (minus the idle engine)",
            "B",
            target=1024 if n == 1_000_000 else None,
            higher_is_better=False,
        )
        for n in points
    }
    total = Series(
        "memory: RSS with 1,000,000 live fingerprints",
        "MiB",
        target=1.2 * 1024,
        higher_is_better=False,
    )
    traced = {
        n: Series(
            f"memory: tracemalloc bytes per live fingerprint at {n:,}", "B", higher_is_better=False
        )
        for n in (10_000, 100_000)
    }

    def one(code: Code) -> None:
        r = _run_json(
            code.python(
                "-m", "bench.measure", "memory", "--checkpoints", ",".join(map(str, points))
            ),
            code.env,
        )
        for p in r["points"]:
            rss[p["sent"]].add(code, p["rss_bytes_per_fp"])
            rss[p["sent"]].notes[code.name] = f"(live {p['live_fingerprints']:,})"
        total.add(code, r["points"][-1]["rss_mib"])
        t = _run_json(
            code.python(
                "-m", "bench.measure", "memory", "--tracemalloc", "--checkpoints", "10000,100000"
            ),
            code.env,
        )
        for p in t["points"]:
            traced[p["sent"]].add(code, p["traced_bytes_per_fp"])

    every = [*rss.values(), total, *traced.values()]
    _rounds(codes, rounds, one, every)
    return every


# -- replay -------------------------------------------------------------------------------


def _archive() -> Path:
    path = WORK / f"alerts-{ARCHIVE_ALERTS}.jsonl"
    if not path.exists():
        tmp = path.with_suffix(".part")
        with tmp.open("wb") as f:
            subprocess.run(
                [sys.executable, "-P", "-m", "bench.archive", str(ARCHIVE_ALERTS)],
                stdout=f,
                env=Code(HERE, HERE).env,
                cwd=WORK,
                check=True,
            )
        tmp.rename(path)
    return path


def t_replay(codes: Sequence[Code], rounds: int) -> list[Series]:
    archive = _archive()
    one_rule = WORK / "one-rule.yaml"
    one_rule.write_text(ONE_RULE)
    out: list[Series] = []
    for title, rules_for in (
        ("the one rule event_count >= 5 per service within 60s", lambda c: one_rule),
        ("each checkout's default rules", lambda c: c.root / "rules" / "defaults"),
    ):
        rate = Series(
            f"replay: alerts/s end to end, 1,000,000-alert archive, {title}",
            "alerts/s",
            target=200_000,
        )
        wall = Series(f"replay: wall clock, {title}", "s", higher_is_better=False)

        def one(
            code: Code,
            rate: Series = rate,
            wall: Series = wall,
            rules_for: Callable[[Code], Path] = rules_for,
        ) -> None:
            events = WORK / "replay-events.jsonl"
            started = time.perf_counter()
            done = subprocess.run(
                code.python(
                    "-m",
                    "stormwatch.cli",
                    "replay",
                    str(archive),
                    "--rules",
                    str(rules_for(code)),
                    "--out",
                    str(events),
                ),
                env=code.env,
                cwd=WORK,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                check=False,
            )
            seconds = time.perf_counter() - started
            if done.returncode != 0:
                raise RuntimeError(f"replay exited {done.returncode}: {done.stderr.strip()}")
            rate.add(code, ARCHIVE_ALERTS / seconds)
            wall.add(code, seconds)
            with events.open("rb") as f:
                rate.notes[code.name] = f"({sum(1 for _ in f):,} events)"

        _rounds(codes, rounds, one, [rate, wall])
        out += [rate, wall]
    return out


# -- http ---------------------------------------------------------------------------------


def _proc_stat(pid: int) -> tuple[float, float]:
    """(CPU seconds so far, peak RSS MiB) of a process."""
    return cpu_seconds(pid), status_kib(pid, "VmHWM") / 1024


@contextlib.contextmanager
def _daemon(code: Code, state: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = pick_free_port()
    cfg = WORK / f"daemon-{port}.yaml"
    cfg.write_text(f"listen: 127.0.0.1:{port}\nlog_level: warning\n{state}")
    proc = subprocess.Popen(
        code.python(
            "-m",
            "stormwatch.cli",
            "run",
            "--config",
            str(cfg),
            "--incidents-jsonl",
            str(WORK / f"incidents-{port}.jsonl"),
        ),
        env=code.env,
        cwd=WORK,
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"stormwatch run exited {proc.returncode}")
            try:
                with urllib.request.urlopen(url + "/readyz", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("stormwatch run not ready within 60 s")
            time.sleep(0.2)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        (WORK / f"incidents-{port}.jsonl").unlink(missing_ok=True)
        cfg.unlink(missing_ok=True)


def _load(url: str, *args: str) -> dict[str, Any]:
    me = Code(HERE, HERE)
    return _run_json(
        me.python("-m", "bench.load", "--url", url, "--fleet", "--max-seconds", "600", *args),
        me.env,
    )


def _http_series(tag: str, n: int, target: float, *, rate_run: bool) -> dict[str, Series]:
    out = {
        "new": Series(
            f"{tag}: alerts/s taking in {n:,} distinct new alerts (batches of 100, 4 connections)",
            "alerts/s",
        ),
        "resend": Series(
            f"{tag}: alerts/s re-sending them, {n:,} alerts in flight (live)",
            "alerts/s",
            target=target,
        ),
        "p99": Series(
            f"{tag}: p99 ms of those re-sends, closed loop", "ms", higher_is_better=False
        ),
        "cpu": Series(f"{tag}: daemon CPU-s for the {n:,} re-sends", "s", higher_is_better=False),
        "peak": Series(f"{tag}: daemon peak RSS with {n:,} live", "MiB", higher_is_better=False),
    }
    if rate_run:
        out["half"] = Series(
            f"{tag}: p99 ms, open loop at half that checkout's re-send rate ({n // 2:,} re-sends)",
            "ms",
            target=20,
            higher_is_better=False,
        )
    return out


def _http_round(code: Code, state: str, n: int, series: dict[str, Series]) -> None:
    """A fresh daemon: `n` new distinct alerts (started over the last hour, so most are
    past the allowed lateness, as a fleet's long-firing alerts are), then the same `n`
    re-sent, then (with a "half" series) half of them again, open loop at half the rate."""
    with _daemon(code, state) as (url, proc):
        fleet = ("--alerts", str(n), "--span", "3600")
        new = _load(url, *fleet)
        series["new"].add(code, new["alerts_per_s"])
        cpu0, _ = _proc_stat(proc.pid)
        r = _load(url, *fleet)
        cpu1, peak = _proc_stat(proc.pid)
        series["resend"].add(code, r["alerts_per_s"])
        series["resend"].notes[code.name] = f"(statuses {new['statuses']}, {r['statuses']})"
        series["p99"].add(code, r["latency_ms"]["p99"])
        series["cpu"].add(code, cpu1 - cpu0)
        series["peak"].add(code, peak)
        if "half" in series:
            half = r["alerts_per_s"] / 2
            h = _load(url, "--alerts", str(n // 2), "--span", "3600", "--rate", str(half))
            series["half"].add(code, h["latency_ms"]["p99"])
            series["half"].notes[code.name] = (
                f"(at {half:,.0f}/s: p50 {h['latency_ms']['p50']} ms, "
                f"p90 {h['latency_ms']['p90']} ms)"
            )


def t_http(codes: Sequence[Code], rounds: int) -> list[Series]:
    n = round(1_000_000 * SCALE)
    series = _http_series("http", n, 150_000, rate_run=True)
    _rounds(codes, rounds, lambda code: _http_round(code, "", n, series), list(series.values()))
    return list(series.values())


def t_http_redis(codes: Sequence[Code], rounds: int) -> list[Series]:
    import redis

    n = round(200_000 * SCALE)
    series = _http_series("http-redis", n, 100_000, rate_run=False)
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    client = redis.Redis.from_url(url)

    def one(code: Code) -> None:
        prefix = f"bench-targets-{os.getpid()}-{time.monotonic_ns()}"
        state = f"state: {{backend: redis, url: '{url}', key_prefix: {prefix}}}\n"
        try:
            _http_round(code, state, n, series)
        finally:
            # our own keys only; never FLUSHDB on the shared server
            for key in client.scan_iter(match=f"{prefix}*", count=1000):
                client.unlink(key)

    _rounds(codes, rounds, one, list(series.values()))
    return list(series.values())


TARGETS: dict[str, tuple[Callable[[Sequence[Code], int], list[Series]], int]] = {
    "core": (t_core, 5),
    "rules": (t_rules, 3),
    "groups": (t_groups, 3),
    "replay": (t_replay, 3),
    "http": (t_http, 2),
    "http-redis": (t_http_redis, 2),
    "memory": (t_memory, 1),
}


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("target", choices=(*TARGETS, "all"))
    p.add_argument("--code", metavar="PATH", help="another checkout, measured side by side")
    p.add_argument("--rounds", type=int, help="rounds per checkout (default: per target)")
    p.add_argument("--json", metavar="FILE", help="also write every round's figures here")
    p.add_argument("--scale", type=float, default=1.0, help="http targets: a share of the alerts")
    args = p.parse_args()
    global SCALE
    SCALE = args.scale
    WORK.mkdir(parents=True, exist_ok=True)
    codes = checkouts(args.code)
    names = list(TARGETS) if args.target == "all" else [args.target]
    speed = label_hash_us()
    print(
        f"# {time.strftime('%Y-%m-%d %H:%M')}, load average {os.getloadavg()[0]:.2f}, "
        f"{os.cpu_count()} CPUs; label-set hash {speed:.3f} us ({REFERENCE_US} on "
        f"PERF-NOTES' machine: this one runs {REFERENCE_US / speed:.2f}x, bench/calibrate.py)",
        flush=True,
    )
    collected: list[dict[str, Any]] = [{"label_hash_us": speed}]
    for name in names:
        fn, default_rounds = TARGETS[name]
        started = time.monotonic()
        try:
            series = fn(codes, args.rounds or default_rounds)
        except (RuntimeError, subprocess.CalledProcessError) as e:
            print(f"{name}: failed: {e}", flush=True)
            continue
        for s in series:
            for line in s.lines(codes):
                print(line, flush=True)
            collected.append(s.as_json())
        print(
            f"  ({name}: {time.monotonic() - started:.0f} s; load average "
            f"{os.getloadavg()[0]:.2f})",
            flush=True,
        )
    if args.json:
        Path(args.json).write_text(json.dumps(collected, indent=1))


if __name__ == "__main__":
    main()
