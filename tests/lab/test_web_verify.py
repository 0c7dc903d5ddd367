"""The whole verification suite (tests/verify: sshd, firewall, ssh-audit, nginx, PHP-FPM,
MariaDB) against the lab once the web tier is deployed and its sites released, as an admin
runs it against prod; and proof that the new checks fail when a host drifts, naming the
control, until the deploy puts the host back (R-GDPR-10: security auditable on request)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from lab.testing import LabSession, lab_env
from model.bootstrap import SSHD_DROPIN

from .test_web_support import REPO, WebTier, deploy, web_tier

pytestmark = pytest.mark.lab
VERIFY = REPO / "tests" / "verify"


@pytest.fixture
def tier(lab: LabSession) -> WebTier:
    """The web tier released, and the other hosts converged if they are still as first boot
    left them (the suite checks every host; the backup tests may have converged them with more
    roles than `deploy` has, which a second deploy here must not undo)."""
    tier = web_tier(lab)
    fresh = [h for h in lab.hosts if h not in lab.hosts_with_role("proxy", "web")
             and lab.run(h, f"test -e {SSHD_DROPIN}", check=False).returncode == 0]
    if fresh:
        report = deploy(lab, fresh)
        assert report.ok, [f"{r.host}: {r.error}" for r in report.results if not r.ok]
    return tier


def verify(lab: LabSession, *args: str) -> subprocess.CompletedProcess[str]:
    """`pytest tests/verify ...` against the lab's inventory and ssh_config, in a subprocess
    (as an admin runs it: its own session, its own testinfra connections)."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf", *args,
         "--inventory", str(lab.inventory_path), "--ssh-config", str(lab.ssh_config)],
        cwd=REPO, capture_output=True, text=True, timeout=900, check=False)


def test_whole_verification_suite_passes_on_the_deployed_lab(tier: WebTier,
                                                            tmp_path: Path) -> None:
    """Through `fab verify --env lab`, as an admin runs it against prod: its own ssh_config and
    known_hosts written from the inventory (not the lab's), then the whole suite."""
    with lab_env(tier.lab):
        proc = subprocess.run(
            [sys.executable, "-m", "fabric", "verify", "--env", "lab", "--out", str(tmp_path)],
            cwd=REPO, capture_output=True, text=True, timeout=900, check=False)
    assert (tmp_path / "ssh_config").read_text().startswith("# Written by `fab verify")
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    summary = proc.stdout.strip().splitlines()[-1]
    passed = int(re.search(r"(\d+) passed", summary).group(1))
    assert "skipped" not in summary and passed >= 400, summary
    print(f"tests/verify on the lab: {summary}")


def test_drift_on_a_web_host_fails_the_named_controls_until_redeployed(tier: WebTier) -> None:
    """server_tokens turned on in nginx.conf and an anonymous MariaDB account created by hand:
    nginx-05 and mysql-db-04 fail on that host (and only there); `fab deploy` of the host puts
    both back, and a `--check` run afterwards has nothing left to change."""
    lab, host = tier.lab, tier.host_of("villeparisis")
    modules = [str(VERIFY / "test_nginx.py"), str(VERIFY / "test_mariadb.py")]
    lab.sudo(host, "sed -i 's/server_tokens off;/server_tokens on;/' /etc/nginx/nginx.conf && "
                   "mariadb -e \"CREATE USER ''@'localhost'\"")
    try:
        broken = verify(lab, *modules)
        out = broken.stdout
        assert broken.returncode == 1, out[-4000:]
        failed = set(re.findall(r"^FAILED \S+::(\S+)", out, re.M))
        assert f"test_nginx_05_server_tokens_off[{host}]" in failed, out[-4000:]
        assert f"test_mysql_db_04_no_anonymous_account[{host}]" in failed
        assert "mysql-db-04: anonymous accounts exist: @localhost" in out
        assert all(host in name for name in failed), sorted(failed)  # the other hosts pass
    finally:
        report = deploy(lab, [host])
    assert report.ok, [f"{r.host}: {r.error}" for r in report.results if not r.ok]
    summaries = [a.summary for r in report.results if r.plan for a in r.plan.actions]
    assert any("nginx.conf" in s for s in summaries), summaries
    with lab_env(lab):
        from tasks.deploy import run_deploy

        check = run_deploy("lab", hosts=host, check=True, emit=lambda _m: None)
    assert check.ok and [r.changed for r in check.results] == [0]
    fixed = verify(lab, *modules, "-k", host)
    assert fixed.returncode == 0, fixed.stdout[-4000:]
