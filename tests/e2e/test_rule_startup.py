"""The daemon says which rule files it loaded from where, and refuses to run on none."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from stormwatch.app import DEFAULT_RULES
from stormwatch.rulesource import shadowed_defaults
from tests.conftest import ROOT, Daemon, pick_free_port
from tests.e2e.tools import wait_for


def _events(daemon: Daemon) -> list[dict[str, object]]:
    out = []
    for line in daemon.log.read_text().splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def test_start_logs_every_rule_file_with_its_rule_count(
    daemon_factory: Callable[..., Daemon], tmp_path: Path
) -> None:
    nested = tmp_path / "mine" / "team"
    nested.mkdir(parents=True)
    (nested / "a.yaml").write_text(
        "- name: a\n  match: ['x=\"1\"']\n  correlation: {type: event_count, group-by: [s], timespan: 1m}\n"
    )
    daemon = daemon_factory("--rules", str(tmp_path / "mine"))
    (loaded,) = [e for e in _events(daemon) if e["event"] == "rules_loaded"]
    assert loaded["files"] == {str((nested / "a.yaml").resolve()): 1}
    assert loaded["rules"] == 1 and loaded["shipped_defaults"] is False


def test_run_refuses_rule_paths_without_rules_unless_allowed(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    args = [
        sys.executable,
        "-m",
        "stormwatch.cli",
        "run",
        "--listen",
        f"127.0.0.1:{pick_free_port()}",
    ]
    refused = subprocess.run(
        [*args, "--rules", str(empty)], capture_output=True, text=True, timeout=30, cwd=tmp_path
    )
    assert refused.returncode == 2
    assert f"no rule files in {empty}" in refused.stderr and "--allow-empty" in refused.stderr


def test_replay_and_rules_check_refuse_no_rules_too(tmp_path: Path) -> None:
    from stormwatch.cli import main

    (tmp_path / "alerts.jsonl").write_text("")
    assert main(["rules", "check", str(tmp_path)]) == 2
    assert main(["rules", "check", "--allow-empty", str(tmp_path)]) == 0
    assert main(["replay", "--rules", str(tmp_path), str(tmp_path / "alerts.jsonl")]) == 2


def test_a_local_rules_defaults_folder_that_is_not_read_is_warned_about(tmp_path: Path) -> None:
    """After `pip install .` the daemon reads the installed copy; editing ./rules/defaults
    would change nothing, so the log says which one is read. (Run as the installed
    `stormwatch` script: `python -m` from a folder holding `rules/` would import that
    folder as the `rules` package.)"""
    (tmp_path / "rules" / "defaults").mkdir(parents=True)
    script = Path(sys.executable).parent / "stormwatch"
    port = pick_free_port()
    log = tmp_path / "daemon.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(script), "run", "--listen", f"127.0.0.1:{port}", "--incidents-jsonl", "-"],
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(
            "rules_defaults_installed_copy in the log",
            lambda: "rules_defaults_installed_copy" in log.read_text() or proc.poll() is not None,
            timeout=30,
        )
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    events = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
    (warning,) = [e for e in events if e["event"] == "rules_defaults_installed_copy"]
    assert warning["reading"] == str(Path(DEFAULT_RULES).resolve())
    assert warning["not_reading"] == str((tmp_path / "rules" / "defaults").resolve())
    assert shadowed_defaults([DEFAULT_RULES], DEFAULT_RULES, cwd=ROOT) is None  # the same folder
    assert shadowed_defaults(["mine/"], DEFAULT_RULES, cwd=tmp_path) is None  # rules given
