"""Fixtures for the backup runner's tests: a real restic 0.18, real rclone append-only
repositories in a temp directory, created once per session (with fast keys) and copied for
each test."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
for _path in (str(REPO), str(HERE)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import pytest  # noqa: E402
from backup_run_helpers import PASSWORD, Site, build_site, find_restic  # noqa: E402


@pytest.fixture(scope="session")
def restic_bin() -> str:
    binary = find_restic()
    if binary is None:
        pytest.skip("no restic >= 0.17 (tests/unit/backup_run/fetch-restic could not fetch it)")
    if shutil.which("rclone") is None:
        pytest.skip("rclone is not installed (scripts/install-system-deps installs it)")
    return binary


@pytest.fixture(scope="session")
def template_site(tmp_path_factory: pytest.TempPathFactory, restic_bin: str) -> Site:
    """A site whose three repositories exist, created by the runner's own `--init` (A and B
    through the append-only server), then given fast keys (resticfast)."""
    from resticfast import make_fast

    site = build_site(tmp_path_factory.mktemp("template") / "site", restic_bin)
    proc = subprocess.run(
        [sys.executable, "-m", "backup.run", "--site", "demo", "--config", str(site.config_path),
         "--init"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for tier in ("local", "a", "b"):
        make_fast(site.repo_dir(tier), PASSWORD.encode())
    return site


@pytest.fixture(autouse=True)
def textfile_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Node exporter's textfile directory of the runs (backup.metrics): the test's own, never
    this machine's /var/lib/prometheus/node-exporter (the runners inherit the environment)."""
    path = tmp_path / "textfile"
    monkeypatch.setenv("HOSTING_TEXTFILE_DIR", str(path))
    return path


@pytest.fixture
def site(tmp_path: Path, template_site: Site) -> Site:
    """A fresh copy of the template site (repositories included) for one test."""
    root = tmp_path / "site"
    shutil.copytree(template_site.root, root, symlinks=True)
    new = build_site(root, template_site.restic)  # rewrites paths in scripts and config
    return new
