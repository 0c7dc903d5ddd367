"""The runner end to end against REAL restic 0.18 repositories (local directory, A and B
behind a real `rclone serve restic --append-only`): a night's backup, its faults, nothing
lost, the storage side's rotation."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from backup_run_helpers import PASSWORD, REPO, Site

from backup.config import policy_from
from backup.dumpsum import TRAILER_LEN, parse_trailer, trailer_line
from backup.records import DUMP_SHA256, IDS_SHA256, LISTING_FILE, ids_digest, is_record, tag_value
from backup.rotation import select
from backup.run import EXIT_BACKUP_FAILED, EXIT_LOCKED, EXIT_OFFSITE_FAILED
from backup.run import series as own_series

PARIS = ZoneInfo("Europe/Paris")
DAY1 = "2025-01-05T03:15:00+01:00"  # a Sunday, first of the year's backups
DAY2 = "2025-01-06T03:15:00+01:00"
DAY3 = "2025-01-07T03:15:00+01:00"


def restic_bytes(site: Site, tier: str, *args: str) -> bytes:
    """restic's stdout on a repository directory, as bytes (a dump is no text to decode)."""
    proc = subprocess.run(
        [site.restic, "--repo", str(site.repo_dir(tier)), "--password-file",
         str(site.root / "etc" / "password"), "--no-cache", *args],
        capture_output=True, timeout=120, env={**os.environ, "TZ": "UTC"})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def kinds(snapshots: list[dict]) -> list[tuple[str, str]]:
    """(local date, kind) of each snapshot, sorted."""
    out = []
    for s in snapshots:
        moment = datetime.fromisoformat(s["time"][:19] + "+00:00").astimezone(PARIS)
        kind = "db" if "db" in s["tags"] else "files"
        out.append((moment.date().isoformat(), kind))
    return sorted(out)


def test_a_night_backs_up_db_and_files_to_every_tier(site: Site) -> None:
    proc = site.run(DAY1)
    assert proc.returncode == 0, proc.stderr
    assert "backup demo: ok" in proc.stdout
    for tier in ("local", "a", "b"):  # the first backup is weekly and monthly: B gets it
        snaps = site.snapshots(tier)
        assert kinds(snaps) == [("2025-01-05", "db"), ("2025-01-05", "files")], tier
        assert all({"weekly", "monthly"} <= set(s["tags"]) for s in snaps)
        assert all(s["hostname"] == "web-demo" for s in snaps)
    status = json.loads((site.state_dir / "status.json").read_text())
    assert status["last_run"]["result"] == "ok" and status["last_success"]
    assert {t: v["snapshots"] for t, v in status["tiers"].items()} == {"local": 2, "a": 2, "b": 2}
    assert all(v["ok"] is True and v["error"] is None for v in status["tiers"].values())
    assert status["last_run"]["steps"]["database"]["total_bytes_processed"] > 0
    assert status["tiers"]["local"]["bytes"] > 0
    assert len((site.state_dir / "runs.jsonl").read_text().splitlines()) == 1


def test_run_backup_the_dump_snapshot_ends_with_a_trailer_matching_its_body(site: Site) -> None:
    assert site.run(DAY1).returncode == 0
    dump = (site.root / "bin" / "dump-source.sql").read_bytes()
    for tier in ("local", "a"):
        snaps = {("db" if "db" in s["tags"] else "files"): s for s in site.snapshots(tier)}
        saved = restic_bytes(site, tier, "dump", snaps["db"]["id"], "/demo.sql")
        body, trailer = saved[:-TRAILER_LEN], saved[-TRAILER_LEN:]
        assert body == dump, tier  # the dump itself, unchanged
        assert parse_trailer(trailer) == hashlib.sha256(body).hexdigest(), tier
        # New backups record nothing as a tag: the files snapshot carries only the ids.
        assert tag_value(snaps["files"], DUMP_SHA256) is None
        assert tag_value(snaps["db"], DUMP_SHA256) is None
        assert tag_value(snaps["files"], IDS_SHA256) == ids_digest()
    status = json.loads((site.state_dir / "status.json").read_text())
    assert not any(is_record(t) for t in status["tiers"]["local"]["by_tag"])
    assert sorted(p.name for p in site.state_dir.iterdir()) == [
        "local-snapshots.json", "lock", "runs.jsonl", "status.json"]  # no sum file


