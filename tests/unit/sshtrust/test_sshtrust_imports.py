"""sshtrust's internal import graph has no cycle (issue 12: the certificate <-> keys circle)."""

from __future__ import annotations

import ast
from pathlib import Path

import sshtrust

PACKAGE = Path(sshtrust.__file__).parent


def internal_imports(path: Path) -> set[str]:
    """Modules of this package that ``path`` imports, at any level (function-local too)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                out.add(node.module.split(".")[0])
            elif node.level == 1:
                out.update(a.name for a in node.names)
            elif node.module and node.module.startswith("sshtrust."):
                out.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            out.update(a.name.split(".")[1] for a in node.names if a.name.startswith("sshtrust."))
    return out


def test_internal_imports_no_cycle() -> None:
    graph = {p.stem: internal_imports(p) for p in PACKAGE.glob("*.py")}
    assert graph["keys"] <= {"_run", "_wire"}, graph["keys"]  # the old circle's other half
    done: set[str] = set()

    def visit(mod: str, path: tuple[str, ...]) -> None:
        assert mod not in path, f"import cycle: {' -> '.join((*path, mod))}"
        if mod in done:
            return
        for dep in graph.get(mod, ()):
            visit(dep, (*path, mod))
        done.add(mod)

    for mod in graph:
        visit(mod, ())
