"""The layers of DESIGN.md, enforced: backends/ never pulls in the UI, panels/ do no I/O,
and import-linter's contracts (pyproject.toml) hold.

Every module under backends/ is imported in a fresh interpreter (so nothing imported by
other tests can hide or fake a dependency) and must leave `textual` and `rich` out of
`sys.modules`. Modules are discovered from the tree, so a new module is covered the
moment it is added.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ROOT / "backends"
PANELS = ROOT / "panels"

#: Prints True when importing module ``name`` loaded Textual or Rich. Click is hidden first:
#: only the test tools bring it (import-linter), and with click installed httpx imports its
#: command-line module and Rich with it; an install of opsconsole itself has no click.
PROBE = (
    "import importlib, sys; sys.modules['click'] = None; importlib.import_module(name); "
    "print(any(m == 'textual' or m.startswith('textual.') or m == 'rich' or m.startswith('rich.') "
    "for m in sys.modules))"
)

#: What a panel must never import: it renders snapshots, the backends do the I/O.
PANEL_FORBIDDEN = frozenset({"psutil", "sqlite3", "socket", "subprocess"})


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules_under(package: Path) -> list[str]:
    return sorted(
        module_name(path)
        for path in package.rglob("*.py")
        if "__pycache__" not in path.parts and not path.name.startswith(".")
    )


def imports_ui(name: str) -> bool:
    """Import ``name`` in a fresh interpreter and report whether Textual or Rich came along."""
    result = subprocess.run(
        [sys.executable, "-c", f"name = {name!r}; {PROBE}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"importing {name} failed:\n{result.stderr}"
    verdict = result.stdout.strip().splitlines()[-1]
    assert verdict in {"True", "False"}, f"unexpected probe output: {result.stdout!r}"
    return verdict == "True"


def forbidden_imports(source: str, forbidden: frozenset[str]) -> list[str]:
    """Top-level package names from ``forbidden`` that ``source`` imports (absolute imports)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.split(".")[0] in forbidden]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] in forbidden:
                found.append(node.module)
    return found


BACKEND_MODULES = modules_under(BACKENDS)
PANEL_FILES = sorted(p for p in PANELS.rglob("*.py") if "__pycache__" not in p.parts)


def test_discovery_finds_the_backend_modules() -> None:
    assert {"backends", "backends.collector", "backends.jsonable"} <= set(BACKEND_MODULES)


@pytest.mark.parametrize("name", BACKEND_MODULES)
def test_backend_module_does_not_import_textual_or_rich(name: str) -> None:
    assert not imports_ui(name), f"{name} imports textual or rich (directly or through a dependency)"


def test_probe_detects_a_ui_import() -> None:
    """The probe itself works: importing Textual is reported."""
    assert imports_ui("textual") is True
    assert imports_ui("json") is False


@pytest.mark.parametrize("path", PANEL_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_panel_does_no_io_imports(path: Path) -> None:
    found = forbidden_imports(path.read_text(encoding="utf-8"), PANEL_FORBIDDEN)
    assert found == [], f"{path.relative_to(ROOT)} imports {found}: panels render snapshots only"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import psutil", ["psutil"]),
        ("import os, socket as s", ["socket"]),
        ("from subprocess import run", ["subprocess"]),
        ("import sqlite3.dbapi2", ["sqlite3.dbapi2"]),
        ("def f():\n    import psutil\n", ["psutil"]),
        ("from . import socket", []),  # a sibling module of that name is not the stdlib one
        ("import socketserver, psutilx", []),
        ("from backends.collector import Snapshot", []),
    ],
)
def test_forbidden_import_scanner(source: str, expected: list[str]) -> None:
    assert forbidden_imports(source, PANEL_FORBIDDEN) == expected


def test_the_program_entry_point_imports_nothing_else() -> None:
    """Every spawned PCAP scan worker re-imports the program's main script (the `opsconsole`
    script imports console.__main__): whatever that pulls in, each worker pays for again."""
    probe = ("import sys, console.__main__; print(sorted(m for m in ('console.cli', 'console.collectors', "
             "'asyncio', 'psycopg', 'httpx', 'textual') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_command_line_module_leaves_the_backends_for_later() -> None:
    """`opsconsole --help` and `config` need none of the panels' backends."""
    probe = "import sys, console.cli; print(sorted(m for m in ('console.collectors', 'psycopg', 'httpx', 'textual') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_collectors_without_a_sessions_registry_load_no_database_or_http_client() -> None:
    """`opsconsole snapshot` on a host with no [sessions] url carries neither psycopg nor httpx."""
    probe = ("import sys; from console.collectors import build_collectors; from console.config import Config; "
             "build_collectors(Config()); print(sorted(m for m in ('psycopg', 'httpx') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    """import-linter over the tree at ``cwd``, with the contracts of its pyproject.toml."""
    script = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(script), "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(cwd)})


def test_the_import_contracts_hold() -> None:
    """DESIGN.md "Layout": layers, resources independent, resources reached through their faces."""
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


#: An import that breaks each contract, and the file it is added to.
VIOLATIONS = {
    "Layers": ("backends/rows.py", "import panels.status"),
    "Backends never import the UI": ("backends/host.py", "import rich"),
    "independent": ("backends/pcap/model.py", "import backends.ports.model"),
    "face": ("panels/status.py", "from backends.pcap.scan import ScanPool"),
}


def test_each_import_contract_catches_its_violation(tmp_path: Path) -> None:
    """The contracts are not vacuous: a copy of the tree with one bad import per contract breaks all four."""
    for package in ("console", "panels", "backends"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    for path, line in VIOLATIONS.values():
        with (tmp_path / path).open("a", encoding="utf-8") as source:
            source.write(f"\n{line}\n")
    result = lint_imports(tmp_path)
    report = result.stdout
    assert result.returncode == 1 and "Contracts: 0 kept, 4 broken." in report, report
    for path, line in VIOLATIONS.values():
        importer = path.removesuffix(".py").replace("/", ".")
        assert importer in report, f"{importer} not reported:\n{report}"
