"""No module over about 400 lines (issue 12): a module that grows past it holds more than one
job and should be split by family, as audit/checks/ was. Tests, benchmarks' fixtures and
generated files are not counted; the limit leaves a little room over 400 so a comment does
not break the build, not so much that a second job fits."""
from __future__ import annotations

from pathlib import Path

from tests.unit.test_imports import PACKAGES, ROOT

MAX_LINES = 430


def long_modules(root: Path, packages: tuple[str, ...] = PACKAGES,
                 limit: int = MAX_LINES) -> dict[str, int]:
    """{path: lines} of the repository's modules longer than `limit`."""
    out = {}
    for pkg in packages:
        for path in (root / pkg).rglob("*.py"):
            lines = len(path.read_text().splitlines())
            if lines > limit:
                out[str(path.relative_to(root))] = lines
    return out


def test_long_modules_repository_none() -> None:
    assert long_modules(ROOT) == {}


def test_long_modules_module_over_limit_found(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "big.py").write_text("x = 1\n" * 431)
    (tmp_path / "pkg" / "small.py").write_text("x = 1\n" * 430)
    assert long_modules(tmp_path, ("pkg",)) == {"pkg/big.py": 431}
