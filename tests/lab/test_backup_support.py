"""Shared set-up of the backup lab tests (no tests here): the web tier (test_web_support),
then `fab backup.setup` (storage role, backup role, certificates, passwords, repositories),
once per lab session; helpers to run the runner on a web host and restic on a storage server.
"""
from __future__ import annotations

import json
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.testing import LabSession

from .test_web_support import WebTier, lab_env, web_tier  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "unit" / "backup_run"))  # resticfast (test keys)

from roles.backup.layout import PYTHON, RUNNER_DIR, BackupLayout  # noqa: E402


@dataclass
class Chain:
    lab: LabSession
    tier: WebTier
    setup_seconds: float

    def inv(self) -> dict[str, Any]:
        return self.lab.inventory

    def web(self, site: str) -> str:
        return self.tier.host_of(site)

    def storage(self, tier: str) -> str:
        return str(self.inv()["storage"][tier])

    def root(self, host: str) -> Path:
        """The host's filesystem as seen from this machine (the overlay mount)."""
        return Path(self.lab.lab.container(host).root)

    def run_backup(self, site: str, *args: str, timeout: float = 600
                   ) -> subprocess.CompletedProcess[str]:
        """The runner as its timer starts it (as root), with extra arguments."""
        argv = ["env", f"PYTHONPATH={RUNNER_DIR}", PYTHON, "-m", "backup.run", "--site", site,
                *args]
        return self.lab.root_exec(self.web(site), argv, check=False, timeout=timeout)

    def rotate(self, site: str, tier: str, *args: str, timeout: float = 600
               ) -> subprocess.CompletedProcess[str]:
        """The storage server's rotation, as its timer runs it (the site's storage user)."""
        lay = BackupLayout(site)
        argv = ["runuser", "-u", lay.storage_user, "--", "env", f"PYTHONPATH={RUNNER_DIR}",
                PYTHON, "-m", "backup.rotate", "--site", site, *args]
        return self.lab.root_exec(self.storage(tier), argv, check=False, timeout=timeout)

    def restic(self, site: str, tier: str, *args: str, timeout: float = 300
               ) -> subprocess.CompletedProcess[str]:
        """restic on the repository itself (local on the web host, A/B on their server)."""
        lay = BackupLayout(site)
        if tier == "local":
            host, repo, pw, user = self.web(site), lay.local_repo, lay.password, "root"
        else:
            host, repo, pw = self.storage(tier), lay.storage_repo, lay.storage_password
            user = lay.storage_user
        argv = ["runuser", "-u", user, "--", "env", "TZ=UTC", "restic", "--repo", repo,
                "--password-file", pw, "--no-cache", *args]
        return self.lab.root_exec(host, argv, check=False, timeout=timeout)

    def snapshots(self, site: str, tier: str) -> list[dict[str, Any]]:
        proc = self.restic(site, tier, "--no-lock", "snapshots", "--json")
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout) or []

    def status(self, site: str) -> dict[str, Any]:
        path = self.root(self.web(site)) / BackupLayout(site).state.lstrip("/") / "status.json"
        return json.loads(path.read_text())

    def tags_of_next_backup(self, site: str) -> list[str]:
        """The rotation tags the runner will give a backup of `site` taken now (backup.tags on
        the local tier's snapshots, with the site's own policy). Every backup of a day that
        began weekly or monthly goes to B too; after local midnight the day's first backup
        is a plain daily, so tests that may straddle midnight read this instead of assuming."""
        from datetime import UTC, datetime

        from backup.config import parse
        from backup.tags import tags_for_new_snapshot
        from backup.take import series

        lay = BackupLayout(site)
        cfg = parse(json.loads((self.root(self.web(site)) / lay.config.lstrip("/")).read_text()))
        own = series(self.snapshots(site, "local"), cfg.host)
        return tags_for_new_snapshot(own, datetime.now(UTC), cfg.policy)

    def sh(self, host: str, script: str, timeout: float = 600
           ) -> subprocess.CompletedProcess[str]:
        return self.lab.root_exec(host, ["sh", "-c", script], check=False, timeout=timeout)

    def fast_keys(self, site: str) -> None:
        """Test repositories only: re-encrypt the keys with a weak KDF (resticfast)."""
        from resticfast import make_fast

        lay = BackupLayout(site)
        password = (self.root(self.web(site)) / lay.password.lstrip("/")).read_text().strip()
        make_fast(self.root(self.web(site)) / lay.local_repo.lstrip("/"), password.encode())
        for tier in ("a", "b"):
            make_fast(self.root(self.storage(tier)) / lay.storage_repo.lstrip("/"),
                      password.encode())


_CHAINS: dict[int, Chain] = {}


def backup_chain(lab: LabSession) -> Chain:
    """The web tier plus `fab backup.setup`, once per lab session."""
    import time

    if id(lab) in _CHAINS and not lab.is_down:
        return _CHAINS[id(lab)]
    tier = web_tier(lab)
    from tasks.backup_setup import run_setup

    from .test_web_support import deploy

    # The storage servers with their baseline (firewall, sshd), as `fab deploy` leaves them.
    report = deploy(lab, [h for h in lab.hosts_with_role("storage")])
    assert report.ok, [r.error or [o.error for o in r.outcomes if not o.ok]
                       for r in report.results if not r.ok]

    t0 = time.monotonic()
    lines: list[str] = []
    with lab_env(lab):
        run_setup("lab", emit=lines.append)
    chain = Chain(lab, tier, time.monotonic() - t0)
    chain.setup_lines = lines  # type: ignore[attr-defined]
    _CHAINS[id(lab)] = chain
    return chain


def q(*argv: str) -> str:
    return shlex.join(argv)
