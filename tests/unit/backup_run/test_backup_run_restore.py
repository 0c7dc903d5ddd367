"""The host-side restore against REAL restic 0.18 repositories (issue 11, R-INC-1, R-INC-4):
a safety snapshot first, the dump into a side database checked against its recorded sha256
BEFORE one RENAME TABLE swaps it in, the files into side directories then renamed in, and any
failure (a cut `restic dump`, a corrupt dump, a failed swap, a writer that will not stop)
leaves the live database and files exactly as they were, naming every error.

The database is a stand-in (no MariaDB here): FAKE_MARIADB keeps databases as directories
and tables as files of INSERT lines, and understands exactly the statements the restore
sends (CREATE/DROP DATABASE, the information_schema queries, RENAME TABLE, COUNT(*)), so the
tests see what the live database holds after each step."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from backup_run_helpers import REPO, Site

from backup import config as config_mod
from backup import restore_site
from backup import swap as swap_mod
from backup.records import DUMP_SHA256, IDS_SHA256, tag_value
from backup.restore import EXIT_VERIFY, RESTORES_FILE
from backup.tags import SAFETY

DAY1 = "2025-01-05T03:15:00+01:00"

FAKE_MARIADB = r'''#!/usr/bin/env python3
import os, re, shutil, sys
STATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "mysql")
args = sys.argv[1:]
batch = "--batch" in args
db = args[-1] if args and not args[-1].startswith("--") else None
data = sys.stdin.read()
with open(os.path.join(STATE, "..", "sql.log"), "a") as log:
    log.write(f"{'QUERY' if batch else 'LOAD'} {db}\n{data if batch else ''}\n")
def fail(msg):
    print(f"ERROR: {msg}", file=sys.stderr); sys.exit(1)
def d(name): return os.path.join(STATE, name)
if not batch:
    if not os.path.isdir(d(db)): fail(f"1049 Unknown database '{db}'")
    if "SYNTAX ERROR" in data: fail("1064 syntax error")
    for line in data.splitlines():
        m = re.match(r"INSERT INTO `?(\w+)`?", line)
        if m:
            with open(os.path.join(d(db), m[1]), "a") as t: t.write(line + "\n")
    sys.exit(0)
for stmt in [s.strip() for s in data.split(";\n") if s.strip()]:
    if m := re.match(r"CREATE DATABASE (IF NOT EXISTS )?`(\w+)`", stmt):
        if os.path.isdir(d(m[2])):
            if not m[1]: fail(f"1007 database {m[2]} exists")
        else: os.makedirs(d(m[2]))
    elif m := re.match(r"DROP DATABASE (IF EXISTS )?`(\w+)`", stmt):
        shutil.rmtree(d(m[2]), ignore_errors=True)
    elif m := re.search(r"SCHEMATA WHERE SCHEMA_NAME='(\w+)'", stmt):
        if os.path.isdir(d(m[1])): print(m[1])
    elif m := re.search(r"TABLES WHERE TABLE_SCHEMA='(\w+)'", stmt):
        if os.path.isdir(d(m[1])):
            for t in sorted(os.listdir(d(m[1]))):
                if not t.startswith("."): print(f"{t}\tBASE TABLE")
    elif m := re.search(r"TRIGGERS WHERE TRIGGER_SCHEMA='(\w+)'", stmt):
        p = os.path.join(d(m[1]), ".triggers")
        if os.path.exists(p): print(open(p).read().strip() + "\tTRIGGER")
    elif stmt.startswith("RENAME TABLE"):
        if os.path.exists(os.path.join(STATE, "..", "rename-fails")): fail("1025 error on rename")
        pairs = re.findall(r"`(\w+)`\.`(\w+)` TO `(\w+)`\.`(\w+)`", stmt)
        for a, t, b, u in pairs:
            if not os.path.exists(os.path.join(d(a), t)): fail(f"1146 {a}.{t} doesn't exist")
        for a, t, b, u in pairs: os.rename(os.path.join(d(a), t), os.path.join(d(b), u))
    elif m := re.match(r"SELECT '(\w+)', COUNT\(\*\) FROM `(\w+)`", stmt):
        print(f"{m[1]}\t{len(open(os.path.join(d(db), m[2])).readlines())}")
    else: fail(f"fake mariadb: unknown statement {stmt[:80]!r}")
'''


@pytest.fixture
def db_site(site: Site) -> Site:
    """The site with the stateful database stand-in and a live database `demo`."""
    client = site.root / "bin" / "mariadb-state"
    client.write_text(FAKE_MARIADB)
    client.chmod(0o755)
    live = site.root / "mysql" / "demo"
    live.mkdir(parents=True)
    (live / "t").write_text("INSERT INTO t VALUES (1,'live before the restore');\n")
    (live / "live_only").write_text("INSERT INTO live_only VALUES (1);\n")
    cfg = site.config()
    cfg["database"]["client_program"] = str(client)
    site.config_path.write_text(json.dumps(cfg, indent=2))
    return site


def live_db(site: Site) -> dict[str, str]:
    live = site.root / "mysql" / "demo"
    return {p.name: p.read_text() for p in sorted(live.iterdir())} if live.is_dir() else {}


def live_files(site: Site) -> dict[str, str]:
    srv = site.root / "srv"
    return {str(p.relative_to(srv)): p.read_text() for p in sorted(srv.rglob("*"))
            if p.is_file()}


def restore(site: Site, *args: str, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backup.restore", "--site", "demo", "--config",
         str(site.config_path), *args], capture_output=True, text=True, cwd=REPO,
        timeout=300, env={**os.environ, **(env or {})})


def result_of(proc: subprocess.CompletedProcess[str]) -> dict:
    return json.loads(proc.stdout)["restore"]


def sql_log(site: Site) -> str:
    path = site.root / "sql.log"
    return path.read_text() if path.exists() else ""


def restores(site: Site) -> list[dict]:
    path = site.state_dir / RESTORES_FILE
    return [json.loads(line) for line in path.read_text().splitlines()]


def night(site: Site, kind: str, tier: str = "local") -> dict:
    return next(s for s in site.snapshots(tier) if kind in s["tags"]
                and SAFETY not in s["tags"])


def dump_source(site: Site) -> bytes:
    return (site.root / "bin" / "dump-source.sql").read_bytes()


def wrap_restic(site: Site, dump_script: str) -> None:
    """restic as configured, except `restic dump`, which runs under `dump_script` (sh)."""
    wrapper = site.root / "bin" / "restic-cut"
    wrapper.write_text(f"""#!/bin/sh
