"""Restore drill in the lab (R-INC-1): break a site (drop its database, delete its files and
code), `fab restore --from a`, the site serves again with identical data; then rebuild the
web host from nothing and restore onto it."""
from __future__ import annotations

import json

import pytest

from lab.testing import LabSession
from roles.backup.restore import run_restore
from roles.tasks.deploy import run_deploy

from .test_backup_support import Chain, backup_chain
from .test_web_support import lab_env

pytestmark = pytest.mark.lab
SITE = "villeparisis"
# Everything the backup holds of the site, minus what the site itself changes on its own
# (the fixture counts page hits, and its cron writes a timestamp to the DB and a private file).
FINGERPRINT = (
    "cd /srv/{s} && find releases shared/files shared/config private -type f "
    "! -name cron-last-run -print0 | sort -z | xargs -0 sha256sum; readlink current; "
    "mariadb --protocol=socket -N -e \"SELECT table_name FROM information_schema.tables "
    "WHERE table_schema='{db}' ORDER BY 1\"; "
    "mariadb --protocol=socket -N {db} -e \"SELECT name, value FROM fixture_state WHERE "
    "name NOT IN ('hits', 'cron_last_run') ORDER BY name\"")

@pytest.fixture
def chain(lab: LabSession) -> Chain:
    return backup_chain(lab)


def fingerprint(chain: Chain) -> str:
    db = next(s for s in chain.inv()["sites"] if s["name"] == SITE)["database"]
    proc = chain.sh(chain.web(SITE), FINGERPRINT.format(s=SITE, db=db))
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def restore(chain: Chain, **kwargs: str) -> dict:
    lines: list[str] = []
    with lab_env(chain.lab):
        result = run_restore("lab", SITE, emit=lines.append, **kwargs)
    print("\n".join(lines))
    return result


def test_break_the_site_and_restore_it_from_backup_a(chain: Chain) -> None:
    web = chain.web(SITE)
    # Some private and public files, then the night's backup.
    chain.sh(web, f"echo secret-letter > /srv/{SITE}/private/letter.txt && "
                  f"echo public > /srv/{SITE}/shared/files/notice.txt")
    assert chain.run_backup(SITE).returncode == 0
    before = fingerprint(chain)
    status, body, _ = chain.tier.curl(SITE, "/")
    assert status == 200
    db = next(s for s in chain.inv()["sites"] if s["name"] == SITE)["database"]
    # The incident: database dropped, code, public and private files deleted.
    chain.sh(web, f"mariadb --protocol=socket -e 'DROP DATABASE `{db}`' && "
                  f"rm -rf /srv/{SITE}/releases/* /srv/{SITE}/current "
                  f"/srv/{SITE}/shared/files/* /srv/{SITE}/private/*")
    assert chain.tier.curl(SITE, "/")[0] != 200
    result = restore(chain, source="a")
    assert result["ok"], result
    assert result["restore"]["verify"]["matches_snapshot"]
    assert result["site_answers"] == "200"
    assert fingerprint(chain) == before
    after_status, after_body, _ = chain.tier.curl(SITE, "/")
    keys = ("site", "database", "content", "release")
    assert after_status == 200
    assert {k: json.loads(after_body)[k] for k in keys} == {k: json.loads(body)[k] for k in keys}
    letter = chain.sh(web, f"cat /srv/{SITE}/private/letter.txt").stdout
    assert letter == "secret-letter\n"  # back in the encrypted private files
    assert result["rto_seconds"] > 0


def test_restore_onto_a_fresh_host(chain: Chain) -> None:
    assert chain.run_backup(SITE).returncode == 0
    before = fingerprint(chain)
    lab = chain.lab.lab
    web = chain.web(SITE)
    plan = lab.plan()
    # The host is lost: destroyed and re-created empty from the base image (new host key).
    lab._destroy_host(lab.container(web), lab.ports(plan, plan.host(web)))
    lab.up()
    chain.lab._inventory = None
    result = restore(chain, source="a")
    assert result["ok"], result
    assert result["restore"]["verify"]["matches_snapshot"]
    assert fingerprint(chain) == before
    assert chain.tier.curl(SITE, "/")[0] == 200
    # A restored host is a converged host: `fab deploy --check` finds nothing to do on it
    # (it once kept its empty first-boot KRL, so revoked certificates could log in there).
    with lab_env(chain.lab):
        check = run_deploy("lab", hosts=web, check=True, emit=lambda _m: None)
    assert check.ok and [a.summary for r in check.results if r.plan
                         for a in r.plan.actions] == []
    # The rebuilt host backs up again, into the same off-site history.
    assert chain.run_backup(SITE).returncode == 0
    print(f"\nfresh-host RTO: {result['rto_seconds']:.0f} s {result['timings']}")
