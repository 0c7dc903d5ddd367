"""A compromised web host against the backup chain (issue 19), on the shared lab: root on
web-participation, with only what is on that host (its backup key and certificate, the
repository password, its network position), the real SSH path to the append-only servers.

It forges snapshots (backdated, in the future, at year 0), adds a repository key and writes
past its space limit. Then the storage job runs cleanly and reports each anomaly, a restore
from A chooses the genuine backup (by arrival, `--before` the compromise), the other site's
backup still succeeds, and `fab backup.contain` leaves the attacker's identity unable to write
while the rebuilt host backs up with new credentials (R-INC-1, R-INC-4, R-GDPR-3, R-GDPR-4).
"""
from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from lab.testing import LabSession
from roles.backup.layout import BackupLayout

from .test_backup_support import Chain, backup_chain, lab_env

pytestmark = pytest.mark.lab
SITE = "participation"
OTHER = "villeparisis"
STOLEN = "/root/stolen"  # where the attacker keeps a copy of the host's backup identity


@pytest.fixture
def chain(lab: LabSession) -> Chain:
    return backup_chain(lab)


def attacker_restic(chain: Chain, args: str, ssh_config: str = "", password: str = "") -> str:
    """restic on the web host through its backup identity (or a stolen copy), as root there."""
    lay = BackupLayout(SITE)
    return (f"restic --repo rclone:{SITE} --password-file {password or lay.password} --no-cache "
            f"-o rclone.program=ssh -o 'rclone.args=-F {ssh_config or lay.ssh_config} "
            f"backup-a' {args}")


def stolen_ssh(chain: Chain) -> str:
    """The stolen identity alone at the storage server: sshd's verdict, 255 when refused."""
    proc = chain.sh(chain.web(SITE), f"ssh -F {STOLEN}/ssh_config backup-a true </dev/null "
                                     ">/dev/null 2>&1; echo rc=$?", timeout=120)
    return proc.stdout.strip()


def forge(chain: Chain, when: str, kind: str = "db") -> int:
    web = chain.web(SITE)
    proc = chain.sh(web, "echo forged | " + attacker_restic(
        chain, f"backup --host web-{SITE} --tag {kind} --time '{when}' --stdin "
               f"--stdin-filename {SITE}.sql") + " 2>&1", timeout=300)
    return proc.returncode


def junk_lock(chain: Chain) -> str:
    """A junk file in the repository's locks/ through the real path: the host's own SSH
    identity to the forced command, and restic's REST protocol (HTTP/2 over the session's
    stdio) spoken by hand, bridged by socat. Returns the HTTP status the server answered."""
    lay = BackupLayout(SITE)
    body = "not a restic lock\n"
    name = hashlib.sha256(body.encode()).hexdigest()
    proc = chain.sh(chain.web(SITE), (
        f"socat TCP-LISTEN:7797,bind=127.0.0.1,reuseaddr "
        f"EXEC:'ssh -F {lay.ssh_config} backup-a' & sleep 1; "
        f"printf '{body.strip()}\\n' | curl -s --max-time 60 --http2-prior-knowledge -o /dev/null "
        f"-w '%{{http_code}}' --data-binary @- http://127.0.0.1:7797/locks/{name}; "
        "kill %1 2>/dev/null; wait"), timeout=120)
    return proc.stdout.strip()


def storage_status(chain: Chain) -> dict:
    lay = BackupLayout(SITE)
    path = chain.root(chain.storage("a")) / lay.storage_state.lstrip("/") / "status.json"
    return json.loads(path.read_text())