def test_run_backup_the_dump_and_files_backups_overlap_in_time(site: Site) -> None:
    """Two restic processes at once: each logs its start and end (a wrapper); the dump waits
    (up to 10 s) until the files backup has started, so a runner that took them one after
    the other shows the dump's end before the files' start, whatever the machine's speed."""
    log = site.root / "restic-times"
    started = site.root / "files-started"
    wrapper = site.root / "bin" / "restic-timed"
    wrapper.write_text(f"""#!/bin/sh
kind=other
for a in "$@"; do
    case "$a" in --stdin-from-command) kind=db;; --exclude-caches) kind=files;; esac
done
[ $kind = files ] && touch {started}
echo "start $kind $(date +%s.%N)" >> {log}
{site.restic} "$@"
rc=$?
echo "end $kind $(date +%s.%N)" >> {log}
exit $rc
""")
    wrapper.chmod(0o755)
    dump = site.root / "bin" / "mariadb-dump"
    dump.write_text(dump.read_text().replace(
        'cat "$src"', f'i=0; while [ ! -e {started} ] && [ $i -lt 200 ]; do sleep 0.05; '
                      f'i=$((i+1)); done\ncat "$src"'))
    cfg = site.config()
    cfg["restic"]["binary"] = str(wrapper)
    site.config_path.write_text(json.dumps(cfg))
    proc = site.run(DAY1, "--local-only")
    assert proc.returncode == 0, proc.stderr
    times = {}
    for line in log.read_text().splitlines():
        event, kind, moment = line.split()
        times[(event, kind)] = float(moment)
    assert times[("start", "db")] < times[("end", "files")]
    assert times[("start", "files")] < times[("end", "db")]
    assert len(site.snapshots("local")) == 2


def test_run_backup_with_the_kept_listing_calls_restic_only_to_back_up(site: Site) -> None:
    site.log_restic()
    assert site.run(DAY1, "--local-only").returncode == 0
    # No snapshot file in the repository yet: nothing to list. The dump and the files.
    assert site.restic_calls() == ["backup", "backup"]
    proc = site.run(DAY2, "--local-only")
    assert proc.returncode == 0, proc.stderr
    assert site.restic_calls() == ["backup", "backup"]
    status = json.loads((site.state_dir / "status.json").read_text())
    assert status["last_run"]["steps"]["list local"]["kept_listing"] is True
    # The tags decided from the kept listing are those a real listing gives: Monday 6 January
    # is neither the week's (Sunday's) nor the month's first backup.
    listed = own_series(site.snapshots("local"), "web-demo")
    monday = [s for s in listed if s["time"].startswith("2025-01-06")]
    assert len(monday) == 2 and all(not {"weekly", "monthly"} & set(s["tags"]) for s in monday)
    kept = json.loads((site.state_dir / LISTING_FILE).read_text())["snapshots"]
    assert {s["id"] for s in kept} == {s["id"] for s in listed}
    assert {s["id"]: sorted(s["tags"]) for s in kept} == {
        s["id"]: sorted(s["tags"]) for s in listed}


def test_run_backup_after_the_repository_changed_behind_its_back_lists_it_again(
        site: Site) -> None:
    assert site.run(DAY1, "--local-only").returncode == 0
    db = next(s for s in site.snapshots("local") if "db" in s["tags"])
    assert site.restic_cmd("local", "forget", db["id"]).returncode == 0  # by hand, on the host
    site.log_restic()
    proc = site.run(DAY2, "--local-only")
    assert proc.returncode == 0, proc.stderr
    assert site.restic_calls() == ["snapshots", "backup", "backup"]
    status = json.loads((site.state_dir / "status.json").read_text())
    assert status["last_run"]["steps"]["list local"]["kept_listing"] is False
    assert status["tiers"]["local"]["snapshots"] == 3  # day 1's files + day 2's pair


