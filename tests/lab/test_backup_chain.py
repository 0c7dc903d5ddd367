"""The backup chain in the lab (issue 6): `fab backup.setup` then real nightly runs on the web
hosts, copies over SSH with certificates into append-only repositories on backup-a and
backup-b, and the faults, each with nothing lost."""
from __future__ import annotations

import json

import pytest

from lab.testing import LabSession
from roles.backup.layout import BackupLayout

from .test_backup_support import Chain, backup_chain

pytestmark = pytest.mark.lab
SITE = "villeparisis"


@pytest.fixture
def chain(lab: LabSession) -> Chain:
    return backup_chain(lab)


def test_setup_is_idempotent_and_a_backup_reaches_every_tier(chain: Chain) -> None:
    """A second `fab backup.setup` changes nothing; then a night's backup (its database and
    its files snapshots) is on local and A, and on B when the day's backups go there (the
    session's first day does; after local midnight a day's first backup is a plain daily).
    Earlier modules may have backed up already: this night's own ids are what is checked."""
    from tasks.backup_setup import run_setup

    from .test_web_support import lab_env

    lines: list[str] = []
    with lab_env(chain.lab):
        run_setup("lab", emit=lines.append)
    assert all(line.endswith(("0 changed", "nothing to do")) for line in lines), lines
    for site in ("villeparisis", "participation"):
        to_b = bool(chain.tags_of_next_backup(site))
        proc = chain.run_backup(site)
        assert proc.returncode == 0, proc.stderr
        steps = chain.status(site)["last_run"]["steps"]
        tonight = {steps["database"]["snapshot_id"], steps["files"]["snapshot_id"]}
        local = {s["id"]: s for s in chain.snapshots(site, "local")}
        assert sorted(t for i in tonight for t in local[i]["tags"] if t in ("db", "files")) \
            == ["db", "files"], site
        for tier in ("a", "b"):
            there = {s.get("original") or s["id"] for s in chain.snapshots(site, tier)}
            if tier == "a" or to_b:
                assert tonight <= there, (site, tier)
            else:
                assert not tonight & there, (site, tier)
        status = chain.status(site)
        assert status["last_run"]["result"] == "ok"
        assert set(status["tiers"]) == {"local", "a", "b"}


def test_the_database_snapshot_is_a_real_dump_without_log_rows(chain: Chain) -> None:
    assert chain.run_backup(SITE).returncode == 0
    db = [s for s in chain.snapshots(SITE, "a") if "db" in s["tags"]][-1]
    dump = chain.restic(SITE, "a", "--no-lock", "dump", db["id"], f"/{SITE}.sql")
    assert dump.returncode == 0, dump.stderr
    assert "CREATE TABLE" in dump.stdout and "INSERT INTO" in dump.stdout
    assert "-- Dump completed" in dump.stdout and "Dump completed on" not in dump.stdout


def test_files_snapshot_holds_code_files_config_and_no_logs(chain: Chain) -> None:
    assert chain.run_backup(SITE).returncode == 0
    files = [s for s in chain.snapshots(SITE, "local") if "files" in s["tags"]][-1]
    proc = chain.restic(SITE, "local", "--no-lock", "ls", "--json", files["id"])
    paths = {json.loads(line).get("path") for line in proc.stdout.splitlines()[1:]}
    for wanted in (f"/srv/{SITE}/current", f"/srv/{SITE}/shared/files", f"/srv/{SITE}/private",
                   f"/etc/hosting/{SITE}/db.cnf", "/etc/nginx/nginx.conf", "/etc/passwd"):
        assert wanted in paths, wanted
    assert not [p for p in paths if p and (p.endswith(".log") or p.startswith("/var/log"))]
    assert not [p for p in paths if p and p.startswith("/etc/hosting/backup")]


