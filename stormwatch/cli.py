"""`stormwatch`: a thin shell over functions the tests call directly.

stormwatch run [--config FILE] [--listen HOST:PORT] [--rules PATH]... [--incidents-jsonl PATH]
stormwatch config check [--config FILE]
stormwatch rules check PATH...
stormwatch rules test FILE...
stormwatch replay --rules PATH [--against PATH] [--out FILE] ALERTS.jsonl
stormwatch incidents list|show|explain|ack, silence add|query|expire (stormwatch/client_cli.py)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence

import msgspec

from stormwatch.client_cli import CLIENT_COMMANDS, add_client_commands, run_client_command
from stormwatch.defaults import DEFAULT_LISTEN
from stormwatch.errors import ConfigError, RuleError, StormwatchError
from stormwatch.gctune import tune_gc
from stormwatch.version import version

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        metavar="FILE",
        help="YAML config file (env STORMWATCH_CONFIG); without one, the embedded defaults",
    )
    p.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help=f"HTTP address (env STORMWATCH_LISTEN; default {DEFAULT_LISTEN})",
    )
    p.add_argument(
        "--rules",
        metavar="PATH",
        action="append",
        help="rule file or folder, repeatable (env STORMWATCH_RULES, ':'-separated; default: the shipped rules)",
    )
    p.add_argument(
        "--incidents-jsonl",
        metavar="PATH",
        help="where the file sink writes incident events, '-' for stdout (env STORMWATCH_INCIDENTS_JSONL; default incidents.jsonl)",
    )
    p.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="env STORMWATCH_LOG_LEVEL; default info",
    )
    _add_allow_empty(p)


def _add_allow_empty(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--allow-empty",
        action="store_true",
        help="accept rule paths that hold no rule file or no rule (otherwise an error)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stormwatch",
        description="Alert ingestion and correlation daemon: Alertmanager-compatible webhooks in, "
        "deduplicated, correlated incidents out.",
        epilog="Settings apply in this order, later wins: defaults < --config file < STORMWATCH_* env < flags.",
    )
    parser.add_argument("--version", action="version", version=f"stormwatch {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser(
        "run",
        help="run the daemon",
        description=(
            "Run the daemon. With no config it runs embedded: state in memory, HTTP on "
            f"{DEFAULT_LISTEN}, the shipped default rules, incidents to incidents.jsonl. "
            "Prometheus can list it under alerting.alertmanagers as is (POST /api/v2/alerts)."
        ),
    )
    _add_config_flags(run)

    config = sub.add_parser("config", help="inspect the configuration")
    config_sub = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = config_sub.add_parser(
        "check", help="validate and print the effective config; exit 2 if invalid"
    )
    _add_config_flags(check)

    rules = sub.add_parser("rules", help="work with rule files")
    rules_sub = rules.add_subparsers(dest="rules_command", metavar="ACTION", required=True)
    rcheck = rules_sub.add_parser(
        "check", help="validate rule files; print file:line: rule: field: problem; exit 2 on error"
    )
    rcheck.add_argument(
        "paths", nargs="+", metavar="PATH", help="rule files or folders (searched recursively)"
    )
    _add_allow_empty(rcheck)
    rtest = rules_sub.add_parser(
        "test",
        help="run rule unit tests (YAML: input alerts and expected incidents); exit 1 on failure",
    )
    rtest.add_argument("files", nargs="+", metavar="FILE", help="rule test files")

    dead = sub.add_parser("deadletters", help="list or replay a running daemon's dead letters")
    dead_sub = dead.add_subparsers(dest="dead_command", metavar="ACTION", required=True)
    for action, text in (
        ("list", "print a sink's dead letters"),
        ("replay", "put a sink's dead letters back on its outbox"),
    ):
        p = dead_sub.add_parser(action, help=text)
        p.add_argument("sink", help="the sink's name")
        p.add_argument(
            "--url",
            default=f"http://{DEFAULT_LISTEN}",
            help=f"the daemon (default http://{DEFAULT_LISTEN})",
        )

    replay = sub.add_parser(
        "replay",
        help="run an archive of alerts through rules offline",
        description=(
            "Run ALERTS.jsonl (one Alert or Alertmanager API alert object per line; - for stdin) through "
            "the rules on the alerts' own times, and write the incident events, in the JSONL sink's format."
        ),
    )
    replay.add_argument(
        "alerts", metavar="ALERTS.jsonl", nargs="+", help="in arrival order; - for stdin"
    )
    replay.add_argument(
        "--rules",
        metavar="PATH",
        action="append",
        required=True,
        help="rule file or folder, repeatable",
    )
    replay.add_argument(
        "--out",
        metavar="FILE",
        help="write incident events here (default: stdout, unless --against)",
    )
    replay.add_argument(
        "--against",
        metavar="PATH",
        action="append",
        help="baseline rules: print what --rules would add, drop or change against them",
    )
    replay.add_argument(
        "--config", metavar="FILE", help="take the correlate: settings from this config file"
    )
    replay.add_argument(
        "--batch-size",
        type=int,
        default=1000,
        metavar="N",
        help="alerts per engine call (whole arrival instants); the result does not depend on it",
    )
    replay.add_argument(
        "--output",
        choices=("table", "json"),
        default="table",
        help="with --against: a table for people or JSON for scripts",
    )
    _add_allow_empty(replay)
    add_client_commands(sub)
    return parser


def _load(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from stormwatch.config import load_config

    return load_config(
        args.config,
        listen=args.listen,
        rules=args.rules,
        incidents_jsonl=args.incidents_jsonl,
        log_level=args.log_level,
    )


def cmd_run(args: argparse.Namespace) -> int:
    from stormwatch.app import App, serve
    from stormwatch.logs import configure_logging

    try:
        config = _load(args)
    except ConfigError as err:
        print(f"stormwatch: config error: {err}", file=sys.stderr)
        return EXIT_INVALID
    configure_logging(config.log_level)
    try:
        app = App(config, allow_empty_rules=args.allow_empty)
    except (ConfigError, RuleError) as err:
        print(f"stormwatch: {err}", file=sys.stderr)
        return EXIT_INVALID
    tune_gc()
    try:
        asyncio.run(serve(app, signals=(signal.SIGINT, signal.SIGTERM)))
    except KeyboardInterrupt:
        return 130
    except OSError as err:
        print(
            f"stormwatch: cannot listen on {config.listen}: {err.strerror or err}", file=sys.stderr
        )
        return EXIT_FAILED
    except StormwatchError as err:  # e.g. the state store is unreachable at start
        print(f"stormwatch: {err}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_config_check(args: argparse.Namespace) -> int:
    from stormwatch.app import DEFAULT_RULES
    from stormwatch.config import check_secrets, redacted
    from stormwatch.preflight import preflight

    try:
        config = _load(args)
        check_secrets(config, args.config or os.environ.get("STORMWATCH_CONFIG", ""))
    except ConfigError as err:
        print(f"stormwatch: config error: {err}", file=sys.stderr)
        return EXIT_INVALID
    problems = preflight(
        config, DEFAULT_RULES, path=args.config or "", allow_empty=args.allow_empty
    )
    if problems:
        for problem in problems:
            print(f"stormwatch: {problem}", file=sys.stderr)
        print(f"stormwatch: {len(problems)} problem(s): `run` would refuse this", file=sys.stderr)
        return EXIT_INVALID
    sys.stdout.write(msgspec.yaml.encode(redacted(config)).decode())
    return EXIT_OK


def cmd_rules_check(args: argparse.Namespace) -> int:
    from rules import check_rules, format_report

    report = check_rules(args.paths, allow_empty=args.allow_empty)
    print(format_report(report))
    return EXIT_INVALID if report.errors else EXIT_OK


def cmd_rules_test(args: argparse.Namespace) -> int:
    from stormwatch.ruletest import run_test_file

    failed = total = 0
    for file in args.files:
        try:
            results = run_test_file(file)
        except RuleError as err:
            print(f"{err}", file=sys.stderr)
            return EXIT_INVALID
        for r in results:
            total += 1
            if r.ok:
                print(f"ok    {r.file}: {r.name}")
            else:
                failed += 1
                print(f"FAIL  {r.file}: {r.name}\n{r.diff}")
    print(f"{total - failed} passed, {failed} failed")
    return EXIT_FAILED if failed else EXIT_OK


def cmd_replay(args: argparse.Namespace) -> int:
    from correlate import EngineConfig
    from rules import load_rules
    from stormwatch.backtest import compare, format_table
    from stormwatch.errors import PayloadError
    from stormwatch.replay import Progress, open_inputs, read_chunks, replay

    def fail(message: str) -> int:
        print(f"stormwatch replay: {message}", file=sys.stderr)
        return EXIT_INVALID

    try:
        if args.config:  # the config (and every source and sink it names) only if asked
            from stormwatch.config import load_config

            config = load_config(args.config, env={}).correlate
        else:
            config = EngineConfig()
        candidate = load_rules(args.rules, allow_empty=args.allow_empty)
        baseline = load_rules(args.against, allow_empty=args.allow_empty) if args.against else None
    except (ConfigError, RuleError) as err:
        return fail(str(err))
    for flag, ruleset, paths in (
        ("--rules", candidate, args.rules),
        ("--against", baseline, args.against),
    ):
        if ruleset is not None and not len(ruleset) and not args.allow_empty:
            return fail(
                f"{flag} {' '.join(paths)}: no rules loaded (no rule file, or every rule disabled)"
            )
    if args.alerts.count("-") > 1 or (baseline is not None and "-" in args.alerts):
        return fail("read stdin once, and not with --against (it is read twice): give a file")
    try:
        inputs = open_inputs(args.alerts)
    except OSError as err:
        return fail(f"cannot read {err.filename}: {err.strerror}")
    total = sum(_size(p) or 0 for p in args.alerts) or None
    progress = Progress(sys.stderr, total) if sys.stderr.isatty() else None
    try:
        out = open(args.out, "wb") if args.out else (None if baseline else sys.stdout.buffer)  # noqa: SIM115
    except OSError as err:
        return fail(f"cannot write {err.filename}: {err.strerror}")
    tune_gc()
    try:
        stats = replay(
            read_chunks(inputs, progress),
            candidate,
            config,
            out=out,
            progress=progress,
            batch_size=args.batch_size,
            keep=baseline is not None,
        )
        if baseline is not None:
            # Files are read twice, streaming.
            base = replay(
                read_chunks(open_inputs(args.alerts)), baseline, config, batch_size=args.batch_size
            )
            result = compare(stats.incidents.values(), base.incidents.values())
            if args.output == "json":
                doc = {"rules": list(result.rules.values()), "totals": result.totals}
                sys.stdout.buffer.write(msgspec.json.encode(doc) + b"\n")
            else:
                print(format_table(result))
    except PayloadError as err:
        return fail(err.message)
    finally:
        if args.out and out is not None:
            out.close()
    if stats.alerts == 0:
        return fail(f"{' '.join(args.alerts)}: no alerts read")
    print(
        f"replayed {stats.alerts:,} alerts in {stats.seconds:.2f}s ({stats.alerts_per_s:,.0f} alerts/s): "
        f"{stats.opened:,} incidents opened, {stats.resolved:,} resolved, {stats.events:,} events",
        file=sys.stderr,
    )
    return EXIT_OK


def cmd_deadletters(args: argparse.Namespace) -> int:
    import json
    import urllib.error
    import urllib.request

    base = args.url.rstrip("/") + f"/api/v1/deadletters/{args.sink}"
    token = os.environ.get("STORMWATCH_API_TOKEN")  # the API's bearer token (ingest.auth.api)
    req = urllib.request.Request(
        base + ("/replay" if args.dead_command == "replay" else ""),
        method="POST" if args.dead_command == "replay" else "GET",
        headers={"Authorization": f"Bearer {token}"} if token else {},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            body = json.load(resp)
    except urllib.error.HTTPError as err:
        print(f"stormwatch: {json.load(err).get('message', err.reason)}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as err:
        print(f"stormwatch: cannot reach {args.url}: {err}", file=sys.stderr)
        return EXIT_FAILED
    if args.dead_command == "replay":
        print(f"{body['replayed']} dead letters of {args.sink} back on its outbox")
        return EXIT_OK
    for d in body["dead_letters"]:
        e = d["entry"]["event"]
        print(
            f"{e['incident']['key']}  {e['event']:<8} seq {e['sequence']:<3} {d['reason']:<10} {d['error'][:100]}"
        )
    print(
        f"{len(body['dead_letters'])} dead letters"
        + (f", {body['dropped']} dropped" if body["dropped"] else "")
    )
    return EXIT_OK


def _size(path: str) -> int | None:
    try:
        return os.path.getsize(path) if path != "-" else None
    except OSError:
        return None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return cmd_run(args)
    if args.command == "config":
        return cmd_config_check(args)
    if args.command == "rules" and args.rules_command == "check":
        return cmd_rules_check(args)
    if args.command == "rules" and args.rules_command == "test":
        return cmd_rules_test(args)
    if args.command == "replay":
        return cmd_replay(args)
    if args.command == "deadletters":
        return cmd_deadletters(args)
    if args.command in CLIENT_COMMANDS:
        return run_client_command(args)
    return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
