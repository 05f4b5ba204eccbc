"""Import direction guard: each package may import only what STYLE.md's table allows."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"stormwatch", "ingest", "correlate", "rules", "sinks"}
LEAVES = {"stormwatch.wire", "stormwatch.errors"}

# module prefix -> (our modules it may import, third-party top-level names it may import)
ALLOWED: dict[str, tuple[set[str], set[str]]] = {
    "stormwatch.wire": (set(), {"msgspec"}),
    "stormwatch.errors": (set(), set()),
    "stormwatch.metrics": (set(), {"prometheus_client"}),
    "rules": ({"stormwatch.wire", "stormwatch.errors", "rules"}, {"msgspec", "yaml"}),
    "correlate.store": (
        {
            "correlate.state",
            "correlate.delta",
            "correlate.suppress",
            "correlate.store",
            "stormwatch.wire",
            "stormwatch.errors",
        },
        {"msgspec", "redis"},
    ),
    "correlate": ({"correlate", "rules", "stormwatch.wire", "stormwatch.errors"}, {"msgspec"}),
    "ingest": (
        {"ingest", "stormwatch.wire", "stormwatch.errors", "stormwatch.metrics"},
        {"msgspec", "orjson", "aiohttp", "aiokafka", "structlog", "fnv_c"},
    ),
    "sinks": (
        {"sinks", "stormwatch.wire", "stormwatch.errors", "stormwatch.metrics"},
        {"aiohttp", "aiokafka", "redis", "orjson", "structlog", "msgspec", "multidict", "yarl"},
    ),
}
FORBIDDEN_IN_CORE = {
    "asyncio",
    "time",
    "random",
    "datetime",
    "threading",
    "logging",
    "socket",
    "os",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
    return out


def _rule_for(module: str) -> tuple[set[str], set[str]] | None:
    best = None
    for prefix in ALLOWED:
        if (module == prefix or module.startswith(prefix + ".")) and (
            best is None or len(prefix) > len(best)
        ):
            best = prefix
    return ALLOWED[best] if best else None


def _files() -> list[Path]:
    return sorted(p for pkg in OURS for p in (ROOT / pkg).rglob("*.py"))


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_follow_the_dependency_table(path: Path) -> None:
    module = _module_name(path)
    rule = _rule_for(module)
    if rule is None:
        return  # the shell may import anything
    ours_allowed, third_allowed = rule
    for name in _imports(path):
        top = name.split(".")[0]
        if top in OURS:
            assert any(name == a or name.startswith(a + ".") for a in ours_allowed), (
                f"{module} imports {name}"
            )
        elif top not in sys.stdlib_module_names and top != "__future__":
            assert top in third_allowed, f"{module} imports third-party {name}"


@pytest.mark.parametrize(
    "path",
    [
        p
        for p in _files()
        if p.is_relative_to(ROOT / "correlate")
        and not p.is_relative_to(ROOT / "correlate" / "store")
    ],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_core_reads_no_clock_and_does_no_io(path: Path) -> None:
    for name in _imports(path):
        assert name.split(".")[0] not in FORBIDDEN_IN_CORE, f"{path.name} imports {name}"


def test_wire_loads_nothing_else_of_ours() -> None:
    import subprocess

    code = f"import sys, stormwatch.wire; print(sorted(m for m in sys.modules if m.split('.')[0] in {OURS!r}))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.strip() == "['stormwatch', 'stormwatch.wire']"


def test_our_rules_package_is_the_one_imported() -> None:
    """`rules` and `correlate` are also names on PyPI; ours must win in this install."""
    import correlate
    import rules

    assert Path(rules.__file__).resolve().is_relative_to(ROOT)
    assert Path(correlate.__file__).resolve().is_relative_to(ROOT)


@pytest.mark.parametrize("package", sorted(OURS - {"stormwatch"}))
def test_public_names_are_what_all_lists(package: str) -> None:
    """Each package's `__all__` names exist, and nothing public is left out of it."""
    import importlib

    mod = importlib.import_module(package)
    exported = set(mod.__all__)
    assert all(hasattr(mod, name) for name in exported)
    public = {
        n for n in vars(mod) if not n.startswith("_") and not isinstance(getattr(mod, n), type(sys))
    }
    public -= {"annotations", "TypeAlias", "TYPE_CHECKING"}
    assert public <= exported, f"{package} exposes {sorted(public - exported)} outside __all__"