def test_the_snapshot_holds_dump_code_files_config_and_no_logs(site: Site) -> None:
    assert site.run(DAY1).returncode == 0
    snaps = {("db" if "db" in s["tags"] else "files"): s for s in site.snapshots("local")}
    dump = site.restic_cmd("local", "dump", snaps["db"]["id"], "/demo.sql")
    source = (site.root / "bin" / "dump-source.sql").read_bytes()
    assert dump.stdout.encode() == source + trailer_line(hashlib.sha256(source).hexdigest())
    listing = site.restic_cmd("local", "ls", "--json", snaps["files"]["id"])
    paths = {json.loads(line).get("path") for line in listing.stdout.splitlines()[1:]}
    for wanted in (site.code / "index.php", site.files / "image.txt",
                   site.files / "private" / "secret.txt", site.root / "cfg/nginx/site.conf"):
        assert str(wanted) in paths  # R-BKP-8
    assert not any(p and p.startswith(str(site.logs)) for p in paths)  # R-GDPR-11


def test_no_secret_reaches_argv_or_environment_of_the_dump(site: Site) -> None:
    os.environ["RESTIC_PASSWORD"] = PASSWORD  # even if the caller's environment has one
    try:
        assert site.run(DAY1).returncode == 0
    finally:
        del os.environ["RESTIC_PASSWORD"]
    seen = (site.root / "bin" / "dump-seen").read_text()
    assert PASSWORD not in seen
    assert "secret-db-pw" not in seen  # only the option file's path
    assert "RESTIC_" not in seen
    assert f"--defaults-extra-file={site.root}/etc/db.cnf" in seen


def test_a_dump_failing_half_way_fails_the_backup_and_keeps_no_snapshot(site: Site) -> None:
    assert site.run(DAY1).returncode == 0
    site.dump_fails()
    proc = site.run(DAY2)
    assert proc.returncode == EXIT_BACKUP_FAILED
    assert "FAILED" in proc.stderr and "database dump failed, no snapshot kept" in proc.stderr
    assert "command failed: exit status 2" in proc.stderr  # restic's words reach the message
    for tier in ("local", "a", "b"):
        assert {d for d, _ in kinds(site.snapshots(tier))} == {"2025-01-05"}, tier
    status = json.loads((site.state_dir / "status.json").read_text())
    assert status["last_run"]["result"] == "failed"
    # The files were backed up meanwhile (at once), then withdrawn: both or neither.
    steps = status["last_run"]["steps"]
    assert steps["files"]["ok"] and steps["withdraw partial backup"]["ok"]
    assert status["tiers"]["local"]["ok"] is False
    assert "database dump failed" in status["tiers"]["local"]["error"]
    from tasks.backup_status import table

    rows = table({"demo": {"web": status}}, datetime(2025, 1, 6, 12, 0, tzinfo=PARIS))
    assert next(r for r in rows if r.split()[1:2] == ["local"]).endswith("  FAILED")
    assert status["last_success"]["finished"]  # the previous night's success is still shown
    check = site.restic_cmd("local", "check")
    assert check.returncode == 0, check.stderr
    site.dump_fails(False)
    assert site.run(DAY3).returncode == 0


def test_a_missing_path_fails_before_anything_is_saved(site: Site) -> None:
    cfg = site.config()
    cfg["paths"].append(str(site.root / "missing"))  # restic itself would only warn
    site.config_path.write_text(json.dumps(cfg))
    proc = site.run(DAY1)
    assert proc.returncode == EXIT_BACKUP_FAILED, proc.stderr
    assert f"paths to back up are missing: {site.root}/missing" in proc.stderr
    assert site.snapshots("local") == []


def test_files_failing_withdraws_the_nights_database_snapshot(site: Site) -> None:
    assert site.run(DAY1).returncode == 0
    cfg = site.config()
    cfg["excludes"].append("[")  # restic refuses the pattern: the files step fails
    site.config_path.write_text(json.dumps(cfg))
    proc = site.run(DAY2)
    assert proc.returncode == EXIT_BACKUP_FAILED, proc.stderr
    assert "files backup failed" in proc.stderr and "invalid pattern" in proc.stderr
    # A backup is both snapshots or neither: no lone dump of the 6th anywhere.
    for tier in ("local", "a", "b"):
        assert {d for d, _ in kinds(site.snapshots(tier))} == {"2025-01-05"}, tier
    status = json.loads((site.state_dir / "status.json").read_text())
    assert status["last_run"]["steps"]["database"]["ok"]  # taken, then withdrawn
    assert status["last_run"]["steps"]["withdraw partial backup"]["ok"]