def test_compromised_web_host_cannot_poison_restores_stall_rotation_or_keep_access(
        chain: Chain) -> None:
    lay = BackupLayout(SITE)
    web = chain.web(SITE)
    assert chain.run_backup(SITE).returncode == 0
    first = chain.rotate(SITE, "a")  # records the genuine arrival and the repository's keys
    assert first.returncode == 0, first.stderr
    genuine = {s["id"] for s in chain.snapshots(SITE, "a")}
    compromise = datetime.now(UTC)
    time.sleep(1.5)

    # --- the attack, with the host's own identity -------------------------------------------
    chain.sh(web, f"mkdir -p {STOLEN} && cp {lay.ssh_key} {lay.ssh_cert} {lay.password} "
                  f"{STOLEN}/ && sed -e 's|{lay.ssh_key}|{STOLEN}/{SITE}.id_ed25519|' "
                  f"{lay.ssh_config} > {STOLEN}/ssh_config")
    assert stolen_ssh(chain) != "rc=255"  # the copy works, as the host's own identity
    backdated = (compromise - timedelta(days=3)).strftime("%Y-%m-%d %H:%M:%S")
    assert forge(chain, backdated, "db") == 0 and forge(chain, backdated, "files") == 0
    assert forge(chain, "2099-01-01 00:00:00") == 0
    assert forge(chain, "0000-01-01 00:00:00") == 0
    chain.sh(web, "echo evil > /root/evil.pw")
    added = chain.sh(web, attacker_restic(chain, "key add --new-password-file /root/evil.pw")
                     + " 2>&1")
    assert added.returncode == 0, added.stdout  # the append-only server lets a key in

    # Writes past the site's space limit (lowered for the drill; the model's is 90 % of the
    # smaller volume shared between the sites): the forced command stops the session.
    config = chain.root(chain.storage("a")) / lay.storage_config.lstrip("/")
    original = config.read_text()
    lowered = {**json.loads(original), "quota_gb": 0.0001, "request_allowance_mb": 1}
    config.write_text(json.dumps(lowered))  # same file: its owner and mode stay
    try:
        big = chain.sh(web, "head -c 8000000 /dev/urandom | " + attacker_restic(
            chain, f"backup --host web-{SITE} --tag files --stdin --stdin-filename big.bin")
            + " 2>&1", timeout=300)
    finally:
        config.write_text(original)
    assert big.returncode != 0, big.stdout
    refusal = chain.root(chain.storage("a")) / lay.storage_state.lstrip("/") / "quota.json"
    assert json.loads(refusal.read_text())["quota_bytes"] == int(0.0001 * 2**30)
    # Last, a junk lock (the append-only server takes a new lock file, whatever is in it): the
    # restic of every client then stops at it, until the storage job removes it.
    assert junk_lock(chain) == "200"

    # --- the storage job: clean run, every anomaly reported ----------------------------------
    rot = chain.rotate(SITE, "a")
    assert rot.returncode == 0, rot.stderr
    warnings = " ".join(storage_status(chain)["last_run"]["warnings"])
    assert warnings.count("suspect snapshot") >= 4, warnings
    for words in ("backdated", "future", "cannot be read", "unexpected repository key",
                  "lock file(s) restic cannot read"):
        assert words in warnings, (words, warnings)
    assert genuine <= {s["id"] for s in chain.snapshots(SITE, "a")}

    # --- a restore from A takes the genuine night, whatever the forgeries claim --------------
    from engine.access import Access, credentials
    from engine.inventory import load
    from tasks.backup_ledger import choose_from_ledger, read_ledger

    with lab_env(chain.lab):
        inv = load("lab")
        access = Access(inv, credentials("lab", inv=inv))
        try:
            doc = read_ledger(inv, access, SITE, "a")
        finally:
            access.close()
        said: list[str] = []
        newest = choose_from_ledger(inv, doc, SITE, emit=said.append)
        before = choose_from_ledger(inv, doc, SITE, before=compromise.isoformat(),
                                    emit=said.append)
    assert {newest.db, newest.files} <= genuine and {before.db, before.files} <= genuine
    assert any("SKIPPED suspect" in s and "backdated" in s for s in said), said
    # ... and `fab restore --from a --before` the compromise, end to end: a genuine night live.
    from tasks.backup_restore import run_restore

    with lab_env(chain.lab):
        restored = run_restore("lab", SITE, source="a", before=compromise.isoformat(),
                               emit=said.append)
    assert restored["ok"], restored
    assert set(restored["restore"]["snapshots"].values()) <= genuine, restored["restore"]
    assert chain.tier.curl(SITE, "/")[0] == 200

    # --- the other site is not affected ------------------------------------------------------
    other = chain.run_backup(OTHER)
    assert other.returncode == 0, other.stdout + other.stderr

    # --- contain: the stolen identity is dead, the host backs up with new credentials -------
    from tasks.backup_contain import run_contain

    with lab_env(chain.lab):
        result = run_contain("lab", SITE, since=compromise.isoformat(), emit=lambda _s: None)
    assert result["ok"] and result["revoked_serials"]
    assert len(result["keys"]["a"]["removed"]) >= 2  # the old key and the attacker's
    assert stolen_ssh(chain) == "rc=255"  # the stolen certificate is revoked on A
    stolen = chain.sh(web, attacker_restic(chain, "snapshots --no-lock",
                                           ssh_config=f"{STOLEN}/ssh_config",
                                           password=f"{STOLEN}/{SITE}.password") + " 2>&1",
                      timeout=300)
    assert stolen.returncode != 0, stolen.stdout
    evil = chain.sh(web, attacker_restic(chain, "cat config", password="/root/evil.pw") + " 2>&1",
                    timeout=300)
    assert evil.returncode != 0  # the attacker's key is gone (and the old cert revoked)
    again = chain.run_backup(SITE)
    assert again.returncode == 0, again.stdout + again.stderr
    after = chain.rotate(SITE, "a")
    assert after.returncode == 0, after.stderr
    assert "unexpected repository key" not in " ".join(
        storage_status(chain)["last_run"]["warnings"])

    # Leave the shared lab healthy: the forged snapshots were evidence for this drill; the
    # trusted side forgets them, and the next rotation sees no suspect left.
    with lab_env(chain.lab):
        inv = load("lab")
        access = Access(inv, credentials("lab", inv=inv))
        try:
            doc = read_ledger(inv, access, SITE, "a")
        finally:
            access.close()
    forged_left = sorted(e["id"] for e in doc["entries"] if e["suspect"] and not e["gone"])
    if forged_left:
        assert chain.restic(SITE, "a", "forget", *forged_left).returncode == 0
    clean = chain.rotate(SITE, "a")
    assert clean.returncode == 0, clean.stderr
    assert "suspect snapshot" not in " ".join(storage_status(chain)["last_run"]["warnings"])
