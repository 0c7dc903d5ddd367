"""The code that runs on the hosts imports nothing but the standard library and its own code.

The hosts run Debian's python3 and nothing else (docs/architecture.md): onhost/agent.py is sent
alone over SSH (engine/remote.py), onhost/web/ is copied as a directory whose modules import
each other by bare name (roles/web/role.py), backup/ is copied as the `backup` package
(roles/backup/role.py). Every import counts, also those inside functions.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
ONHOST_DIRS = ("onhost", "backup")
MODULES = sorted(p for d in ONHOST_DIRS for p in (REPO / d).rglob("*.py")
                 if "__pycache__" not in p.parts)


def foreign_imports(source: str, siblings: set[str], package: str | None) -> list[str]:
    """The top-level names `source` imports that are neither stdlib, nor a sibling module
    (same directory), nor `package` (the package it is shipped as, if any)."""
    allowed = set(sys.stdlib_module_names) | siblings | ({package} if package else set())
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue  # relative imports stay inside the package
        found += [n for n in names if n.split(".")[0] not in allowed]
    return found


def _check(path: Path) -> list[str]:
    siblings = {p.stem for p in path.parent.glob("*.py")}
    package = "backup" if path.relative_to(REPO).parts[0] == "backup" else None
    return foreign_imports(path.read_text(), siblings, package)


def test_modules_found_under_onhost_and_backup_cover_agent_helper_and_runner() -> None:
    names = {p.relative_to(REPO).as_posix() for p in MODULES}
    assert {"onhost/agent.py", "onhost/web/__main__.py", "backup/run.py"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_foreign_imports_onhost_module_imports_only_stdlib_or_own_package(path: Path) -> None:
    assert _check(path) == []


def test_foreign_imports_third_party_inside_function_is_reported() -> None:
    source = ("import json\nfrom . import x\n"
              "def f():\n    import yaml\n    from engine.role import Desired\n")
    assert foreign_imports(source, {"hw_util"}, None) == ["yaml", "engine.role"]


def test_foreign_imports_sibling_and_own_package_are_allowed() -> None:
    source = "import hw_util\nfrom backup.restic import Restic\nfrom os import path\n"
    assert foreign_imports(source, {"hw_util"}, "backup") == []