def test_the_web_host_cannot_delete_or_rewrite_its_snapshots_on_a_or_b(chain: Chain) -> None:
    """Over the real SSH path, with the site's certificate: reads work, deletes are refused
    (restic retries them ~13 s before giving up) and every snapshot is still there."""
    assert chain.run_backup(SITE).returncode == 0
    lay = BackupLayout(SITE)
    web = chain.web(SITE)
    for tier, alias in (("a", "backup-a"), ("b", "backup-b")):
        before = {s["id"] for s in chain.snapshots(SITE, tier)}
        victim = sorted(before)[0]
        base = (f"restic --repo rclone:{SITE} --password-file {lay.password} --no-cache "
                f"-o rclone.program=ssh -o 'rclone.args=-F {lay.ssh_config} {alias}'")
        forget = chain.sh(web, f"{base} forget {victim} 2>&1")
        assert "403" in forget.stdout, forget.stdout[-2000:]
        rewrite = chain.sh(web, f"{base} tag --add x {victim} 2>&1")
        assert "403" in rewrite.stdout, rewrite.stdout[-2000:]
        after = {s["id"] for s in chain.snapshots(SITE, tier)}
        assert before <= after, tier
        # The rewrite's new snapshot (append-only lets it in) is what the storage ledger holds
        # suspect (issue 19): forgotten from the trusted side, so the shared lab stays healthy
        # for the monitoring tests (no BackupSuspectSnapshots alert left behind).
        if after - before:
            forget = chain.restic(SITE, tier, "forget", *sorted(after - before))
            assert forget.returncode == 0, forget.stderr
        # And no shell, whatever the client asks: the forced command runs, nothing else.
        shell = chain.sh(web, f"ssh -F {lay.ssh_config} {alias} id 2>&1 </dev/null | "
                              "tr -cd '[:print:]\\n'")
        assert "uid=" not in shell.stdout  # rclone's HTTP/2 preface answered instead
        check = chain.rotate(SITE, tier, "--check", "--no-rotate")
        assert check.returncode == 0, check.stderr


def test_another_sites_certificate_cannot_reach_this_sites_repository(chain: Chain) -> None:
    other = "participation"
    lay, mine = BackupLayout(other), BackupLayout(SITE)
    web = chain.web(other)
    # participation's web host, its own certificate, but villeparisis's storage user:
    proc = chain.sh(web, f"ssh -F {lay.ssh_config} -l {mine.storage_user} backup-a true 2>&1; "
                         "echo rc=$?")
    # sshd refuses the certificate (MaxAuthTries 2 may word it "Too many authentication
    # failures"): no session either way.
    assert "rc=255" in proc.stdout, proc.stdout
    assert "Permission denied" in proc.stdout or "Too many authentication" in proc.stdout


def test_a_dump_failing_half_way_fails_the_run_and_keeps_no_snapshot(chain: Chain) -> None:
    web = chain.web(SITE)
    before = {s["id"] for s in chain.snapshots(SITE, "local")}
    # A dump program that dies half-way, as mariadb-dump does when the server goes away.
    chain.sh(web, "printf '#!/bin/sh\\nmariadb-dump \"$@\" | head -c 2000\\n"
                  "echo \"mariadb-dump: Error 2013: Lost connection\" >&2\\nexit 2\\n' "
                  "> /usr/local/sbin/broken-dump && chmod 755 /usr/local/sbin/broken-dump")
    cfg_path = f"/etc/hosting/backup/{SITE}.json"
    cfg = json.loads((chain.root(web) / cfg_path.lstrip("/")).read_text())
    cfg["database"]["dump_program"] = "/usr/local/sbin/broken-dump"
    broken = chain.root(web) / "etc/hosting/backup/broken.json"
    broken.write_text(json.dumps(cfg))
    try:
        proc = chain.run_backup(SITE, "--config", "/etc/hosting/backup/broken.json")
    finally:
        broken.unlink()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "database dump failed, no snapshot kept" in proc.stderr
    after = {s["id"] for s in chain.snapshots(SITE, "local")}
    assert after <= before  # nothing new (the rotation may only have forgotten old ones)
    assert chain.restic(SITE, "local", "check").returncode == 0
    assert chain.run_backup(SITE).returncode == 0


def _status_rows(chain: Chain) -> dict[str, str]:
    """`fab backup.status` as an admin runs it: this site's row per tier."""
    from tasks.backup_status import run_status

    from .test_web_support import lab_env

    lines: list[str] = []
    with lab_env(chain.lab):
        run_status("lab", emit=lines.append)
    return {line.split()[1]: line for line in lines[1:]
            if line.split() and line.split()[0] == SITE}


