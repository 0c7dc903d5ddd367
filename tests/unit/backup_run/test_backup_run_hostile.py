"""The storage side's rotation against what a compromised web host can write with its own
append-only identity (issue 19; R-BKP-6, R-GDPR-3, R-INC-1): real restic repositories, forged
snapshots (future, backdated, year 0, foreign host), a junk lock file. The rotation runs
cleanly, reports each anomaly, never takes a forged snapshot for the newest, and forgets the
forged ones once they ARRIVED more than max_age_days ago."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from backup_run_helpers import PASSWORD, REPO, Site

DAY1 = "2025-01-05T03:15:00+01:00"


def forge(site: Site, tier: str, when: str, host: str = "web-demo",
          tags: tuple[str, ...] = ("db",)) -> str:
    """A snapshot written with the web host's own means (restic on the repository)."""
    args = [site.restic, "--repo", str(site.repo_dir(tier)), "--password-file",
            str(site.root / "etc" / "password"), "--no-cache", "backup", "--json", "--host",
            host, "--time", when, "--stdin", "--stdin-filename", "demo.sql"]
    for tag in tags:
        args += ["--tag", tag]
    proc = subprocess.run(args, input="-- forged\n", capture_output=True, text=True,
                          timeout=120, env={**os.environ, "TZ": "UTC"})
    assert proc.returncode == 0, proc.stderr
    return next(json.loads(line)["snapshot_id"] for line in proc.stdout.splitlines()
                if '"summary"' in line)


def status(site: Site, tier: str) -> dict:
    return json.loads((site.root / f"storage-{tier}" / "status.json").read_text())


def test_rotate_hostile_snapshots_reported_kept_as_evidence_never_newest(site: Site) -> None:
    assert site.run(DAY1).returncode == 0
    genuine = {s["id"] for s in site.snapshots("a")}
    # The night's rotation records the genuine arrivals (backup.ledger).
    assert site.rotate("a", "2025-01-05T04:00:00+01:00").returncode == 0
    forged = {forge(site, "a", "2027-06-01 00:00:00"),  # the future
              forge(site, "a", "2024-11-01 00:00:00"),  # backdated
              forge(site, "a", "0000-01-01 00:00:00"),  # an impossible date
              forge(site, "a", "2025-01-05 02:00:00", host="web-other")}
    junk = site.repo_dir("a") / "locks" / ("f" * 64)
    junk.write_bytes(os.urandom(64))

    # Twenty days on: tier A's own rule (14 days) would forget day 1, but it is the newest
    # GENUINE backup, so it stays; the future-dated fake does not stand for it.
    proc = site.rotate("a", "2025-01-25T04:00:00+01:00")
    assert proc.returncode == 0, proc.stderr
    left = {s["id"] for s in site.snapshots("a")}
    assert genuine <= left and forged <= left
    assert not junk.exists()
    warnings = "\n".join(status(site, "a")["last_run"]["warnings"])
    assert warnings.count("suspect snapshot") == 4 and "lock file(s) restic cannot read" in warnings
    assert "future" in warnings and "backdated" in warnings and "cannot be read" in warnings
    from backup.metrics import parse_text
    metrics = parse_text((site.root / "storage-a" / "metrics.prom").read_text())
    labels = (("site", "demo"), ("tier", "a"))
    assert metrics[("hosting_backup_suspect_snapshots", labels)] == 4
    assert metrics[("hosting_backup_unexpected_keys", labels)] == 0

    # A check after the cleanup works (the junk lock no longer breaks it).
    assert site.rotate("a", "2025-01-25T05:00:00+01:00", "--check", "--no-rotate").returncode == 0

    # 400 days after they arrived, the forged snapshots are gone too (R-GDPR-3): nothing a
    # client writes stays for ever.
    later = (datetime.fromisoformat("2025-01-25T04:00:00+01:00") + timedelta(days=400))
    proc = site.rotate("a", later.isoformat())
    assert proc.returncode == 0, proc.stderr
    assert not forged & {s["id"] for s in site.snapshots("a")}


def test_rotate_unexpected_error_is_recorded_as_a_failed_run(site: Site) -> None:
    """Whatever breaks, the status record says so (no silent stall)."""
    assert site.run(DAY1).returncode == 0
    ledger = site.root / "storage-a" / "ledger.jsonl.lock"
    ledger.parent.mkdir(parents=True, exist_ok=True)
    ledger.mkdir()  # the ledger's lock cannot be opened: an OSError, no ResticError
    proc = site.rotate("a", "2025-01-05T04:00:00+01:00")
    assert proc.returncode == 4
    last = status(site, "a")["last_run"]
    assert last["result"] != "ok" and "unexpectedly" in " ".join(last["errors"])
    assert PASSWORD not in proc.stderr


