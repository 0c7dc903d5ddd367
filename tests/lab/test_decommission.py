"""`fab decommission` in the lab (issue 16, R-GDPR-8): participation is deleted everywhere while
villeparisis stays untouched and keeps passing `fab verify`.

conftest runs this module after every other one and before test_teardown.py: it destroys a site
of the shared lab. participation, because the lab gives the sites their public IPs by their
position in the stack: removing the last one leaves villeparisis' address as it is.

One run of the command in its default mode (backups kept append-only until their expiry):
afterwards the site's IP serves nothing, its database, files, keys and local repository are
absent, a `fab deploy` run before the model changes cannot set it up again (the host is out of
reach, and its tombstone stops the web role), its backup certificate is revoked on every host,
its repositories on A and B stay with their purge scheduled on the storage servers' own timer;
that timer's command, run with a clock past the date on backup-a, purges A. Then the model
change the report prints is applied to the lab (its stack file without the site: `lab up`
removes the web host), `fab deploy` converges without the site and `fab verify` passes for what
is left."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from lab.lab import Lab
from lab.testing import LabSession
from model.bootstrap import KRL
from roles.backup.layout import BackupLayout
from sshtrust import ca
from tasks.decommission_plan import inventory_without, model_without
from tasks.decommission_run import Options, run_decommission

from .test_backup_support import Chain, backup_chain, lab_env
from .test_web_support import REPO

pytestmark = pytest.mark.lab
GONE, KEPT = "participation", "villeparisis"


@pytest.fixture
def chain(lab: LabSession) -> Chain:
    return backup_chain(lab)


def sh(chain: Chain, host: str, script: str) -> subprocess.CompletedProcess[str]:
    return chain.sh(host, script)


def test_backup_setup_resign_revokes_the_replaced_certificate_on_every_host(
        chain: Chain, tmp_path: Path) -> None:
    """`fab backup.setup` re-signing participation's backup key (its certificate replaced here
    by one for another source address: a reason to re-sign) puts the replaced certificate in
    the user KRL on every host; the next backup goes through with the new one."""
    from tasks.backup_setup import run_setup

    lab, web, lay = chain.lab, chain.web(GONE), BackupLayout(GONE)
    ca_dir = Path(lab.inventory["ssh"]["ca_dir"])
    pub = tmp_path / "backup.pub"
    pub.write_text((chain.root(web) / lay.ssh_pub.lstrip("/")).read_text())
    wrong = ca.sign_user_key(ca_dir / "user_ca", pub, "test-another-source", [lay.principal],
                             ttl=timedelta(days=1),
                             options=(f"force-command={lay.forced_command()}",
                                      "source-address=10.255.255.1/32"))
    (chain.root(web) / lay.ssh_cert.lstrip("/")).write_text(wrong.read_text())
    lines: list[str] = []
    with lab_env(lab):
        run_setup("lab", sites=GONE, emit=lines.append)
    assert any("revoked the previous backup-participation certificate" in line
               for line in lines), lines
    krl = ca_dir / "user_ca.krl"
    assert ca.is_revoked(krl, wrong)
    for host in lab.hosts:
        assert (chain.root(host) / KRL.lstrip("/")).read_bytes() == krl.read_bytes(), host
    backup = chain.run_backup(GONE)
    assert backup.returncode == 0, backup.stderr


def test_decommission_participation_deletes_it_everywhere_and_leaves_villeparisis(
        chain: Chain, tmp_path: Path) -> None:
    lab = chain.lab
    inv = lab.inventory
    site = next(s for s in inv["sites"] if s["name"] == GONE)
    web, kept_web = chain.web(GONE), chain.web(KEPT)
    lay = BackupLayout(GONE)
    a, b = chain.storage("a"), chain.storage("b")
    cert = tmp_path / "backup-cert.pub"  # the site's backup certificate, to check its revocation
    cert.write_text((chain.root(web) / lay.ssh_cert.lstrip("/")).read_text())
    # What the live site's own cron does not change: its tables, its tree, its keys, its
    # private files' mount (the cron writes into private/ every few minutes).
    kept_state = (f"mariadb --protocol=socket -N -e 'SHOW TABLES FROM `{KEPT}`' && "
                  f"ls /srv/{KEPT} /etc/hosting/{KEPT} && mountpoint /srv/{KEPT}/private")
    kept_before = sh(chain, kept_web, kept_state)
    assert kept_before.returncode == 0 and kept_before.stdout.strip(), kept_before.stderr
    kept_snapshots = {t: len(chain.snapshots(KEPT, t)) for t in ("a", "b")}
    expected_doc = inventory_without(inv, GONE)

    out = tmp_path / "report"
    lines: list[str] = []
    t0 = time.monotonic()
    with lab_env(lab):
        with pytest.raises(Exception, match="not confirmed"):
            run_decommission(Options("lab", GONE, out=str(out)), confirm=lambda _p: "nope",
                             emit=lines.append)
        report = run_decommission(Options("lab", GONE, out=str(out)),
                                  confirm=lambda _p: site["domain"], emit=lines.append)
    seconds = time.monotonic() - t0
    print("\n".join(lines))
    doc = json.loads((out / "decommission.json").read_text())
    md = (out / "decommission.md").read_text()
    print(md)
    print(f"decommission: {seconds:.1f} s")
    assert report.ok and doc["ok"], doc["errors"]
    assert "## Checks that it is gone" in md and "-    - name: participation" in md

    # The site's IP serves nothing; its web host holds none of its data.
    check = next(s for s in doc["stages"] if s["stage"] == "check")
    assert check["ok"] and "open" not in check["detail"], check
    gone = sh(chain, web, f"""
