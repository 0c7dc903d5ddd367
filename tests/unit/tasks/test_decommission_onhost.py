"""backup/decommission.py, the on-host half of `fab decommission` (issue 16, R-GDPR-8), on a
directory standing for a host's root and a recorded stand-in for systemctl, mariadb, getent
and userdel (rm is real): every path of the site deleted and checked absent, the other site's
left alone, the databases and accounts dropped, the storage purge now / scheduled / due."""
from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backup import decommission as d

SITE, OTHER = "participation", "villeparisis"


class FakeHost:
    """The commands a decommission runs, answered like a host where the site exists."""

    def __init__(self, databases: list[str], fail: str = "") -> None:
        self.databases = list(databases)
        self.users = {SITE, f"{SITE}-code", f"backup-{SITE}"}
        self.calls: list[list[str]] = []
        self.fail = fail

    def __call__(self, argv) -> subprocess.CompletedProcess[str]:
        argv = list(argv)
        self.calls.append(argv)
        done = lambda code=0, out="", err="": subprocess.CompletedProcess(argv, code, out, err)  # noqa: E731
        if self.fail and self.fail in " ".join(argv):
            return done(1, err=f"{self.fail}: refused")
        if argv[0] == "rm":
            return subprocess.run(argv, capture_output=True, text=True, check=False)
        if argv[0] == "getent":
            return done(0 if argv[2] in self.users else 2)
        if argv[0] in ("userdel", "groupdel"):
            self.users.discard(argv[1])
            return done()
        if argv[:2] == ["systemctl", "is-active"]:
            return done(3)
        if argv[0] == "mariadb":
            sql = argv[-1]
            if sql == "SHOW DATABASES":
                return done(out="\n".join(self.databases) + "\n")
            if sql.startswith("DROP DATABASE"):
                self.databases.remove(sql.split("`")[1])
                return done()
            if "CONCAT" in sql:
                return done(out=f"{SITE}@localhost\n" if SITE in self.users else "")
            if "COUNT" in sql:
                return done(out="0\n")
            if sql.startswith("DROP USER"):
                return done()
        return done()


def tree(root: Path, paths: list[str]) -> None:
    for p in paths:
        t = root / p.lstrip("/")
        t.parent.mkdir(parents=True, exist_ok=True)
        if "." in t.name:
            t.write_text("data")
        else:
            t.mkdir(exist_ok=True)
            (t / "file").write_text("data")


def test_decommission_web_site_paths_deleted_other_site_kept(tmp_path: Path) -> None:
    tree(tmp_path, d.web_paths(SITE) + d.web_paths(OTHER)[:3] + ["/var/log/nginx/access.log"])
    host = FakeHost(["mysql", SITE, f"{SITE}_rollback", OTHER, f"{OTHER}_failed"])
    rec = d.Record(SITE, "web", tmp_path, host)
    d.decommission_web(rec, SITE)
    assert rec.ok, [x for x in rec.steps + rec.checks if not x["ok"]]
    for p in d.web_paths(SITE) + ["/var/log/nginx/access.log"]:
        assert not (tmp_path / p.lstrip("/")).exists(), p
    for p in d.web_paths(OTHER)[:3]:
        assert (tmp_path / p.lstrip("/") / "file").exists(), p
    assert host.databases == ["mysql", OTHER, f"{OTHER}_failed"]
    assert sorted(c[1] for c in host.calls if c[0] == "userdel") == [SITE, f"{SITE}-code"]
    checked = {c["what"] for c in rec.checks}
    assert f"/srv/{SITE} is absent" in checked and f"no MariaDB account {SITE}" in checked
    assert "/var/lib/hosting/release-db/participation is absent" in checked


def test_decommission_web_tombstone_written_first_and_kept(tmp_path: Path) -> None:
    tree(tmp_path, d.web_paths(SITE))
    rec = d.Record(SITE, "web", tmp_path, FakeHost(["mysql", SITE]))
    d.decommission_web(rec, SITE)
    assert rec.steps[0]["what"].startswith("marked the site decommissioned")
    stone = tmp_path / d.TOMBSTONE_DIR.lstrip("/") / f"{SITE}.json"
    assert json.loads(stone.read_text())["site"] == SITE


def test_decommission_web_tombstone_unwritable_nothing_deleted(tmp_path: Path) -> None:
    tree(tmp_path, d.web_paths(SITE))
    blocker = tmp_path / d.TOMBSTONE_DIR.lstrip("/")
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("a file where the directory should be")
    host = FakeHost(["mysql", SITE])
    rec = d.Record(SITE, "web", tmp_path, host)
    d.decommission_web(rec, SITE)
    assert not rec.ok and len(rec.steps) == 1
    assert host.databases == ["mysql", SITE] and host.calls == []
    for p in d.web_paths(SITE):
        assert (tmp_path / p.lstrip("/")).exists(), p


def test_decommission_web_failed_drop_reported_not_ok(tmp_path: Path) -> None:
    host = FakeHost(["mysql", SITE], fail="DROP DATABASE")
    rec = d.Record(SITE, "web", tmp_path, host)
    d.decommission_web(rec, SITE)
    assert not rec.ok
    bad = [x for x in rec.steps + rec.checks if not x["ok"]]
    assert bad[0]["what"] == f"dropped database {SITE}" and "refused" in bad[0]["detail"]
    assert any(x["what"].startswith(f"no database {SITE}") for x in bad)