def test_run_backup_after_a_withdrawn_partial_backup_the_kept_listing_stays_exact(
        site: Site) -> None:
    assert site.run(DAY1, "--local-only").returncode == 0
    good = site.config()
    broken = site.config()
    broken["excludes"].append("[")  # the files fail while the dump succeeds
    site.config_path.write_text(json.dumps(broken))
    assert site.run(DAY2, "--local-only").returncode == EXIT_BACKUP_FAILED
    site.config_path.write_text(json.dumps(good))
    site.log_restic()
    proc = site.run(DAY3, "--local-only")
    assert proc.returncode == 0, proc.stderr
    assert site.restic_calls() == ["backup", "backup"]  # no listing: the kept one is exact
    status = json.loads((site.state_dir / "status.json").read_text())
    assert status["last_run"]["steps"]["list local"]["kept_listing"] is True
    kept = json.loads((site.state_dir / LISTING_FILE).read_text())["snapshots"]
    assert {s["id"] for s in kept} == {s["id"] for s in site.snapshots("local")}
    assert {d for d, _ in kinds(kept)} == {"2025-01-05", "2025-01-07"}


def test_backup_a_unreachable_keeps_local_and_the_next_run_catches_up(site: Site) -> None:
    from tasks.backup_status import table

    assert site.run(DAY1).returncode == 0
    site.tier_down("a")
    proc = site.run(DAY2)
    assert proc.returncode == EXIT_OFFSITE_FAILED
    assert "copy to a failed" in proc.stderr and "No route to host" in proc.stderr
    assert {d for d, _ in kinds(site.snapshots("local"))} == {"2025-01-05", "2025-01-06"}
    assert {d for d, _ in kinds(site.snapshots("a"))} == {"2025-01-05"}
    # status.json: A marked failed (its last known picture kept), local and B fine.
    status = json.loads((site.state_dir / "status.json").read_text())
    tiers = status["tiers"]
    assert tiers["a"]["ok"] is False and "No route to host" in tiers["a"]["error"]
    assert tiers["a"]["snapshots"] == 2  # night 1's picture, as last seen
    assert tiers["local"]["ok"] is True and tiers["b"]["ok"] is True
    assert tiers["local"]["newest"]["time"].startswith("2025-01-06")
    # `fab backup.status` reads the same file: the A row says the copy failed.
    now = datetime(2025, 1, 6, 12, 0, tzinfo=PARIS)
    rows = {line.split()[1]: line for line in table({"demo": {"web": status}}, now)[1:]
            if line.split()[0] == "demo"}
    assert rows["a"].endswith("COPY FAILED")
    assert "FAILED" not in rows["local"] and "FAILED" not in rows["b"]
    site.tier_down("a", False)
    assert site.run(DAY3).returncode == 0
    assert {d for d, _ in kinds(site.snapshots("a"))} == {"2025-01-05", "2025-01-06",
                                                          "2025-01-07"}
    assert len(site.snapshots("a")) == 6
    status = json.loads((site.state_dir / "status.json").read_text())
    assert status["tiers"]["a"]["ok"] is True and status["tiers"]["a"]["error"] is None
    assert status["tiers"]["a"]["snapshots"] == 6


def test_a_transfer_cut_half_way_leaves_a_consistent_repo_and_the_next_run_completes(
        site: Site) -> None:
    (site.files / "big.bin").write_bytes(os.urandom(3 << 20))  # 3 MiB: several packs
    site.cut_transfer("a", 1 << 20)
    proc = site.run(DAY1)
    assert proc.returncode == EXIT_OFFSITE_FAILED, proc.stderr
    assert "copy to a failed" in proc.stderr and "connection" in proc.stderr
    # The storage server's own run: stale lock removed, rotation, restic check clean.
    rotation = site.rotate("a", DAY1, "--check")
    assert rotation.returncode == 0, rotation.stderr
    site.cut_transfer("a", None)
    proc = site.run(DAY2)
    assert proc.returncode == 0, proc.stderr
    assert {d for d, _ in kinds(site.snapshots("a"))} == {"2025-01-05", "2025-01-06"}
    check = site.restic_cmd("a", "check", "--read-data")
    assert check.returncode == 0, check.stdout + check.stderr