test ! -e /srv/{GONE} && test ! -e /etc/hosting/{GONE} && test ! -e {lay.local_repo}
test ! -e /var/lib/hosting/release-db/{GONE} && test ! -e {lay.password}
! getent passwd {GONE} && ! systemctl is-active -q nginx
test -z "$(mariadb --protocol=socket -N -e "SHOW DATABASES LIKE '{site['database']}%'")"
""")
    assert gone.returncode == 0, gone.stdout + gone.stderr

    # A deploy run before the model loses the site does not set it up again, empty: the host
    # is out of reach (its host certificate revoked, the bastion no longer forwards to it);
    # were it reachable again (a new host certificate), the web role's first check would find
    # the decommission's tombstone and stop that host's run, naming it.
    from roles.web.role import decommission_guard
    from tasks.deploy import run_deploy
    with lab_env(lab):
        again = run_deploy("lab", hosts=web, emit=lambda _m: None)
    assert not again.ok, [r.outcomes for r in again.results]
    guard = sh(chain, web, decommission_guard(GONE).check[-1])
    assert guard.returncode == 4 and f"{GONE} was decommissioned here" in guard.stderr, guard
    assert sh(chain, web, f"test ! -e /srv/{GONE} && ! getent passwd {GONE}").returncode == 0
    # The same on the proxy and ops, which stay reachable: their tombstones (written before
    # they were converged without the site) stop a deploy with the old model before the site
    # gets back a vhost, its address or monitoring targets (roles/decommissioned.py).
    proxy = next(h["name"] for h in inv["hosts"] if h["role"] == "proxy")
    for host in (proxy, inv["bastion"]):
        assert (chain.root(host) / f"var/lib/hosting/decommissioned/{GONE}.json").exists(), host
    with lab_env(lab):
        again = run_deploy("lab", hosts=f"{proxy},{inv['bastion']}", emit=lambda _m: None)
    why = {r.host: f"{r.error} " + " ".join(str(o.error) for o in r.outcomes if not o.ok)
           for r in again.results}
    assert all(f"{GONE} was decommissioned here" in why[h] for h in (proxy, inv["bastion"])), why
    assert site["public_ip"] not in sh(chain, proxy, "ip -o -4 addr show").stdout
    assert site["domain"] not in (chain.root(proxy) / "etc/nginx/nginx.conf").read_text()

    # Its backup certificate is revoked, and every host has that KRL.
    krl = Path(inv["ssh"]["ca_dir"]) / "user_ca.krl"
    assert ca.is_revoked(krl, cert)
    for host in (a, b, inv["bastion"], kept_web):
        assert (chain.root(host) / KRL.lstrip("/")).read_bytes() == krl.read_bytes(), host

    # Backups: kept on A and B, their purge scheduled; the storage timer's command purges A
    # once its clock passes the date.
    for tier, host in (("a", a), ("b", b)):
        assert (chain.root(host) / lay.storage_repo.lstrip("/") / "config").exists(), tier
        sched = json.loads((chain.root(host) / "etc/hosting/backup-storage/purge"
                            / f"{GONE}.json").read_text())
        assert sched["purge_at"] == doc["backups"][tier]["purge_at"]
        assert not (chain.root(host) / f"etc/ssh/auth_principals/backup-{GONE}").exists()
        assert not (chain.root(host) / "var/lib/prometheus/node-exporter"
                    / f"hosting_backup_{GONE}_{tier}.prom").exists(), "metrics left: BackupStale"
        timer = sh(chain, host, "systemctl is-enabled hosting-backup-purge.timer")
        assert timer.stdout.strip() == "enabled", timer.stdout + timer.stderr
    due = datetime.fromisoformat(doc["backups"]["a"]["purge_at"].replace("Z", "+00:00"))
    early = sh(chain, a, f"PYTHONPATH=/usr/local/lib/hosting/backup-runner python3 -m "
                         f"backup.decommission purge-due --now "
                         f"{(due - timedelta(days=1)).isoformat()}")
    assert early.returncode == 0 and json.loads(early.stdout)["purged"] == [], early.stdout
    purged = sh(chain, a, f"PYTHONPATH=/usr/local/lib/hosting/backup-runner python3 -m "
                          f"backup.decommission purge-due --now {due.isoformat()}")
    assert purged.returncode == 0, purged.stdout + purged.stderr
    assert not (chain.root(a) / lay.storage_home.lstrip("/")).exists()
    assert (chain.root(a) / f"var/lib/hosting/backup/purged/{GONE}.json").exists()
    assert (chain.root(b) / lay.storage_repo.lstrip("/") / "config").exists()

    # The other site: untouched.
    assert sh(chain, kept_web, kept_state).stdout == kept_before.stdout
    assert {t: len(chain.snapshots(KEPT, t)) for t in ("a", "b")} == kept_snapshots

    # The model change, applied to the lab as `pulumi up` would to OVH: the web host goes,
    # the inventory is the one the command converged the proxy and ops to.
    # In the lab's state directory, not tmp_path: the lab's saved configuration names it, and
    # the teardown tests' `python -m lab up` read it after this test.
    stack = lab.lab.cfg.state_dir / f"Pulumi.without-{GONE}.yaml"
    stack.write_text(model_without(lab.lab.cfg.stack_file.read_text(), GONE))
    lab.lab = Lab(dataclasses.replace(lab.lab.cfg, stack_file=stack))
    up = lab.lab.up()
    lab._inventory = None
    assert any(f"{web}: removed" in c for c in up.changes), up.changes
    new = lab.inventory
    assert [s["name"] for s in new["sites"]] == [s["name"] for s in expected_doc["sites"]]
    assert [h["name"] for h in new["hosts"]] == [h["name"] for h in expected_doc["hosts"]]

    with lab_env(lab):
        deployed = run_deploy("lab", emit=lambda _m: None)
        assert deployed.ok, [f"{r.host}: {r.error}" for r in deployed.results if not r.ok]
        proc = subprocess.run(
            [sys.executable, "-m", "fabric", "verify", "--env", "lab", "--out",
             str(tmp_path / "verify")], cwd=REPO, capture_output=True, text=True,
            timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    print(f"fab verify after decommission: {proc.stdout.strip().splitlines()[-1]}; "
          f"deploy changed {sum(r.changed for r in deployed.results)}")