for a in "$@"; do
    if [ "$a" = dump ]; then {dump_script}; fi
done
exec {site.restic} "$@"
""")
    wrapper.chmod(0o755)
    cfg = site.config()
    cfg["restic"]["binary"] = str(wrapper)
    site.config_path.write_text(json.dumps(cfg, indent=2))


def test_restore_loads_a_side_database_and_swaps_it_in_with_one_rename(db_site: Site) -> None:
    site = db_site
    assert site.run(DAY1, "--local-only").returncode == 0
    site.log_restic()
    proc = restore(site, "--from", "local")
    assert proc.returncode == 0, proc.stderr
    result = result_of(proc)
    assert result["outcome"] == "restored" and result["errors"] == []
    # The live database is exactly the dump's: the table `t` of 200 rows, nothing of before.
    assert live_db(site) == {"t": dump_source(site).decode()}
    assert result["verify"]["row_counts"] == {"t": 200}
    assert sorted(os.listdir(site.root / "mysql")) == ["demo"]  # side and kept dbs dropped
    log = sql_log(site)
    assert "LOAD demo_restore" in log and "LOAD demo\n" not in log  # never loaded live
    renames = [s for s in log.split(";\n") if "RENAME TABLE" in s]
    assert len(renames) == 1  # one statement: MariaDB swaps all tables or none
    assert "`demo`.`live_only` TO `demo_prerestore`.`live_only`" in renames[0]
    assert "`demo_restore`.`t` TO `demo`.`t`" in renames[0]
    # The recorded sha256 was checked before the swap, from the dump's trailer line.
    assert result["verify"]["method"].startswith("sha256 recorded at backup time (the dump's")
    assert result["verify"]["streamed_sha256"] == hashlib.sha256(dump_source(site)).hexdigest()
    # Cost: the safety snapshot (2 backups), one dump, one restore of the files.
    assert sorted(site.restic_calls()) == ["backup", "backup", "dump", "restore"]
    assert not list((site.root / "srv").glob(".restore-*"))
    assert not list((site.root / "srv").glob(".prerestore-*"))


def test_restore_takes_a_safety_snapshot_first_and_records_how_to_go_back(
        db_site: Site) -> None:
    site = db_site
    assert site.run(DAY1, "--local-only").returncode == 0
    proc = restore(site, "--from", "local")
    assert proc.returncode == 0, proc.stderr
    result = result_of(proc)
    safety = result["safety"]
    local = {s["id"]: s for s in site.snapshots("local")}
    assert SAFETY in local[safety["db"]]["tags"] and "db" in local[safety["db"]]["tags"]
    assert SAFETY in local[safety["files"]]["tags"]
    assert f"safety-expires={safety['expires']}" in local[safety["files"]]["tags"]
    assert local[safety["db"]]["time"] == local[safety["files"]]["time"]
    # The runner's kept listing was updated: still exact, so no `restic snapshots` next time.
    assert {s["id"] for s in json.loads(
        (site.state_dir / "local-snapshots.json").read_text())["snapshots"]} == set(local)
    line = restores(site)[-1]  # R-INC-4
    assert line["result"] == "ok" and line["outcome"] == "restored" and line["from"] == "local"
    assert line["safety"]["files"] == safety["files"] and line["seconds"] > 0
    assert line["go_back"] == ("fab restore --site demo --from local --snapshot "
                               f"{safety['files'][:8]}")
    assert line["go_back"] in proc.stderr


def test_restore_back_to_the_safety_snapshot_brings_back_the_state_before(
        db_site: Site) -> None:
    """Fault drill 3 in small: a restore of the wrong night, then back to the safety one."""
    site = db_site
    assert site.run(DAY1, "--local-only").returncode == 0
    (site.code / "index.php").write_text("<?php echo 'today';\n")
    (site.files / "new-upload.txt").write_text("uploaded today\n")
    today_dump = "INSERT INTO t VALUES (1,'today');\nINSERT INTO u VALUES (7);\n"
    (site.root / "bin" / "dump-source.sql").write_text(today_dump)  # what the live db dumps
    before = live_files(site)
    proc = restore(site, "--from", "local", "--at", "2025-01-05")  # the wrong date
    assert proc.returncode == 0, proc.stderr
    assert (site.code / "index.php").read_text() == "<?php echo 'hello';\n"
    assert not (site.files / "new-upload.txt").exists()
    go_back = result_of(proc)["safety"]["files"][:8]
    # A plain restore never chooses a safety snapshot: it is reached only by its id.
    proc = restore(site, "--from", "local", "--snapshot", go_back)
    assert proc.returncode == 0, proc.stderr
    assert live_files(site) == before
    assert live_db(site) == {"t": "INSERT INTO t VALUES (1,'today');\n",
                             "u": "INSERT INTO u VALUES (7);\n"}
    assert result_of(proc)["snapshots"]["files"].startswith(go_back)


@pytest.mark.parametrize("cut", ["restic killed", "stream truncated, exit 0"])
def test_restore_with_a_cut_dump_stream_leaves_live_database_and_files_untouched(
        db_site: Site, cut: str) -> None:
    site = db_site
    assert site.run(DAY1).returncode == 0  # local, A and B
    (site.code / "index.php").write_text("<?php echo 'live';\n")
    before_db, before_files = live_db(site), live_files(site)
    status = "137" if cut == "restic killed" else "0"
    wrap_restic(site, f'"{site.restic}" "$@" | head -c 2000; exit {status}')
    proc = restore(site, "--from", "a")
    assert proc.returncode == (1 if cut == "restic killed" else EXIT_VERIFY), proc.stderr
    result = result_of(proc)
    # Killed: the load into the side database fails. Truncated with exit 0: the dump's trailer
    # line is cut off with the rest, and the snapshot is marked as having one (dump-trailer=1),
    # so the stream is refused as cut. Either way nothing is swapped.
    assert result["outcome"] == "untouched"
    assert live_db(site) == before_db
    assert live_files(site) == before_files
    assert sorted(os.listdir(site.root / "mysql")) == ["demo"]  # the side database dropped
    assert not list((site.root / "srv").glob(".restore-*"))
    assert "RENAME TABLE" not in sql_log(site)
    expected = ("restic dump failed (exit 137)" if cut == "restic killed"
                else "the stream ended before its trailer line")
    assert expected in proc.stderr
    line = restores(site)[-1]
    assert line["result"] == "failed" and line["safety"] is not None
    assert any(expected in e for e in line["errors"])


def test_restore_whose_rename_fails_leaves_the_live_database_and_files_as_they_were(
        db_site: Site) -> None:
    site = db_site
    assert site.run(DAY1, "--local-only").returncode == 0
    (site.code / "index.php").write_text("<?php echo 'live';\n")
    before_db, before_files = live_db(site), live_files(site)
    (site.root / "rename-fails").touch()
    proc = restore(site, "--from", "local")
    assert proc.returncode == 1
    assert result_of(proc)["outcome"] == "swapped back"
    assert "the database swap failed, no table moved" in proc.stderr
    assert "error on rename" in proc.stderr
    assert live_db(site) == before_db and live_files(site) == before_files
    assert sorted(os.listdir(site.root / "mysql")) == ["demo"]


def test_restore_whose_file_swap_fails_swaps_the_database_back_too(
        db_site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    site = db_site
    assert site.run(DAY1, "--local-only").returncode == 0
    (site.code / "index.php").write_text("<?php echo 'live';\n")
    before_db, before_files = live_db(site), live_files(site)
    real_rename = os.rename
    calls = []

    def rename(src: str, dst: str) -> None:
        calls.append(src)
        if len(calls) == 3:  # code moved away and the restored one in; then files fails
            raise OSError(16, "Device or resource busy", src)
        real_rename(src, dst)

    monkeypatch.setattr(swap_mod.os, "rename", rename)
    cfg = config_mod.load(site.config_path)
    result = restore_site.restore(cfg, "local", None, False)
    assert result["outcome"] == "swapped back"
    assert any("Device or resource busy" in e for e in result["errors"])
    assert any("every rename undone" in e for e in result["errors"])
    assert live_db(site) == before_db and live_files(site) == before_files
    assert sorted(os.listdir(site.root / "mysql")) == ["demo"]
    assert not list((site.root / "srv").glob(".*restore-*"))


def test_restore_with_the_kept_files_of_an_interrupted_restore_refuses_to_start(
        db_site: Site) -> None:
    site = db_site
    assert site.run(DAY1, "--local-only").returncode == 0
    before_db = live_db(site)
    kept = site.root / "srv" / ".prerestore-12345678"
    kept.mkdir()
    proc = restore(site, "--from", "local")
    assert proc.returncode == 1 and "earlier restore cut after its swap" in proc.stderr
    assert str(kept) in proc.stderr
    assert live_db(site) == before_db
    assert not [s for s in site.snapshots("local") if SAFETY in s["tags"]]


def test_restore_a_writer_that_will_not_stop_aborts_before_anything_is_touched(
        db_site: Site) -> None:
    site = db_site
    assert site.run(DAY1, "--local-only").returncode == 0
    before_db, before_files = live_db(site), live_files(site)
    fake = site.root / "fakebin"
    fake.mkdir()
    calls = site.root / "systemctl-calls"
    (fake / "systemctl").write_text(f"""#!/bin/sh