def _http2(program: str, method: str, path: str, body: Path | None = None) -> str:
    """One HTTP/2 request (rclone's stdio protocol) to the append-only server started through
    the same forced command: the program gets the TCP connection as stdin and stdout."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    data = [] if body is None else ["--data-binary", f"@{body}"]
    curl = subprocess.Popen(
        ["curl", "-s", "-m", "30", "-o", "/dev/null", "-w", "%{http_code}",
         "--http2-prior-knowledge", "-X", method, *data, f"http://127.0.0.1:{port}{path}"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    listener.settimeout(30)
    conn, _ = listener.accept()
    server = subprocess.Popen([program, "-F", "x", "alias"], stdin=conn.fileno(),
                              stdout=conn.fileno())
    out, _ = curl.communicate(timeout=60)
    conn.close()
    listener.close()
    server.kill()
    server.wait()
    return out.decode()


def test_the_storage_server_refuses_deletes_and_overwrites(site: Site) -> None:
    assert site.run(DAY1).returncode == 0
    for tier in ("a", "b"):
        program = site.config()["repositories"][tier]["ssh_program"]
        victim = site.snapshots(tier)[0]["id"]
        path = site.repo_dir(tier) / "snapshots" / victim
        before = path.read_bytes()
        assert _http2(program, "GET", f"/snapshots/{victim}") == "200"  # reads work
        assert _http2(program, "DELETE", f"/snapshots/{victim}") == "403"
        junk = site.root / "junk"
        junk.write_bytes(b"not a snapshot")
        assert _http2(program, "POST", f"/snapshots/{victim}", junk) == "403"
        assert _http2(program, "DELETE", "/config") == "403"
        assert path.read_bytes() == before, tier


def test_restic_forget_from_the_web_host_leaves_the_snapshot_on_a(site: Site) -> None:
    assert site.run(DAY1).returncode == 0
    cfg = site.config()
    before = {s["id"] for s in site.snapshots("a")}
    victim = sorted(before)[0]
    proc = subprocess.run(
        [cfg["restic"]["binary"], "--repo", "rclone:demo", "--password-file",
         cfg["password_file"], "--no-cache", "--option",
         f"rclone.program={cfg['repositories']['a']['ssh_program']}", "forget", victim],
        capture_output=True, text=True, env={"PATH": os.environ["PATH"], "HOME": "/root"},
        timeout=120)  # restic retries the refused delete for ~13 s
    assert "403 Forbidden" in proc.stderr
    assert {s["id"] for s in site.snapshots("a")} == before
    assert site.restic_cmd("a", "check").returncode == 0


def test_a_second_run_while_one_runs_is_refused_by_the_lock(site: Site) -> None:
    cfg = site.config()
    # The first run's dump blocks until released, so the second surely starts meanwhile.
    dump = site.root / "bin" / "mariadb-dump"
    dump.write_text(dump.read_text().replace("cat \"$src\"", 'while [ ! -e "$(dirname "$0")/go" ]'
                                             '; do sleep 0.05; done\ncat "$src"'))
    first = subprocess.Popen(
        [sys.executable, "-m", "backup.run", "--site", "demo", "--config",
         str(site.config_path), "--time", DAY1], cwd=REPO, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        seen = site.root / "bin" / "dump-seen"
        for _ in range(200):
            if seen.exists():
                break
            subprocess.run(["sleep", "0.05"])
        second = site.run(DAY1)
        assert second.returncode == EXIT_LOCKED
        assert "REFUSED" in second.stderr and f"pid {first.pid}" in second.stderr
    finally:
        (site.root / "bin" / "go").touch()
        first.communicate(timeout=120)
    assert first.returncode == 0
    assert len(site.snapshots("local")) == 2  # one backup: db + files
    assert cfg["lock_file"]


def test_init_is_idempotent(site: Site) -> None:
    proc = subprocess.run([sys.executable, "-m", "backup.run", "--site", "demo", "--config",
                           str(site.config_path), "--init"], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "repositories created: none" in proc.stdout


def test_local_rotation_and_storage_rotation_follow_the_policy(site: Site) -> None:
    """Nine nights, then the storage servers rotate: every tier holds what select() says."""
    start = datetime(2025, 1, 1, 3, 15, tzinfo=PARIS)
    for offset in range(9):
        when = (start + timedelta(days=offset)).isoformat()
        proc = site.run(when)
        assert proc.returncode == 0, proc.stderr
    now = start + timedelta(days=8)
    policy = policy_from(site.config()["policy"])
    local_dates = {d for d, _ in kinds(site.snapshots("local"))}
    assert local_dates == {f"2025-01-{d:02d}" for d in range(3, 10)}  # age < 7
    for tier in ("a", "b"):
        snaps = site.snapshots(tier)
        proc = site.rotate(tier, now.isoformat(), "--check")
        assert proc.returncode == 0, proc.stderr
        expected = set(select(tier, own_series(snaps, "web-demo"), now, policy).keep_ids)
        assert {s["id"] for s in site.snapshots(tier)} == expected
        status = json.loads((site.root / f"storage-{tier}" / "status.json").read_text())
        assert status["last_run"]["steps"]["check"]["read_data_subset"].endswith("/28")
    # B: the monthly of 1 January (first of the month) and the weekly of Sunday 5 January.
    assert {d for d, _ in kinds(site.snapshots("b"))} == {"2025-01-01", "2025-01-05"}


def test_restore_from_a_puts_files_back_deletes_strays_and_verifies_the_dump(
        site: Site) -> None:
    assert site.run(DAY1).returncode == 0
    (site.files / "image.txt").write_text("changed after the backup\n")
    (site.code / "index.php").unlink()
    (site.files / "stray.txt").write_text("created after the backup\n")
    (site.logs / "access.log").write_text("kept: not a restored path\n")
    proc = subprocess.run(
        [sys.executable, "-m", "backup.restore", "--site", "demo", "--config",
         str(site.config_path), "--from", "a"], capture_output=True, text=True, cwd=REPO,
        timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)["restore"]
    assert (site.files / "image.txt").read_text() == "public file\n"
    assert (site.code / "index.php").exists()
    assert not (site.files / "stray.txt").exists()  # --delete, inside the site's data only
    assert (site.logs / "access.log").exists()
    loaded = (site.root / "bin" / "loaded.sql").read_bytes()
    source = (site.root / "bin" / "dump-source.sql").read_bytes()
    assert loaded[:-TRAILER_LEN] == source  # then the trailer, an SQL comment
    assert parse_trailer(loaded[-TRAILER_LEN:]) == hashlib.sha256(source).hexdigest()
    assert result["verify"]["matches_snapshot"] is True
    assert result["snapshot_time"].startswith("2025-01-05")
    runs = (site.state_dir / "runs.jsonl").read_text().splitlines()
    assert json.loads(runs[-1])["kind"] == "restore"  # R-INC-4


def test_restore_at_a_date_takes_that_nights_backup(site: Site) -> None:
    assert site.run(DAY1).returncode == 0
    (site.root / "bin" / "dump-source.sql").write_text("INSERT INTO t VALUES (1,'day 2');\n")
    assert site.run(DAY2).returncode == 0
    proc = site.restore("--from", "local", "--at", "2025-01-05")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)["restore"]
    assert result["snapshot_time"].startswith("2025-01-05")
    assert "row 199" in (site.root / "bin" / "loaded.sql").read_text()
    assert result["verify"]["matches_snapshot"] is True  # day 1's dump, as recorded on day 1
    # --redump also dumps the live "database" (the stand-in dumps day 2's): it must differ,
    # and the exit code says so.
    proc = site.restore("--from", "local", "--at", "2025-01-05", "--redump")
    result = json.loads(proc.stdout)["restore"]
    assert result["verify"]["matches_snapshot"] is False and proc.returncode == 6