def test_storage_scheduled_repository_kept_access_closed(tmp_path: Path, capsys) -> None:
    tree(tmp_path, d.storage_paths(SITE)[:-1])
    code = d.main(["storage", "--site", SITE, "--purge-at", "2027-12-06T03:00:00Z",
                   "--root", str(tmp_path)])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["ok"] and doc["purge_at"] == "2027-12-06T03:00:00Z"
    assert (tmp_path / f"srv/backups/{SITE}/file").exists()
    assert not (tmp_path / f"etc/ssh/auth_principals/backup-{SITE}").exists()
    sched = json.loads((tmp_path / f"etc/hosting/backup-storage/purge/{SITE}.json").read_text())
    assert sched["purge_at"] == "2027-12-06T03:00:00Z"


def test_purge_due_before_date_nothing_after_date_everything(tmp_path: Path) -> None:
    tree(tmp_path, d.storage_paths(SITE)[:-1] + d.storage_paths(OTHER)[:1])
    when = datetime(2027, 12, 6, 3, tzinfo=UTC)
    d.schedule_purge(d.Record(SITE, "scheduled", tmp_path), when, when - timedelta(days=366))
    host = FakeHost([])
    assert d.purge_due(tmp_path, when - timedelta(seconds=1), host) == []
    assert (tmp_path / f"srv/backups/{SITE}/file").exists()
    done = d.purge_due(tmp_path, when, host)
    assert [r.site for r in done] == [SITE] and done[0].ok
    for p in d.storage_paths(SITE):
        assert not (tmp_path / p.lstrip("/")).exists(), p
    assert (tmp_path / f"srv/backups/{OTHER}/file").exists()
    record = json.loads((tmp_path / f"var/lib/hosting/backup/purged/{SITE}.json").read_text())
    assert record["purged_at"] == "2027-12-06T03:00:00Z" and record["ok"]
    assert ["userdel", f"backup-{SITE}"] in host.calls


def test_purge_due_unreadable_schedule_reported(tmp_path: Path) -> None:
    bad = tmp_path / d.PURGE_DIR.lstrip("/") / f"{SITE}.json"
    bad.parent.mkdir(parents=True)
    bad.write_text("{not json")
    done = d.purge_due(tmp_path, datetime.now(UTC), FakeHost([]))
    assert len(done) == 1 and not done[0].ok and done[0].steps[0]["what"] == "read the schedule"


def test_main_purge_at_without_offset_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        d.main(["storage", "--site", SITE, "--purge-at", "2027-12-06T03:00:00"])
    assert exc.value.code == 2 and "UTC offset" in capsys.readouterr().err


def test_main_bad_site_name_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        d.main(["web", "--site", "../etc", "--database", "x"])
    assert exc.value.code == 2 and "not a site name" in capsys.readouterr().err


def test_purge_due_failed_step_keeps_the_schedule_for_tomorrow(tmp_path: Path) -> None:
    tree(tmp_path, d.storage_paths(SITE)[:-1])
    when = datetime(2027, 12, 6, 3, tzinfo=UTC)
    d.schedule_purge(d.Record(SITE, "scheduled", tmp_path), when, when - timedelta(days=366))
    done = d.purge_due(tmp_path, when, FakeHost([], fail="userdel"))
    assert not done[0].ok
    assert (tmp_path / d.PURGE_DIR.lstrip("/") / f"{SITE}.json").exists()
    assert not (tmp_path / f"srv/backups/{SITE}").exists()
    again = d.purge_due(tmp_path, when + timedelta(days=1), FakeHost([]))
    assert again[0].ok and not (tmp_path / d.PURGE_DIR.lstrip("/") / f"{SITE}.json").exists()


def test_schedule_purge_withdraws_the_site_metrics_only(tmp_path: Path) -> None:
    prom = tmp_path / d.TEXTFILE_DIR.lstrip("/")
    prom.mkdir(parents=True)
    for name in (f"hosting_backup_{SITE}_a.prom", f"hosting_backup_{OTHER}_a.prom"):
        (prom / name).write_text("x 1\n")
    rec = d.Record(SITE, "scheduled", tmp_path)
    d.schedule_purge(rec, datetime(2027, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
    assert rec.ok and sorted(p.name for p in prom.iterdir()) == [f"hosting_backup_{OTHER}_a.prom"]


def test_metrics_publish_decommissioned_site_withdrawn_not_published(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rotation keeps running until the purge (snapshots keep leaving at 365 days), and its
    ExecStopPost publishes: while a purge is scheduled it withdraws the site's metrics."""
    from backup import metrics

    monkeypatch.setenv(metrics.ENV_DIR, str(tmp_path / "textfile"))
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / metrics.METRICS_FILE).write_text(
        f'hosting_backup_snapshots{{site="{SITE}",tier="a"}} 3\n')
    conf = tmp_path / "conf"
    (conf / "purge").mkdir(parents=True)
    (conf / f"{SITE}.json").write_text(json.dumps({"site": SITE, "tier": "a",
                                                   "state_dir": str(tmp_path / "state")}))
    assert metrics.main(["publish", "--site", SITE, "--config-dir", str(conf)]) == 0
    published = tmp_path / "textfile" / f"hosting_backup_{SITE}_a.prom"
    assert published.exists()
    (conf / "purge" / f"{SITE}.json").write_text("{}")
    assert metrics.main(["publish", "--site", SITE, "--config-dir", str(conf)]) == 0
    assert not published.exists()