echo "$*" >> {calls}
case "$1" in
  stop) [ "$2" = cron.timer ] && exit 0; echo "Job for $2 failed" >&2; exit 1;;
  is-active) exit 0;;
  start) exit 0;;
esac
""")
    (fake / "systemctl").chmod(0o755)
    cfg = site.config()
    cfg["restore"]["stop_units"] = ["cron.timer", "php-fpm.service"]
    site.config_path.write_text(json.dumps(cfg))
    proc = restore(site, "--from", "local", env={"PATH": f"{fake}:{os.environ['PATH']}"})
    assert proc.returncode == 1
    assert "systemctl stop php-fpm.service failed" in proc.stderr
    assert "cron.timer is still active after systemctl stop" in proc.stderr  # every error
    assert live_db(site) == before_db and live_files(site) == before_files
    assert not [s for s in site.snapshots("local") if SAFETY in s["tags"]]
    assert "start cron.timer" in calls.read_text()  # what was running runs again


def test_restore_with_units_that_stop_checks_them_and_starts_them_after(db_site: Site) -> None:
    site = db_site
    assert site.run(DAY1, "--local-only").returncode == 0
    fake = site.root / "fakebin"
    fake.mkdir()
    calls = site.root / "systemctl-calls"
    state = site.root / "unit-stopped"
    (fake / "systemctl").write_text(f"""#!/bin/sh
