"""`stormwatch`: a thin shell over functions the tests call directly.

    stormwatch run [--config FILE] [--listen HOST:PORT] [--rules PATH]... [--incidents-jsonl PATH]
    stormwatch config check [--config FILE]
    stormwatch rules check PATH...
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

import msgspec

from stormwatch.config import DEFAULT_LISTEN, load_config
from stormwatch.errors import ConfigError, RuleError
from stormwatch.wire import encode_hook

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="YAML config file (env STORMWATCH_CONFIG); without one, the embedded defaults")
    p.add_argument("--listen", metavar="HOST:PORT", help=f"HTTP address (env STORMWATCH_LISTEN; default {DEFAULT_LISTEN})")
    p.add_argument("--rules", metavar="PATH", action="append",
                   help="rule file or folder, repeatable (env STORMWATCH_RULES, ':'-separated; default: the shipped rules)")
    p.add_argument("--incidents-jsonl", metavar="PATH",
                   help="where the file sink writes incident events, '-' for stdout (env STORMWATCH_INCIDENTS_JSONL; default incidents.jsonl)")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="env STORMWATCH_LOG_LEVEL; default info")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stormwatch",
        description="Alert ingestion and correlation daemon: Alertmanager-compatible webhooks in, "
        "deduplicated, correlated incidents out.",
        epilog="Settings apply in this order, later wins: defaults < --config file < STORMWATCH_* env < flags.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser("run", help="run the daemon", description=(
        "Run the daemon. With no config it runs embedded: state in memory, HTTP on "
        f"{DEFAULT_LISTEN}, the shipped default rules, incidents to incidents.jsonl. "
        "Prometheus can list it under alerting.alertmanagers as is (POST /api/v2/alerts)."))
    _add_config_flags(run)

    config = sub.add_parser("config", help="inspect the configuration")
    config_sub = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = config_sub.add_parser("check", help="validate and print the effective config; exit 2 if invalid")
    _add_config_flags(check)

    rules = sub.add_parser("rules", help="work with rule files")
    rules_sub = rules.add_subparsers(dest="rules_command", metavar="ACTION", required=True)
    rcheck = rules_sub.add_parser("check", help="validate rule files; print file:line: rule: field: problem; exit 2 on error")
    rcheck.add_argument("paths", nargs="+", metavar="PATH", help="rule files or folders")
    return parser


def _load(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    return load_config(args.config, listen=args.listen, rules=args.rules,
                       incidents_jsonl=args.incidents_jsonl, log_level=args.log_level)


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
        app = App(config)
    except (ConfigError, RuleError) as err:
        print(f"stormwatch: {err}", file=sys.stderr)
        return EXIT_INVALID
    try:
        asyncio.run(serve(app, signals=(signal.SIGINT, signal.SIGTERM)))
    except KeyboardInterrupt:
        return 130
    except OSError as err:
        print(f"stormwatch: cannot listen on {config.listen}: {err.strerror}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_config_check(args: argparse.Namespace) -> int:
    try:
        config = _load(args)
    except ConfigError as err:
        print(f"stormwatch: config error: {err}", file=sys.stderr)
        return EXIT_INVALID
    sys.stdout.write(msgspec.yaml.encode(config, enc_hook=encode_hook).decode())
    return EXIT_OK


def cmd_rules_check(args: argparse.Namespace) -> int:
    from rules import check_rules, format_report

    report = check_rules(args.paths)
    print(format_report(report))
    return EXIT_INVALID if report.errors else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return cmd_run(args)
    if args.command == "config":
        return cmd_config_check(args)
    if args.command == "rules" and args.rules_command == "check":
        return cmd_rules_check(args)
    return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
