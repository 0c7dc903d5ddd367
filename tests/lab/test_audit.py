"""`fab audit` on the shared lab (issue 16, R-GDPR-10, R-INC-3): with every host deployed,
the fixture site released and a backup of each site on its tiers, the report has no `fail`;
then one thing broken per family makes exactly its clause's row fail, and is put back at once
so the tests that follow find a healthy lab:
  open a port     an nftables rule by hand on the proxy            -> R-GDPR-6
  grant too much  SELECT on mysql.* to a site's database account   -> R-INC-3, R-GDPR-4
  age a backup    a local snapshot dated 400 days ago              -> R-GDPR-3, R-BKP-6
The breaks run the audit without the verify suite (its own lab test covers it): the rows it
feeds are `manual` there, never `fail`."""
from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lab.testing import LabSession, lab_env

from .test_backup_support import Chain, backup_chain
from .test_monitoring import monitoring

pytestmark = pytest.mark.lab
SITE = "villeparisis"
FAST = ("verify",)  # collectors left out of the break drills


@pytest.fixture
def chain(lab: LabSession) -> Chain:
    """The whole lab deployed (monitoring on ops), a fresh backup of each site, and
    Prometheus quiet again (a backup clears the staleness a fresh chain may show)."""
    chain = backup_chain(lab)
    mon = monitoring(lab)
    if not getattr(chain, "audit_backups", False):
        for s in lab.inventory["sites"]:
            proc = chain.run_backup(s["name"])
            assert proc.returncode == 0, proc.stderr[-2000:]
        chain.audit_backups = True  # type: ignore[attr-defined]
    deadline = time.monotonic() + 120
    while mon.all_firing() and time.monotonic() < deadline:
        time.sleep(2)
    return chain


def audit(lab: LabSession, out: Path, skip: tuple[str, ...] = ()) -> tuple[dict, str, float]:
    from audit.run import run_audit

    t0 = time.monotonic()
    with lab_env(lab):
        report, md, js = run_audit("lab", out=out, skip=skip, emit=lambda _m: None)
    return json.loads(js.read_text()), md.read_text(), time.monotonic() - t0


def failed(doc: dict) -> dict[str, list[str]]:
    return {r["id"]: [e["saw"] for e in r["evidence"] if e["status"] == "fail"]
            for r in doc["rows"] if r["status"] == "fail"}


def test_audit_healthy_lab_has_no_fail_and_one_row_per_clause(chain: Chain,
                                                              tmp_path: Path) -> None:
    doc, md, seconds = audit(chain.lab, tmp_path)
    assert failed(doc) == {}, json.dumps(failed(doc), indent=1)[:4000]
    assert len(doc["rows"]) == 34 and doc["counts"]["fail"] == 0
    rows = {r["id"]: r for r in doc["rows"]}
    # Read from the live platform, not the model: these are graded on a healthy lab.
    for cid in ("R-SCOPE-1", "R-GDPR-1", "R-GDPR-4", "R-GDPR-5", "R-GDPR-6", "R-GDPR-11",
                "R-HOST-4", "R-BKP-1", "R-BKP-2", "R-BKP-3", "R-BKP-7", "R-BKP-8", "R-INC-3"):
        assert rows[cid]["status"] == "pass", (cid, rows[cid])
    grants = [e for e in rows["R-INC-3"]["evidence"] if e["check"] == "db.grants"]
    assert grants and all("villeparisis@localhost" in e["excerpt"] or
                          "participation@localhost" in e["excerpt"] for e in grants)
    assert md.index("## Summary") < md.index("## Who can log in where (R-INC-3)") < \
        md.index("## Details")
    access = doc["access"]
    assert set(access["databases"]) == {s["host"] for s in chain.lab.inventory["sites"]}
    assert all(h["principals"] for h in access["hosts"].values()), access["hosts"]
    # No password hash (MariaDB's are '*' and 40 hex digits) in either output.
    assert "IDENTIFIED BY PASSWORD '(redacted)'" in md
    assert not re.search(r"\*[0-9A-F]{40}", md + json.dumps(doc))
    print(f"\naudit of the healthy lab in {seconds:.1f} s: {doc['counts']}, "
          f"{doc['automated']} of 34 graded by checks\n{md}")


def test_audit_port_opened_by_hand_fails_the_firewall_row_only(chain: Chain,
                                                               tmp_path: Path) -> None:
    lab = chain.lab
    lab.sudo("proxy", "nft add rule inet filter input tcp dport 8080 accept")
    try:
        doc, _md, seconds = audit(lab, tmp_path, FAST)
    finally:
        lab.sudo("proxy", "nft -f /etc/nftables.conf")
    assert "8080" not in lab.sudo("proxy", "nft list ruleset").stdout
    assert set(failed(doc)) == {"R-GDPR-6"}, failed(doc)
    assert any("proxy: opened beyond the model: tcp [8080] from anywhere" in s
               for s in failed(doc)["R-GDPR-6"])
    print(f"open port drill: audit in {seconds:.1f} s, R-GDPR-6 failed")


def test_audit_grant_beyond_the_model_fails_the_access_rows(chain: Chain,
                                                            tmp_path: Path) -> None:
    lab, host = chain.lab, chain.web(SITE)
    lab.sudo(host, f"mariadb -e \"GRANT SELECT ON mysql.* TO '{SITE}'@'localhost'\"")
    try:
        doc, _md, seconds = audit(lab, tmp_path, FAST)
    finally:
        lab.sudo(host, f"mariadb -e \"REVOKE SELECT ON mysql.* FROM '{SITE}'@'localhost'\"")
    assert set(failed(doc)) == {"R-INC-3", "R-GDPR-4"}, failed(doc)
    assert any(f"{host}: {SITE}: grants outside its database on mysql.*" in s
               for s in failed(doc)["R-INC-3"])
    shown = lab.sudo(host, f"mariadb -N -e \"SHOW GRANTS FOR '{SITE}'@'localhost'\"").stdout
    assert "`mysql`" not in shown
    print(f"grant drill: audit in {seconds:.1f} s, R-INC-3 and R-GDPR-4 failed")


def test_audit_backup_older_than_a_year_fails_the_retention_rows(chain: Chain,
                                                                 tmp_path: Path) -> None:
    lab = chain.lab
    when = (datetime.now(UTC) - timedelta(days=400)).strftime("%Y-%m-%d %H:%M:%S")
    proc = chain.restic(SITE, "local", "backup", "--json", "--time", when, "--tag",
                        "audit-drill", "--host", "audit-drill", "/etc/hostname")
    assert proc.returncode == 0, proc.stderr
    snap = [json.loads(x) for x in proc.stdout.splitlines() if '"summary"' in x][0]
    try:
        doc, _md, seconds = audit(lab, tmp_path, FAST)
    finally:
        forgot = chain.restic(SITE, "local", "forget", snap["snapshot_id"])
    assert forgot.returncode == 0, forgot.stderr
    assert snap["snapshot_id"][:8] not in chain.restic(SITE, "local", "snapshots").stdout
    assert set(failed(doc)) == {"R-GDPR-3", "R-BKP-6"}, failed(doc)
    assert any(f"{SITE} local: oldest snapshot 400.0 days old" in s
               for s in failed(doc)["R-GDPR-3"]), failed(doc)
    print(f"aged backup drill: audit in {seconds:.1f} s, R-GDPR-3 and R-BKP-6 failed")
