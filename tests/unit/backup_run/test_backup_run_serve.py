"""backup.serve, the storage server's forced command, against real restic and rclone: the
site's space limit on a storage server holds whatever its web host sends (issue 19, R-GDPR-4),
and a site over its limit can still be restored from."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from backup_run_helpers import REPO, Site

from backup.run import EXIT_OFFSITE_FAILED
from backup.serve import pump

DAY1 = "2025-01-05T03:15:00+01:00"
DAY2 = "2025-01-06T03:15:00+01:00"


def through_serve(site: Site, tier: str, quota_gb: float | None, allowance_mb: float) -> Path:
    """Make the tier's stand-in for sshd run backup.serve, as the storage server's principals
    file does, with this space limit."""
    cfg = json.loads(site.storage_config(tier).read_text())
    cfg["request_allowance_mb"] = allowance_mb
    if quota_gb is not None:
        cfg["quota_gb"] = quota_gb
    path = site.root / "etc" / f"serve-{tier}.json"
    path.write_text(json.dumps(cfg))
    ssh = site.root / "bin" / f"ssh-{tier}"
    ssh.write_text(f"#!/bin/sh\nPYTHONPATH={REPO} exec {sys.executable} -m backup.serve "
                   f"--site demo --config {path}\n")
    ssh.chmod(0o755)
    return site.root / f"storage-{tier}"


def test_serve_within_limit_backs_up_as_before(site: Site) -> None:
    through_serve(site, "a", quota_gb=1, allowance_mb=1)
    proc = site.run(DAY1)
    assert proc.returncode == 0, proc.stderr
    assert {k for s in site.snapshots("a") for k in s["tags"]} >= {"db", "files"}


def test_serve_past_limit_stops_the_session_records_it_and_spares_the_other_tier(
        site: Site) -> None:
    assert site.run(DAY1).returncode == 0
    state = through_serve(site, "a", quota_gb=0.0001, allowance_mb=0.5)  # ~100 kB + 0.5 MB
    (site.files / "big.bin").write_bytes(os.urandom(4 * 2**20))  # incompressible
    proc = site.run(DAY2)
    assert proc.returncode == EXIT_OFFSITE_FAILED, proc.stderr
    refusal = json.loads((state / "quota.json").read_text())
    assert refusal["quota_bytes"] == int(0.0001 * 2**30)
    days_b = {s["time"][:10] for s in site.snapshots("b")}
    days_local = {s["time"][:10] for s in site.snapshots("local")}
    assert "2025-01-06" in days_local and days_b <= days_local
    # Over its limit, the site can still be restored from A (reads are requests only).
    restore = site.restore("--from", "a")
    assert restore.returncode == 0, restore.stderr


def test_pump_stops_the_child_once_the_budget_is_spent(tmp_path: Path) -> None:
    (tmp_path / "in").write_bytes(b"x" * 300_000)
    out = tmp_path / "out"
    with open(tmp_path / "in", "rb") as source, open(out, "wb") as sink:
        child = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=sink)
        assert pump(source.fileno(), child, budget=100_000) == -1
        child.wait()
    assert out.stat().st_size <= 100_000


def test_pump_without_budget_copies_everything(tmp_path: Path) -> None:
    (tmp_path / "in").write_bytes(b"y" * 50_000)
    out = tmp_path / "out"
    with open(tmp_path / "in", "rb") as source, open(out, "wb") as sink:
        child = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=sink)
        assert pump(source.fileno(), child, budget=None) == 50_000
        child.wait()
    assert out.read_bytes() == b"y" * 50_000