echo "$*" >> {calls}
case "$1" in
  stop) touch {state};;
  start) rm -f {state};;
  is-active) [ -e {state} ] && exit 3; exit 0;;
esac
""")
    (fake / "systemctl").chmod(0o755)
    cfg = site.config()
    cfg["restore"]["stop_units"] = ["php-fpm.service"]
    site.config_path.write_text(json.dumps(cfg))
    proc = restore(site, "--from", "local", env={"PATH": f"{fake}:{os.environ['PATH']}"})
    assert proc.returncode == 0, proc.stderr
    assert calls.read_text().split("\n")[:3] == [
        "is-active --quiet php-fpm.service", "stop php-fpm.service",
        "is-active --quiet php-fpm.service"]
    assert "start php-fpm.service" in calls.read_text() and not state.exists()


def test_restore_refuses_a_database_with_triggers_before_touching_it(db_site: Site) -> None:
    site = db_site
    assert site.run(DAY1, "--local-only").returncode == 0
    (site.root / "mysql" / "demo" / ".triggers").write_text("audit_insert")
    before_db = live_db(site)
    proc = restore(site, "--from", "local")
    assert proc.returncode == 1
    assert "trigger audit_insert" in proc.stderr and "views and triggers" in proc.stderr
    assert live_db(site) == before_db and result_of(proc)["outcome"] == "untouched"


def test_restore_a_snapshot_without_recorded_sha256_is_verified_by_a_redump(
        db_site: Site) -> None:
    """A backup taken before any sha256 was recorded: the same two snapshots, made with the
    command lines the first runner used (the bare dump, no tag)."""
    site = db_site
    cfg = config_mod.load(site.config_path)
    when = datetime.fromisoformat(DAY1)
    tags = ["weekly", "monthly"]
    cfg.restic.run(cfg.restic.backup_command_argv(
        cfg.local, cfg.database.dump_command(), cfg.dump_filename, [*tags, "db"], cfg.host,
        when), "old-style dump")
    cfg.restic.run(cfg.restic.backup_paths_argv(
        cfg.local, cfg.paths, cfg.excludes, [*tags, "files"], cfg.host, when), "old-style files")
    assert tag_value(night(site, "files"), DUMP_SHA256) is None
    proc = restore(site, "--from", "local")
    assert proc.returncode == 0, proc.stderr
    verify = result_of(proc)["verify"]
    assert verify["method"].startswith("re-dump after the swap")
    assert verify["matches_snapshot"] is True
    assert verify["dump_sha256"] == verify["streamed_sha256"] == hashlib.sha256(
        dump_source(site)).hexdigest()
    # The fallback check is a real one: a live database that then dumps otherwise is swapped
    # back (the stand-in dump prints dump-source.sql whatever the database holds).
    before_db = live_db(site)
    (site.root / "bin" / "dump-source.sql").write_text("INSERT INTO t VALUES (1,'other');\n")
    proc = restore(site, "--from", "local", "--snapshot", night(site, "files")["id"][:8])
    assert proc.returncode == EXIT_VERIFY
    assert result_of(proc)["outcome"] == "swapped back"
    assert live_db(site) == before_db
    assert "differs from the snapshot's dump" in proc.stderr


def test_restore_on_a_host_with_other_ids_stages_users_and_groups_then_drops_them(
        db_site: Site) -> None:
    site = db_site
    assert site.run(DAY1, "--local-only").returncode == 0
    files = night(site, "files")
    recorded = f"{IDS_SHA256}{tag_value(files, IDS_SHA256)}"
    other = f"{IDS_SHA256}{'0' * 16}"  # as if the backup came from a host with other ids
    proc = site.restic_cmd("local", "tag", "--remove", recorded, "--add", other, files["id"])
    assert proc.returncode == 0, proc.stderr
    proc = restore(site, "--from", "local")
    assert proc.returncode == 0, proc.stderr
    result = result_of(proc)
    assert "users and groups" in result["timings"]
    assert result["files"]["owners_remapped"] == 0  # the snapshot holds no /etc/passwd here
    assert not list(site.state_dir.glob("restore-ids-*"))


def test_restore_with_stage_config_stages_the_hosts_configuration_beside_the_live_one(
        db_site: Site) -> None:
    site = db_site
    cfg = site.config()
    cfg["paths"].append("/etc/hostname")  # a host configuration file (read-only here)
    site.config_path.write_text(json.dumps(cfg))
    assert site.run(DAY1, "--local-only").returncode == 0
    proc = restore(site, "--from", "local", "--stage-config")
    assert proc.returncode == 0, proc.stderr
    staged = result_of(proc)["config"]["staged_in"]
    with open("/etc/hostname", "rb") as live, open(f"{staged}/etc/hostname", "rb") as copy:
        assert copy.read() == live.read()
    assert result_of(proc)["config"]["differs_from_live"] == []
    assert [p.name for p in Path(staged).iterdir()] == ["etc"]  # only the configuration


def test_restore_with_the_private_files_unmounted_touches_nothing(db_site: Site) -> None:
    site = db_site
    assert site.run(DAY1, "--local-only").returncode == 0
    cfg = site.config()
    cfg["required_mounts"] = [str(site.files / "private")]  # a directory, not a mount
    site.config_path.write_text(json.dumps(cfg))
    (site.code / "index.php").unlink()
    before_db = live_db(site)
    site.log_restic()
    proc = restore(site, "--from", "local")
    assert proc.returncode == 1 and "is not mounted" in proc.stderr
    assert site.restic_calls() == []
    assert live_db(site) == before_db
    assert not (site.code / "index.php").exists()


def test_run_backup_local_rotation_forgets_a_safety_snapshot_once_expired(db_site: Site) -> None:
    """The nightly runner's own local rotation (backup.run, unchanged) forgets a restore's
    safety snapshot from its expiry date on, and never copies it to A."""
    site = db_site
    assert site.run(DAY1).returncode == 0
    proc = restore(site, "--from", "local", "--safety-days", "2")
    assert proc.returncode == 0, proc.stderr
    safety = result_of(proc)["safety"]
    taken = datetime.fromisoformat(safety["time"]).astimezone(ZoneInfo("Europe/Paris"))
    next_night = (taken + timedelta(days=1)).replace(hour=3, minute=15, second=0)
    assert site.run(next_night.isoformat()).returncode == 0
    assert {safety["db"], safety["files"]} <= {s["id"] for s in site.snapshots("local")}
    assert not [s for s in site.snapshots("a") if SAFETY in (s.get("tags") or [])]
    expiry_night = next_night + timedelta(days=1)  # the date in its safety-expires tag
    assert expiry_night.date().isoformat() == safety["expires"]
    assert site.run(expiry_night.isoformat()).returncode == 0
    left = site.snapshots("local")
    assert not [s for s in left if SAFETY in (s.get("tags") or [])]
    assert len(left) >= 2  # the nights' own backups stay


def test_restore_from_a_tier_that_is_down_names_the_other_tiers_and_touches_nothing(
        db_site: Site) -> None:
    """Fault drill 2 on the host side: backup-a unreachable when the restore lists it."""
    site = db_site
    assert site.run(DAY1).returncode == 0
    before_db, before_files = live_db(site), live_files(site)
    site.tier_down("a")
    proc = restore(site, "--from", "a")
    assert proc.returncode == 1
    assert "is backup-a reachable? --from local or --from b restores from another tier" in (
        proc.stderr)
    assert "No route to host" in proc.stderr and "nothing touched" in proc.stderr
    assert result_of(proc)["outcome"] == "untouched"
    assert live_db(site) == before_db and live_files(site) == before_files
    assert not [s for s in site.snapshots("local") if SAFETY in (s.get("tags") or [])]
    proc = restore(site, "--from", "b")  # the weekly of DAY1 is on B
    assert proc.returncode == 0, proc.stderr


def test_restore_safety_snapshot_taken_meanwhile_holds_the_live_state_not_the_side(
        db_site: Site) -> None:
    """The safety snapshot runs while the backup is restored beside: it must save the live
    files and database, never the side directories being filled."""
    site = db_site
    assert site.run(DAY1, "--local-only").returncode == 0
    (site.code / "index.php").write_text("<?php echo 'live';\n")
    proc = restore(site, "--from", "local")
    assert proc.returncode == 0, proc.stderr
    safety = result_of(proc)["safety"]
    listed = site.restic_cmd("local", "--no-lock", "ls", "--json", safety["files"])
    assert listed.returncode == 0, listed.stderr
    paths = [json.loads(line).get("path", "") for line in listed.stdout.splitlines() if line]
    assert any(p.endswith("/index.php") for p in paths)
    assert not [p for p in paths if "/.restore-" in p]
    dumped = site.restic_cmd("local", "--no-lock", "dump", safety["db"], "/demo.sql")
    assert dumped.returncode == 0 and "-- dump-sha256 " in dumped.stdout


def test_restore_whose_safety_snapshot_fails_swaps_nothing_and_says_so(
        db_site: Site) -> None:
    site = db_site
    assert site.run(DAY1, "--local-only").returncode == 0
    (site.code / "index.php").write_text("<?php echo 'live';\n")
    before_db, before_files = live_db(site), live_files(site)
    site.dump_fails()  # the live database cannot be dumped: no safety snapshot
    proc = restore(site, "--from", "local")
    assert proc.returncode == 1
    assert result_of(proc)["outcome"] == "untouched"
    assert "safety snapshot" in proc.stderr
    assert "RENAME TABLE" not in sql_log(site)
    assert live_db(site) == before_db and live_files(site) == before_files
    assert not list((site.root / "srv").glob(".restore-*"))