def restic_with(site: Site, tier: str, password_file: Path, *args: str
                ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([site.restic, "--repo", str(site.repo_dir(tier)), "--password-file",
                           str(password_file), "--no-cache", *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "TZ": "UTC"})


def test_rekey_removes_the_old_and_added_keys_and_the_rotation_reports_strangers(
        site: Site) -> None:
    assert site.run(DAY1).returncode == 0
    assert site.rotate("a", "2025-01-05T04:00:00+01:00").returncode == 0  # records the keys
    old = site.root / "etc" / "password"
    evil = site.root / "evil.pw"
    evil.write_text("attacker\n")
    added = restic_with(site, "a", old, "key", "add", "--new-password-file", str(evil))
    assert added.returncode == 0, added.stderr
    assert site.rotate("a", "2025-01-05T05:00:00+01:00").returncode == 0
    assert "unexpected repository key" in " ".join(status(site, "a")["last_run"]["warnings"])

    new = site.root / "new.pw"
    new.write_text("a brand new password\n")
    proc = subprocess.run([sys.executable, "-m", "backup.rekey", "--site", "demo", "--config",
                           str(site.storage_config("a")), "--new-password-file", str(new)],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert len(result["removed"]) == 2
    assert sorted(p.name for p in Path(result["saved"]).iterdir()) == sorted(result["removed"])
    assert restic_with(site, "a", evil, "cat", "config").returncode != 0
    assert restic_with(site, "a", old, "cat", "config").returncode != 0
    assert restic_with(site, "a", new, "cat", "config").returncode == 0
    assert "attacker" not in proc.stdout + proc.stderr and "brand new" not in proc.stderr

    cfg = json.loads(site.storage_config("a").read_text())
    cfg["password_file"] = str(new)
    path = site.root / "etc" / "storage-a-new.json"
    path.write_text(json.dumps(cfg))
    again = subprocess.run([sys.executable, "-m", "backup.rotate", "--site", "demo", "--config",
                            str(path), "--now", "2025-01-05T06:00:00+01:00"],
                           capture_output=True, text=True, cwd=REPO, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "unexpected" not in " ".join(status(site, "a")["last_run"]["warnings"])


def test_junk_locks_leave_the_lock_of_a_backup_running_now(site: Site) -> None:
    """A backup that waits on its input holds a real lock: never taken for junk."""
    from backup.restic import Repo, Restic
    from backup.trusted import junk_locks, locks_of

    assert site.run(DAY1).returncode == 0
    repo_dir = site.repo_dir("a")
    running = subprocess.Popen(
        [site.restic, "--repo", str(repo_dir), "--password-file", str(site.root / "etc" /
         "password"), "--no-cache", "backup", "--stdin", "--stdin-filename", "x.sql"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "TZ": "UTC"})
    try:
        def complete() -> list[str]:  # not the <id>-tmp-<n> of a lock being written
            return [p.name for p in (repo_dir / "locks").iterdir() if "-tmp-" not in p.name]

        deadline = 100
        while not complete() and deadline:
            deadline -= 1
            subprocess.run(["sleep", "0.1"], check=True)
        real = complete()
        assert real, "the running backup took no lock"
        (repo_dir / "locks" / ("e" * 64)).write_bytes(os.urandom(80))
        # a lock being written right now (restic's local backend renames it when complete)
        (repo_dir / "locks" / ("f" * 64 + "-tmp-12345")).write_bytes(b"")
        repo = Repo(tier="a", location=str(repo_dir),
                    password_file=str(site.root / "etc" / "password"))
        assert junk_locks(repo, Restic(binary=site.restic)) == ["e" * 64]
        (repo_dir / "locks" / ("f" * 64 + "-tmp-12345")).unlink()
        # fab backup.contain drops the locks of the contained host, and only those.
        assert locks_of(repo, Restic(binary=site.restic), socket.gethostname()) == real
        assert locks_of(repo, Restic(binary=site.restic), "web-other") == []
    finally:
        running.kill()
        running.wait()


def test_junk_locks_temporary_file_left_for_hours_is_junk(tmp_path: Path) -> None:
    """A <id>-tmp-<n> is a lock being written for ten minutes at most; older, it is junk."""
    from backup.restic import Repo, Restic
    from backup.trusted import junk_locks

    locks = tmp_path / "locks"
    locks.mkdir()
    fresh, stale = locks / ("a" * 64 + "-tmp-1"), locks / ("b" * 64 + "-tmp-2")
    partial = locks / ("c" * 64 + ".8f3a2c1d.partial")  # rclone's, on the storage servers
    for f in (fresh, stale, partial):
        f.write_bytes(b"")
    os.utime(stale, (time.time() - 3 * 3600,) * 2)
    repo = Repo(tier="a", location=str(tmp_path), password_file=str(tmp_path / "pw"))
    assert junk_locks(repo, Restic(binary="/nonexistent/restic")) == [stale.name]


def test_run_copies_past_a_year_zero_snapshot_on_a(site: Site) -> None:
    """The web host's next night still copies to A when A holds a snapshot it cannot date."""
    assert site.run(DAY1).returncode == 0
    forge(site, "a", "0000-01-01 00:00:00")
    proc = site.run("2025-01-06T03:15:00+01:00")
    assert proc.returncode == 0, proc.stderr
