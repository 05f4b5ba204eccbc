"""The compiled core: setup.py builds exactly the modules `stormwatch.compiled` watches,
and an extension older than its edited source is named."""

from __future__ import annotations

import ast
import os
import types
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

from stormwatch.compiled import MODULES, compiled, stale

ROOT = Path(__file__).resolve().parents[2]


def _setup_compiled() -> list[str]:
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "COMPILED" for t in node.targets
        ):
            value = ast.literal_eval(node.value)
            assert isinstance(value, list)
            return value
    raise AssertionError("setup.py defines no COMPILED list")


def test_setup_compiles_the_modules_the_staleness_check_watches() -> None:
    paths = _setup_compiled()
    assert [p.removesuffix(".py").replace("/", ".") for p in paths] == list(MODULES)
    for p in paths:
        assert (ROOT / p).is_file(), p


def test_compiled_names_only_core_modules_loaded_from_extensions() -> None:
    names = compiled()
    assert set(names) <= set(MODULES)
    import correlate.engine

    is_ext = str(correlate.engine.__file__).endswith(tuple(EXTENSION_SUFFIXES))
    assert ("correlate.engine" in names) == is_ext


def _module_from(tmp_path: Path, source_age: float) -> tuple[types.ModuleType, Path]:
    ext = tmp_path / f"engine{EXTENSION_SUFFIXES[0]}"
    source = tmp_path / "engine.py"
    ext.write_bytes(b"")
    source.write_text("")
    built = 1_700_000_000.0
    os.utime(ext, (built, built))
    os.utime(source, (built + source_age, built + source_age))
    module = types.ModuleType("correlate.engine")
    module.__file__ = str(ext)
    return module, source


def test_a_source_edited_after_its_build_is_stale(tmp_path: Path) -> None:
    module, source = _module_from(tmp_path, source_age=60.0)
    assert stale([module]) == [str(source)]


def test_a_source_written_with_its_extension_is_not_stale(tmp_path: Path) -> None:
    # A wheel's files are written a few milliseconds apart, sources after extensions too.
    module, _ = _module_from(tmp_path, source_age=0.01)
    assert stale([module]) == []


def test_an_interpreted_module_is_never_stale(tmp_path: Path) -> None:
    source = tmp_path / "engine.py"
    source.write_text("")
    module = types.ModuleType("correlate.engine")
    module.__file__ = str(source)
    assert stale([module]) == []
