"""Helpers of the monitoring roles' tests: the real validators (promtool, amtool, the blackbox
exporter), skipped only when the tool is missing (scripts/install-system-deps installs them,
CI included), and the prod inventory, typed."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (scripts/install-system-deps installs it)")
    return path


def run_tool(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=cwd,
                          check=False)
