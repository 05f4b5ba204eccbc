"""Saying where the rules came from, so an edit that changes nothing is noticed.

After `pip install .` the shipped defaults are read from the installed copy in
site-packages: editing the clone's `rules/defaults` then changes nothing. The daemon
logs every rule file it loaded, and warns when a `rules/defaults` folder in the working
directory is not the one it reads.
"""

from __future__ import annotations

from pathlib import Path

import structlog

from rules import RuleSet

__all__ = ["log_rules_loaded", "shadowed_defaults"]

log = structlog.get_logger("stormwatch")


def shadowed_defaults(paths: list[str], default_rules: str, cwd: Path | None = None) -> Path | None:
    """The working directory's `rules/defaults`, when it exists and is not what is read."""
    local = (cwd or Path.cwd()) / "rules" / "defaults"
    if paths != [default_rules] or not local.is_dir():
        return None
    return None if local.resolve() == Path(default_rules).resolve() else local


def log_rules_loaded(ruleset: RuleSet, paths: list[str], default_rules: str) -> None:
    per_file: dict[str, int] = dict.fromkeys(ruleset.files, 0)
    for origin in ruleset.origins.values():
        per_file[origin.file] = per_file.get(origin.file, 0) + 1
    log.info(
        "rules_loaded",
        rules=len(ruleset),
        paths=paths,
        files={str(Path(f).resolve()): n for f, n in per_file.items()},
        shipped_defaults=paths == [default_rules],
    )
    local = shadowed_defaults(paths, default_rules)
    if local is not None:
        log.warning(
            "rules_defaults_installed_copy",
            reading=str(Path(default_rules).resolve()),
            not_reading=str(local.resolve()),
            hint="edits to the local copy take effect with --rules rules/defaults "
            "(or pip install -e .)",
        )
