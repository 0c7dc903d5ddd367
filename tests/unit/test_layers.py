"""Roles are pure and the engine knows no lab (issue 12): no module under roles/ or engine/
imports lab/ (the lab provides its certificates and access through the inventory, as OVH
does), and no role writes a file on the admin's disk (a role returns desired state; reading its
inputs is fine). Imports inside functions count too: the walk covers the whole tree."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Calls that change the admin's disk. Reading (read_text, read_bytes, open(..., "rb")) is fine.
WRITING_METHODS = {"write_text", "write_bytes", "mkdir", "makedirs", "touch", "unlink", "rmdir",
                   "rename", "chmod", "chown", "symlink_to", "hardlink_to", "rmtree", "copy2",
                   "copyfile", "copytree"}  # not replace/remove/copy: str, list and dict have them


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def lab_imports(tree: ast.AST) -> list[str]:
    """`lab` or `lab.x` imported anywhere in the module (top level or inside a function)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "lab"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] == "lab":
                found.append(node.module)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name | ast.Attribute)
              and getattr(node.func, "id", getattr(node.func, "attr", "")) in
              ("__import__", "import_module")
              and node.args and isinstance(node.args[0], ast.Constant)
              and str(node.args[0].value).split(".")[0] == "lab"):
            found.append(str(node.args[0].value))
    return found


def _open_mode(call: ast.Call) -> str:
    mode = call.args[1] if len(call.args) > 1 else next(
        (k.value for k in call.keywords if k.arg == "mode"), None)
    return str(mode.value) if isinstance(mode, ast.Constant) else "r"


def disk_writes(tree: ast.AST) -> list[str]:
    """Calls that write, create or delete files: open() for writing, os.open, Path writers."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id == "open" and set(_open_mode(node)) & set("wax+"):
            found.append(f"line {node.lineno}: open(..., {_open_mode(node)!r})")
        elif isinstance(func, ast.Attribute) and (
                func.attr in WRITING_METHODS
                or (func.attr == "open" and isinstance(func.value, ast.Name)
                    and func.value.id == "os")):
            found.append(f"line {node.lineno}: .{func.attr}()")
    return found


@pytest.mark.parametrize("package", ["roles", "engine"])
def test_lab_imports_roles_and_engine_none(package: str) -> None:
    offenders = {str(p.relative_to(ROOT)): lab_imports(ast.parse(p.read_text()))
                 for p in modules(package)}
    assert modules(package)
    assert {k: v for k, v in offenders.items() if v} == {}


def test_disk_writes_roles_none() -> None:
    offenders = {str(p.relative_to(ROOT)): disk_writes(ast.parse(p.read_text()))
                 for p in modules("roles")}
    assert {k: v for k, v in offenders.items() if v} == {}


@pytest.mark.parametrize("source", [
    "import lab", "import lab.tls as t", "from lab import tls", "from lab.config import x",
    "def f():\n    from lab.lab import Lab\n", "importlib.import_module('lab.config')",
])
def test_lab_imports_any_form_found(source: str) -> None:
    assert lab_imports(ast.parse(source))


@pytest.mark.parametrize("source", [
    "import labels", "from .lab import x", "from roles.lab_x import y", "import model.lab",
])
def test_lab_imports_other_names_not_found(source: str) -> None:
    assert lab_imports(ast.parse(source)) == []


@pytest.mark.parametrize("source", [
    "open(p, 'w')", "open(p, mode='ab')", "p.write_bytes(b'')", "d.mkdir(parents=True)",
    "os.open(p, os.O_WRONLY)", "shutil.rmtree(d)", "tmp.rename(p)",
])
def test_disk_writes_writing_call_found(source: str) -> None:
    assert disk_writes(ast.parse(source))


@pytest.mark.parametrize("source", [
    "open(p)", "open(p, 'rb')", "p.read_bytes()", "Path(s).read_text()", "os.path.join(a, b)",
])
def test_disk_writes_reading_call_not_found(source: str) -> None:
    assert disk_writes(ast.parse(source)) == []