def _newest(snaps: list[dict]) -> set[str]:
    """The ids (or, for copies, the original ids) of the newest backup of a tier."""
    last = max(s["time"] for s in snaps)
    return {s.get("original") or s["id"] for s in snaps if s["time"] == last}


def test_backup_a_unreachable_then_caught_up(chain: Chain) -> None:
    """Fault drill 5 (issue 11): backup-a drops the web host's SSH during a night's run. The
    backup is taken (local), B gets it, A is marked failed in status.json and in
    `fab backup.status`, the run exits 3; the next run copies the missed night to A."""
    web, a = chain.web(SITE), chain.storage("a")
    # Every backup of a day whose first was weekly or monthly goes to B as well as A; the
    # session's first day is (a fresh repository), a day after local midnight is not.
    promoted = bool(chain.tags_of_next_backup(SITE))
    b_before = _newest(chain.snapshots(SITE, "b"))
    # backup-a drops the web host's SSH (a table of the test's own, as an outage would).
    ip = chain.lab.host(web)["private_ip"]
    cut = chain.sh(a, "nft add table inet bktest && nft add chain inet bktest input '{ type "
                      "filter hook input priority -10; }' && nft add rule inet bktest input "
                      f"ip saddr {ip} tcp dport 22 drop")
    assert cut.returncode == 0, cut.stderr
    try:
        proc = chain.run_backup(SITE, timeout=900)
        rows = _status_rows(chain)  # while A is still down
    finally:
        chain.sh(a, "nft delete table inet bktest")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "copy to a failed" in proc.stderr
    status = chain.status(SITE)
    steps = status["last_run"]["steps"]
    tonight = {steps["database"]["snapshot_id"], steps["files"]["snapshot_id"]}
    assert bool({"weekly", "monthly"} & set(status["last_run"]["tags"])) is promoted, \
        status["last_run"]["tags"]
    # status.json: A failed (its last known picture kept), local and B fine.
    tiers = status["tiers"]
    assert tiers["a"]["ok"] is False and "copy to a failed" in tiers["a"]["error"], tiers["a"]
    assert tiers["local"]["ok"] is True and tiers["b"]["ok"] is True
    assert steps["copy to b"]["ok"] and not steps["copy to a"]["ok"]
    # Local (and B when promoted): their newest backup is tonight's; A: tonight's is missing.
    assert _newest(chain.snapshots(SITE, "local")) == tonight
    assert _newest(chain.snapshots(SITE, "b")) == (tonight if promoted else b_before)
    on_a = {s.get("original") for s in chain.snapshots(SITE, "a")}
    assert not tonight & on_a
    # `fab backup.status`: the A row says the copy failed, local and B do not.
    assert rows["a"].endswith("COPY FAILED"), rows
    assert "FAILED" not in rows["local"] and "FAILED" not in rows["b"], rows
    # The next run catches up: A gets the missed night, and the flag goes.
    proc = chain.run_backup(SITE)
    assert proc.returncode == 0, proc.stderr
    on_a = {s.get("original") for s in chain.snapshots(SITE, "a")}
    assert tonight <= on_a  # caught up
    assert chain.status(SITE)["tiers"]["a"]["ok"] is True
    rows = _status_rows(chain)
    assert not any("FAILED" in row for row in rows.values()), rows


def test_a_second_run_is_refused_while_one_runs(chain: Chain) -> None:
    web = chain.web(SITE)
    lay = BackupLayout(SITE)
    holder = chain.sh(web, f"PYTHONPATH=/usr/local/lib/hosting/backup-runner python3 -c '"
                           "import sys,time; from backup.lock import exclusive\n"
                           f"with exclusive(\"{lay.lock}\"):\n print(\"held\", flush=True); "
                           "time.sleep(60)' >/dev/null 2>&1 & echo $!; sleep 2")
    pid = holder.stdout.split()[0]
    try:
        proc = chain.run_backup(SITE)
        assert proc.returncode == 75 and "REFUSED" in proc.stderr, proc.stderr
        assert f"pid {pid}" in proc.stderr
    finally:
        chain.sh(web, f"kill {pid}")
    assert chain.run_backup(SITE).returncode == 0  # the lock went with its holder
