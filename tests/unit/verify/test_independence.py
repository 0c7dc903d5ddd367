"""The verify suite grades independently of the deployer (issue 17): no module of tests/verify
imports the code that produced the hosts' configuration (roles/, engine/, the host helpers in
onhost/ and backup/, the fab tasks), at top level or inside a function, nor adds their
directories to sys.path; so a bug there cannot pass in both."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

SUITE = Path(__file__).resolve().parents[3] / "tests" / "verify"
DEPLOYER = {"roles", "engine", "onhost", "backup", "tasks", "hw_db", "model"}


def deployer_imports(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in DEPLOYER]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and \
                node.module.split(".")[0] in DEPLOYER:
            found.append(node.module)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr in ("insert", "append", "extend") and \
                ast.unparse(node.func.value) == "sys.path":
            found.append(f"line {node.lineno}: sys.path changed")
    return found


@pytest.mark.parametrize("path", sorted(SUITE.glob("*.py")), ids=lambda p: p.name)
def test_verify_module_imports_nothing_of_the_deployer(path):
    assert deployer_imports(ast.parse(path.read_text())) == []


def test_deployer_imports_finds_an_import_inside_a_function():
    tree = ast.parse("def f():\n    from roles.base import firewall\n    import engine.x\n"
                     "sys.path.insert(0, str(REPO / 'onhost' / 'web'))\n")
    assert deployer_imports(tree) == ["roles.base", "engine.x", "line 4: sys.path changed"]
