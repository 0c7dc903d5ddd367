"""No import circle (issue 12): the import graph of the repository's own modules, built with
ast from every `import` and `from ... import` (inside functions too: a lazy import that closes
a circle hides it, it does not remove it), has no cycle. The web helper's modules
(onhost/web/) import each other by bare name, as they do on the host."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("model", "infra", "policy", "lab", "engine", "roles", "tasks", "onhost", "backup",
            "sshtrust", "localcmd", "bench", "audit")
BARE_NAME_DIRS = ("onhost/web",)  # directories whose modules import siblings by bare name


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def repo_modules(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    found = {module_name(p, root): p for pkg in packages for p in (root / pkg).rglob("*.py")}
    if (root / "fabfile.py").exists():
        found["fabfile"] = root / "fabfile.py"
    return found


def imported(name: str, path: Path, tree: ast.AST, known: set[str], root: Path) -> set[str]:
    """The repository modules `name` (at `path`) imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    bare = {p.stem: module_name(p, root) for d in BARE_NAME_DIRS
            if path.parent == root / d for p in (root / d).glob("*.py")}
    out: set[str] = set()

    def add(target: str) -> None:
        target = bare.get(target, target)
        while target and target not in known:  # `import a.b.c`: the deepest module we have
            target = target.rpartition(".")[0]
        if target and target != name:
            out.add(target)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:  # `from pkg import submodule` imports the submodule
                sub = f"{source}.{alias.name}"
                add(sub if sub in known else source)
    return out


def import_graph(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    modules = repo_modules(root, packages)
    known = set(modules)
    return {name: imported(name, path, ast.parse(path.read_text(), str(path)), known, root)
            for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # recursion depth is bounded by the number of modules
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def test_import_graph_repository_has_no_cycle() -> None:
    graph = import_graph(ROOT)
    assert len(graph) > 100 and graph["engine.inventory"] >= {"localcmd", "model.inventory"}
    assert cycles(graph) == []


@pytest.mark.parametrize(("files", "expected"), [
    ({"a/__init__.py": "", "a/x.py": "from a import y\n", "a/y.py": "import a.x\n"},
     [["a.x", "a.y"]]),
    ({"a/__init__.py": "", "a/x.py": "from . import y\n",
      "a/y.py": "def f():\n    from .x import g\n"}, [["a.x", "a.y"]]),
    ({"a/__init__.py": "", "a/x.py": "from a.y import z\n", "a/y.py": "z = 1\n"}, []),
    ({"onhost/web/hw_a.py": "import hw_b\n", "onhost/web/hw_b.py": "from hw_a import c\n"},
     [["onhost.web.hw_a", "onhost.web.hw_b"]]),
])
def test_cycles_small_trees_found_exactly(tmp_path: Path, files: dict[str, str],
                                          expected: list[list[str]]) -> None:
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    assert cycles(import_graph(tmp_path, ("a", "onhost"))) == expected
