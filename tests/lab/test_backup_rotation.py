"""400 days of nightly backups of a small site with the real chain (issue 6): restic 0.18 on
the web host, copies over SSH with the site's certificate into the append-only repositories
of backup-a and backup-b, their own rotation there; `--time` and the rotation's "now" follow
the simulated days. At the end each tier holds exactly the dates `python -m backup.simulate`
prints, each date with its database and files snapshots, and `restic check` is clean.

Speed (about 1 s a night instead of 3): the test's repositories get a weak key derivation
(tests/unit/backup_run/resticfast: restic's calibrated scrypt costs ~0.4 s per command); the
copies to A and B are made on every 7th night, catching up the week (the local tier keeps 7
nights, so nothing is missed: the catch-up path of a backup-a outage, exercised 57 times), and
the storage servers rotate on those nights. Their rotation only ever removes what a daily one
would have removed by then, and the last one runs on the last night, so the end state is the
same as with daily copies and rotations, which the simulator replays.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from lab.testing import LabSession
from roles.backup.layout import PYTHON, RUNNER_DIR, BackupLayout

from .test_backup_support import REPO, Chain, backup_chain

pytestmark = pytest.mark.lab
SITE = "participation"  # villeparisis keeps its real history for the other tests
START = date(2025, 1, 1)
DAYS = int(os.environ.get("BACKUP_LAB_DAYS", "400"))  # fewer only to iterate on the test
# Sundays whose backup fails (Monday's snapshot is that week's weekly); 2025-06-01 is also
# the first of a month (the 2nd becomes the monthly), 2025-10-26 the day DST ends.
SKIP = tuple(d for d in (date(2025, 1, 12), date(2025, 3, 2), date(2025, 6, 1),
                         date(2025, 10, 26)) if (d - START).days < DAYS)
ROTATE_EVERY = 7


def fresh_repositories(chain: Chain) -> None:
    """Empty repositories for the site on all three tiers, created by the runner (--init),
    with fast test keys."""
    lay = BackupLayout(SITE)
    web = chain.web(SITE)
    chain.sh(web, f"rm -rf {lay.local_repo} {lay.state}/status.json {lay.state}/runs.jsonl")
    for tier in ("a", "b"):
        chain.sh(chain.storage(tier), f"rm -rf {lay.storage_repo} {lay.storage_state}/*")
    proc = chain.run_backup(SITE, "--init")
    assert proc.returncode == 0 and "local, a, b" in proc.stdout, proc.stdout + proc.stderr
    chain.fast_keys(SITE)


def replay_config(chain: Chain, tier: str) -> str:
    """The storage configuration with a backup window as long as a replayed week: the nights
    of a week reach A and B at once, on the week's last night, and the ledger sees them arrive
    at that rotation's --now (backup.ledger); with the real 26 h window they would be suspect
    (backdated) and kept as evidence instead of rotated. Same owner and mode as the real one."""
    lay = BackupLayout(SITE)
    replay = lay.storage_config.replace(".json", "-replay.json")
    hours = 24 * (ROTATE_EVERY + 1) + 26
    script = ("import json,os,shutil,sys;src,dst,h=sys.argv[1:4];d=json.load(open(src));"
              "d.setdefault('expect',{})['window_hours']=int(h);"
              "open(dst,'w').write(json.dumps(d));shutil.copymode(src,dst);"
              "st=os.stat(src);os.chown(dst,st.st_uid,st.st_gid)")
    chain.lab.root_exec(chain.storage(tier), [PYTHON, "-c", script, lay.storage_config, replay,
                                              str(hours)])
    return replay


def night(day: date, at: str) -> datetime:
    """The aware instant of `day` at local `at`, as the simulator computes it."""
    from backup.simulate import backup_time

    hh, mm = (int(x) for x in at.split(":"))
    return backup_time(day, datetime(2000, 1, 1, hh, mm).time())


def test_400_days_leave_exactly_what_the_simulator_says(lab: LabSession) -> None:
    chain = backup_chain(lab)
    site = next(s for s in chain.inv()["sites"] if s["name"] == SITE)
    zone = ZoneInfo(chain.inv()["backup"]["timezone"])
    fresh_repositories(chain)
    replay = {tier: replay_config(chain, tier) for tier in ("a", "b")}
    web = chain.web(SITE)
    lay = BackupLayout(SITE)
    # A failing night: the dump of a database that does not exist (a real mariadb-dump error).
    cfg = json.loads((chain.root(web) / lay.config.lstrip("/")).read_text())
    cfg["database"]["name"] = "no_such_database"
    (chain.root(web) / "etc/hosting/backup/failing.json").write_text(json.dumps(cfg))

    t0 = time.monotonic()
    days = [START + timedelta(days=i) for i in range(DAYS)]
    codes: dict[date, int] = {}
    for chunk_start in range(0, DAYS, ROTATE_EVERY):
        chunk = days[chunk_start:chunk_start + ROTATE_EVERY]
        lines = []
        for day in chunk:
            when = night(day, site["backup_time"]).isoformat()
            extra = "--config /etc/hosting/backup/failing.json" if day in SKIP else ""
            if day != chunk[-1]:
                extra += " --local-only"  # A and B are caught up on the week's last night
            lines.append(f"PYTHONPATH={RUNNER_DIR} {PYTHON} -m backup.run --site {SITE} "
                         f"--time {when} {extra} >/dev/null 2>&1; echo \"{day} $?\"")
        proc = chain.sh(web, "\n".join(lines), timeout=900)
        for line in proc.stdout.split("\n"):
            if line.strip():
                d, rc = line.split()
                codes[date.fromisoformat(d)] = int(rc)
        now = night(chunk[-1], site["backup_time"]).isoformat()
        for tier in ("a", "b"):
            rot = chain.rotate(SITE, tier, "--config", replay[tier], "--now", now)
            assert rot.returncode == 0, rot.stderr
    loop_seconds = time.monotonic() - t0

    assert [d for d, rc in codes.items() if rc == 1] == list(SKIP)
    assert all(rc == 0 for d, rc in codes.items() if d not in SKIP), codes
    sim = subprocess.run(
        [sys.executable, "-m", "backup.simulate", "--start", START.isoformat(), "--days",
         str(DAYS), "--skip", ",".join(d.isoformat() for d in SKIP), "--time",
         site["backup_time"], "--json"], capture_output=True, text=True, cwd=REPO, check=True)
    expected = json.loads(sim.stdout)
    for tier in ("local", "a", "b"):
        snaps = chain.snapshots(SITE, tier)
        by_date: dict[str, set[str]] = {}
        for s in snaps:
            d = datetime.fromisoformat(s["time"][:19] + "+00:00").astimezone(zone).date()
            by_date.setdefault(d.isoformat(), set()).update(
                t for t in s["tags"] if t in ("db", "files"))
        assert sorted(by_date) == sorted(set(expected[tier])), tier
        assert all(kinds == {"db", "files"} for kinds in by_date.values()), tier
        assert len(snaps) == 2 * len(by_date), tier
        check = chain.restic(SITE, tier, "check")
        assert check.returncode == 0, check.stdout + check.stderr
    # Nothing older than 365 days anywhere (R-GDPR-3), and B holds monthlies for a year.
    last = days[-1]
    for tier in ("local", "a", "b"):
        assert all((last - date.fromisoformat(d)).days <= 365 for d in expected[tier])
    print(f"\n400 days: {loop_seconds:.0f} s ({loop_seconds / DAYS:.2f} s a night); "
          f"local {len(expected['local'])}, a {len(expected['a'])}, b {len(expected['b'])}")
    # Leave the shared lab healthy for the monitoring tests: the simulated nights are months
    # old by the real clock, so the site's backup metrics would raise BackupStale on every
    # tier; tonight's real backup (local, A, and B as the month's first) makes them current.
    tonight = chain.run_backup(SITE)
    assert tonight.returncode == 0, tonight.stdout + tonight.stderr
