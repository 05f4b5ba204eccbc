"""Which files a rule path names: files as given, folders searched recursively."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

__all__ = ["rule_files", "rule_test_files"]

_RULE_SUFFIXES = (".yaml", ".yml")
_TEST_SUFFIXES = ("_test.yaml", "_test.yml")


def _walk(paths: Iterable[str | Path]) -> tuple[list[Path], list[Path]]:
    """(rule files, rule test files) named by `paths`; folders are searched recursively."""
    files: list[Path] = []
    tests: list[Path] = []
    for p in map(Path, paths):
        if not p.is_dir():
            files.append(p)
            continue
        found = sorted(
            f
            for f in p.rglob("*")
            if f.suffix in _RULE_SUFFIXES
            and f.is_file()
            and not any(part.startswith(".") for part in f.relative_to(p).parts)
        )
        for f in found:
            (tests if f.name.endswith(_TEST_SUFFIXES) else files).append(f)
    return files, tests


def rule_files(paths: Iterable[str | Path]) -> list[Path]:
    """The rule files named by `paths`: files as given; in folders, recursively, every
    *.yaml / *.yml except rule tests (`*_test.yaml`, run by `stormwatch rules test`)."""
    return _walk(paths)[0]


def rule_test_files(paths: Iterable[str | Path]) -> list[Path]:
    """The rule test files (`*_test.yaml`) a folder search passed over."""
    return _walk(paths)[1]
