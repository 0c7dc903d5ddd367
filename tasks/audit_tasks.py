"""`fab audit [--env prod] [--out DIR]`: the contract clause by clause, with evidence from
the running platform (R-GDPR-10, R-INC-3; issue 16; docs/audit.md). Writes audit.md and
audit.json in DIR; exit 1 when a clause fails, 2 when the audit could not start."""
from __future__ import annotations

from invoke import task
from invoke.exceptions import Exit

from audit.contract import ContractError
from audit.run import AuditError, run_audit
from engine.access import AccessError
from engine.inventory import InventoryError


@task(help={
    "env": "lab | prod | preprod (default lab)",
    "out": "where to write audit.md and audit.json (default ~/.cache/hosting/audit/ENV)",
    "skip": "comma-separated collectors to leave out (their rows become manual): hosts, "
            "backups, backup_status, restores, monitoring, incidents, ca, tls, verify, stacks",
    "inventory": "inventory JSON file instead of the lab's or Pulumi's stack output",
    "identity": "private key whose KEY-cert.pub is your user certificate",
    "ca-dir": "CA directory (its register lists the certificates issued)",
    "contract": "the contract file (default docs/contract/REQUIREMENTS.md)",
})
def audit(c, env="lab", out="", skip="", inventory="", identity="", ca_dir="", contract=""):
    """Audit every clause of the contract on the live platform: audit.md + audit.json."""
    try:
        report, md, js = run_audit(env, inventory, identity, ca_dir, out,
                                   [s.strip() for s in skip.split(",") if s.strip()], contract)
    except (InventoryError, AccessError, ContractError, AuditError) as exc:
        raise Exit(f"audit: {exc}", code=2) from exc
    counts = report.counts()
    for r in report.rows:
        if r.status == "fail":
            bad = "; ".join(e.saw for e in r.evidence if e.status == "fail")
            print(f"FAIL {r.id}: {bad[:300]}")
    print(f"audit {report.environment}: {counts['pass']} pass, {counts['fail']} fail, "
          f"{counts['manual']} manual, {counts['n/a']} n/a -> {md}, {js}")
    if not report.ok:
        raise Exit(code=1)
