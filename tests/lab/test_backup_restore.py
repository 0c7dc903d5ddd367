"""Restore drills in the lab (R-INC-1): break a site (drop its database, delete its files and
code), `fab restore --from a`, the site serves again with identical data; rebuild the web
host from nothing and restore onto it; then the fault drills of issue 11: a `restic dump`
killed mid-stream, storage A down, a restore of the wrong date undone from its safety
snapshot. Each drill ends with the site answering 200 with its content from before the
drill, or the restore failed, the site in maintenance and nothing lost; then the relevant
verify modules (MariaDB, PHP-FPM) still pass."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time

import pytest

from backup.restore_config import config_restorable
from backup.snapshots import parse_restic_time
from lab.testing import LabSession
from roles.proxy.config import proxy_config
from tasks.backup_restore import RestoreTaskError, run_restore
from tasks.deploy import run_deploy
from tasks.proxy_tasks import set_maintenance

from .test_backup_support import Chain, backup_chain
from .test_web_support import REPO, connected, lab_env

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
    safety = result["safety"]
    print(f"\nin-place RTO: {result['rto_seconds']:.1f} s {result['timings']}; on the host: "
          f"{result['restore']['timings']}; safety snapshot: database "
          f"{safety['db_bytes']} B, files {safety['files_bytes']} B, added "
          f"{safety['added_bytes']} B")


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
    # --apply-config on the re-created host: only what does not belong to the old host.
    result = restore(chain, source="a", apply_config=True)
    assert result["ok"], result
    assert result["restore"]["verify"]["matches_snapshot"]
    config = result["restore"]["config"]
    assert all(config_restorable(p) for p in config["applied"]), config
    # The new host generated its own secrets and ids: they differ from the backup's and stay.
    assert {"/etc/passwd", "/etc/group"} <= set(config["not_restorable"]) or not {
        "/etc/passwd", "/etc/group"} & set(config["differs_from_live"]), config
    print(f"apply-config on the re-created host: applied {config['applied']}, kept the new "
          f"host's {config['not_restorable']}")
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


# --- fault drills (issue 11) -------------------------------------------------------------

VERIFY_MODULES = ("tests/verify/test_mariadb.py", "tests/verify/test_php_fpm.py")


def site_db(chain: Chain) -> str:
    return next(s for s in chain.inv()["sites"] if s["name"] == SITE)["database"]


def page(chain: Chain) -> tuple[int, dict]:
    """The site's answer through the proxy: (status, the page's stable fields)."""
    status, body, _ = chain.tier.curl(SITE, "/")
    if status != 200:
        return status, {}
    return status, {k: json.loads(body)[k] for k in ("site", "database", "content", "release")}


def maintenance_off(chain: Chain) -> None:
    with connected(chain.lab) as (inv, connect):
        flag = next(s.maintenance_flag for s in proxy_config(inv).sites if s.name == SITE)
        set_maintenance(connect(inv.by_role("proxy")[0].name), flag, False)


def verify_passes(chain: Chain) -> None:
    lab = chain.lab
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf",
         *VERIFY_MODULES, "--inventory", str(lab.inventory_path),
         "--ssh-config", str(lab.ssh_config)],
        cwd=REPO, capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    print(f"verify after the drill: {proc.stdout.strip().splitlines()[-1]}")


def test_drill_dump_killed_mid_stream_leaves_the_live_site_untouched(chain: Chain) -> None:
    """Drill 1: 32 MB of incompressible rows in the last table of the dump, so `restic dump`
    is killed while it streams; the restore fails, the live database and files are as they
    were, the site stays in maintenance until an admin lifts it."""
    web, db = chain.web(SITE), site_db(chain)
    filler = (f"mariadb --protocol=socket {db} -e \"CREATE TABLE IF NOT EXISTS zz_filler "
              "(id INT PRIMARY KEY, pad VARBINARY(1024)); INSERT IGNORE INTO zz_filler "
              "SELECT seq, RANDOM_BYTES(1024) FROM seq_1_to_32768\"")
    assert chain.sh(web, filler).returncode == 0
    try:
        assert chain.run_backup(SITE).returncode == 0
        before, (status, content) = fingerprint(chain), page(chain)
        assert status == 200
        # Kill restic (by its pid) once the side database has its first tables: mid-stream.
        killer = (f"for i in $(seq 1200); do n=$(mariadb --protocol=socket -N -e \"SELECT "
                  f"COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA='{db}_restore'\" "
                  "2>/dev/null); p=$(pgrep -f '[r]estic .* dump -- '); "
                  "if [ \"${n:-0}\" -gt 0 ] && [ -n \"$p\" ]; then kill -9 $p; "
                  "echo killed $p after $n tables; exit 0; fi; sleep 0.05; done; exit 1")
        out: list[subprocess.CompletedProcess[str]] = []
        thread = threading.Thread(target=lambda: out.append(chain.sh(web, killer)))
        thread.start()
        t0 = time.monotonic()
        result = restore(chain, source="a")
        thread.join()
        sizes = {k: v for k, v in (result["safety"] or {}).items() if k.endswith("_bytes")}
        print(f"drill 1: {out[0].stdout.strip()}; failed restore took "
              f"{time.monotonic() - t0:.1f} s; errors: {result['errors']}; on the host: "
              f"{result['restore'].get('timings')}; safety snapshot: {sizes}")
        assert out[0].returncode == 0, out[0].stderr
        assert not result["ok"] and result["exit_code"] == 1
        assert result["restore"]["outcome"] == "untouched"
        assert any("restic dump failed" in e for e in result["errors"]), result["errors"]
        assert result["maintenance"] == "on" and chain.tier.curl(SITE, "/")[0] == 503
        assert fingerprint(chain) == before  # nothing lost
        tables = chain.sh(web, "mariadb --protocol=socket -N -e \"SELECT SCHEMA_NAME FROM "
                               "information_schema.SCHEMATA\"").stdout.split()
        assert f"{db}_restore" not in tables and f"{db}_prerestore" not in tables
        line = chain.sh(web, f"tail -n 1 /var/lib/hosting/backup/{SITE}/restores.jsonl").stdout
        assert json.loads(line)["result"] == "failed"  # R-INC-4
    finally:
        maintenance_off(chain)
        chain.sh(web, f"mariadb --protocol=socket {db} -e 'DROP TABLE IF EXISTS zz_filler'")
    assert page(chain) == (200, content)
    verify_passes(chain)


def test_drill_storage_a_down_fails_cleanly_and_touches_nothing(chain: Chain) -> None:
    """Drill 2: backup-a unreachable from the web host (rejected by its firewall): the restore
    from A fails with a message naming A and the other tiers; the site is untouched, in
    maintenance; a restore from B then works."""
    web = chain.web(SITE)
    assert chain.run_backup(SITE).returncode == 0
    before, (status, content) = fingerprint(chain), page(chain)
    assert status == 200
    # On backup-a's side: `fab restore` converges the web host first, which rewrites the web
    # host's own ruleset (a block there would be gone before the restore starts).
    web_ip = next(h["private_ip"] for h in chain.inv()["hosts"] if h["name"] == web)
    storage_a = chain.storage("a")
    block = ("nft add table inet drill && nft add chain inet drill in "
             "'{ type filter hook input priority -10 ; }' && "
             f"nft add rule inet drill in ip saddr {web_ip} reject with icmp type "
             "host-unreachable")
    assert chain.sh(storage_a, block).returncode == 0
    try:
        try:
            result = restore(chain, source="a")
            message = "; ".join(result["errors"])
            assert not result["ok"], result
            assert result["restore"]["outcome"] == "untouched"
            assert "is backup-a reachable? --from local or --from b" in message, message
            assert result["maintenance"] == "on"
        except RestoreTaskError as exc:  # the backup access check of `fab restore` saw it
            message = str(exc)
            assert re.search(r"backup-a|storage|a:", message), message
            assert f"{SITE} stays in maintenance" in message
        print(f"drill 2: {message[:600]}")
        assert chain.tier.curl(SITE, "/")[0] == 503
        assert fingerprint(chain) == before
    finally:
        chain.sh(storage_a, "nft delete table inet drill")
        maintenance_off(chain)
    result = restore(chain, source="b")
    assert result["ok"], result["errors"]
    assert result["maintenance"] == "lifted" and page(chain) == (200, content)
    verify_passes(chain)


def test_drill_wrong_date_then_back_to_the_safety_snapshot(chain: Chain) -> None:
    """Drill 3: a restore of an older night by mistake; the safety snapshot it took brings the
    site back exactly as it was before it, with the command the restore printed."""
    web, db = chain.web(SITE), site_db(chain)
    assert chain.run_backup(SITE).returncode == 0
    older = max((s for s in chain.snapshots(SITE, "local")
                 if "files" in s["tags"] and "safety" not in s["tags"]),
                key=lambda s: s["time"])
    # Work done since that night: a private letter and a row the site shows.
    chain.sh(web, f"echo drill-3 > /srv/{SITE}/private/after-the-backup.txt && "
                  f"mariadb --protocol=socket {db} -e \"REPLACE INTO fixture_state (name, value) "
                  "VALUES ('drill', 'after the backup')\"")
    before, (status, content) = fingerprint(chain), page(chain)
    assert status == 200
    wrong = restore(chain, source="local", at=parse_restic_time(older["time"]).isoformat())
    assert wrong["ok"], wrong["errors"]
    assert fingerprint(chain) != before  # the work of the day is gone from the live site
    safety = wrong["safety"]
    assert safety["go_back"] == (f"fab restore --site {SITE} --from local --snapshot "
                                 f"{safety['files'][:8]}")
    t0 = time.monotonic()
    back = restore(chain, source="local", snapshot=safety["files"][:8])
    print(f"drill 3: safety snapshot {safety}; wrong restore RTO {wrong['rto_seconds']} s, "
          f"back in {time.monotonic() - t0:.1f} s (RTO {back['rto_seconds']} s)")
    assert back["ok"], back["errors"]
    assert fingerprint(chain) == before
    assert page(chain) == (200, content)
    assert chain.sh(web, f"cat /srv/{SITE}/private/after-the-backup.txt").stdout == "drill-3\n"
    lines = chain.sh(web, f"tail -n 2 /var/lib/hosting/backup/{SITE}/restores.jsonl").stdout
    records = [json.loads(line) for line in lines.splitlines()]
    assert [r["result"] for r in records] == ["ok", "ok"]
    assert records[1]["snapshot"] == safety["files"][:8]
    verify_passes(chain)
