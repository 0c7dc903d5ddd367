"""The deployment on a web host (hw_release): switch, health check, database snapshot around
the post-switch step and the way back, run here on a temporary tree as the current user (the
host runs them as root for the site's users)."""
from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import hw_release
import hw_stage
import pytest
from hw_util import HelperError

from .release_helpers import LocalSite, build, make_site, upload


@pytest.fixture
def site(tmp_path: Path) -> LocalSite:
    return make_site(tmp_path)


def test_deploy_first_release_goes_live(site, tmp_path):
    b = build(tmp_path)
    report = hw_release.deploy(site, upload(tmp_path, b), b.sha256, b.source)
    assert report["action"] == "stage" and report["previous"] is None
    live = Path(site.current)
    assert (live / "RELEASE").read_text() == "fixture-1\n"
    assert os.readlink(live / "web/sites/default/settings.local.php") == site.settings_local
    assert os.readlink(live / "web/sites/default/files") == site.public_files
    assert json.loads((live / hw_stage.MANIFEST).read_text())["sha256"] == b.sha256


def test_deploy_same_code_twice_changes_nothing(site, tmp_path):
    b = build(tmp_path)
    hw_release.deploy(site, upload(tmp_path, b), b.sha256, b.source)
    again = hw_release.deploy(site, upload(tmp_path, b), b.sha256, b.source)
    assert again["action"] == "none" and len(site.existing()) == 1


def test_deploy_then_rollback_serves_previous(site, tmp_path):
    b1, b2 = build(tmp_path, "v1"), build(tmp_path, "v2")
    r1 = hw_release.deploy(site, upload(tmp_path, b1), b1.sha256, b1.source,
                           now=datetime(2026, 1, 1, tzinfo=UTC))
    hw_release.deploy(site, upload(tmp_path, b2), b2.sha256, b2.source,
                      now=datetime(2026, 1, 2, tzinfo=UTC))
    assert (Path(site.current) / "RELEASE").read_text() == "v2\n"
    back = hw_release.rollback(site)
    assert back["release"] == r1["release"]
    assert (Path(site.current) / "RELEASE").read_text() == "v1\n"
    assert [line.split()[2] for line in Path(site.log).read_text().splitlines()] == [
        "deploy", "deploy", "rollback"]


def test_deploy_failed_health_check_switches_back(site, tmp_path):
    b1, b2 = build(tmp_path, "v1"), build(tmp_path, "v2")
    hw_release.deploy(site, upload(tmp_path, b1), b1.sha256, b1.source,
                      now=datetime(2026, 1, 1, tzinfo=UTC))
    answers = iter([(False, "500"), (True, "200")])  # the new release fails, the old one not
    site.health = lambda: next(answers)
    with pytest.raises(HelperError, match="rolled back to"):
        hw_release.deploy(site, upload(tmp_path, b2), b2.sha256, b2.source,
                          now=datetime(2026, 1, 2, tzinfo=UTC))
    assert (Path(site.current) / "RELEASE").read_text() == "v1\n"


# -- release safety: database snapshot and the way back (issue 11, section 2; R-INC-1) ------
def _records(site) -> list[dict]:
    return [json.loads(line) for line in Path(site.records).read_text().splitlines()]


def _n_then_failing(site, tmp_path, **fail):
    """Release N (schema 2), then N+1 (schema 3) whose update fails after changing the DB."""
    n = build(tmp_path, "v2", schema=2)
    first = hw_release.deploy(site, upload(tmp_path, n), n.sha256, n.source,
                              now=datetime(2026, 1, 1, tzinfo=UTC))
    site.db["rows"].append("written between releases")
    site.fail.update(fail)
    bad = build(tmp_path, "v3", schema=3, fail_update=True)
    with pytest.raises(hw_release.ReleaseFailed) as err:
        hw_release.deploy(site, upload(tmp_path, bad), bad.sha256, bad.source,
                          now=datetime(2026, 1, 2, tzinfo=UTC))
    return first, err.value


def test_deploy_update_failing_after_db_change_restores_db_and_code(site, tmp_path):
    first, err = _n_then_failing(site, tmp_path)
    assert site.db["version"] == 2
    assert "written between releases" in site.db["rows"]
    assert site.db["maintenance"] is False
    assert site.current_id() == first["release"]
    assert (Path(site.current) / "RELEASE").read_text() == "v2\n"
    assert "failed at post-deploy" in str(err) and "code and database rolled back" in str(err)


def test_deploy_update_failing_record_names_step_error_rollback_and_timings(site, tmp_path):
    first, err = _n_then_failing(site, tmp_path)
    rec = _records(site)[-1]
    assert rec == err.record
    assert rec["result"] == "rolled back" and rec["failed_step"] == "post-deploy"
    assert "update failed after changing the DB" in rec["error"]
    assert rec["rolled_back"] == {"code": True, "db": True} and rec["maintenance"] is False
    assert rec["previous"] == first["release"]
    assert {"db-snapshot", "post-deploy", "rollback-db-restore", "rollback-switch",
            "rollback-health"} <= set(rec["timings"])
    assert rec["rollback_seconds"] >= 0 and rec["seconds"] >= rec["rollback_seconds"]


def test_deploy_steps_snapshot_after_maintenance_before_update(site, tmp_path):
    _n_then_failing(site, tmp_path)
    last = site.calls[site.calls.index("health") + 1:]  # the failing release's steps
    assert last == ["maintenance-on", "snapshot", "post-deploy", "maintenance-on", "db-restore",
                    "maintenance-off", "health"]


def test_deploy_db_restore_failing_stays_in_maintenance_every_error_reported(site, tmp_path):
    first, err = _n_then_failing(site, tmp_path, **{"db-restore": True})
    rec = err.record
    assert rec["result"] == "rollback failed" and rec["maintenance"] is True
    assert site.db["maintenance"] is True
    assert rec["rolled_back"] == {"code": False, "db": False}
    assert [e.split(":")[0] for e in rec["errors"]] == ["post-deploy", "rollback-db-restore"]
    assert "update failed" in str(err) and "participation_rollback" in str(err)
    # the code stays with the database it matches (the failed release's), not N's
    assert site.current_id() != first["release"]


def test_deploy_previous_release_unhealthy_after_rollback_maintenance_back_on(site, tmp_path):
    n = build(tmp_path, "v2", schema=2)
    hw_release.deploy(site, upload(tmp_path, n), n.sha256, n.source,
                      now=datetime(2026, 1, 1, tzinfo=UTC))
    site.health = (False, "502")
    bad = build(tmp_path, "v3", schema=3)
    with pytest.raises(hw_release.ReleaseFailed, match="stays in maintenance") as err:
        hw_release.deploy(site, upload(tmp_path, bad), bad.sha256, bad.source,
                          now=datetime(2026, 1, 2, tzinfo=UTC))
    rec = err.value.record
    assert rec["failed_step"] == "health" and rec["result"] == "rollback failed"
    assert rec["rolled_back"] == {"code": True, "db": True}
    assert rec["maintenance"] is True and site.db["maintenance"] is True
    assert site.db["version"] == 2


def test_deploy_snapshot_failing_switches_code_back_db_untouched(site, tmp_path):
    n = build(tmp_path, "v2", schema=2)
    first = hw_release.deploy(site, upload(tmp_path, n), n.sha256, n.source,
                              now=datetime(2026, 1, 1, tzinfo=UTC))
    site.fail["snapshot"] = True
    bad = build(tmp_path, "v3", schema=3)
    with pytest.raises(hw_release.ReleaseFailed) as err:
        hw_release.deploy(site, upload(tmp_path, bad), bad.sha256, bad.source,
                          now=datetime(2026, 1, 2, tzinfo=UTC))
    rec = err.value.record
    assert rec["failed_step"] == "db-snapshot" and rec["rolled_back"] == {"code": True,
                                                                           "db": False}
    assert "post-deploy" not in site.calls[-6:] and "db-restore" not in site.calls
    assert site.db["version"] == 2 and site.db["maintenance"] is False
    assert site.current_id() == first["release"]


def test_deploy_db_step_without_database_refused_live_untouched(site, tmp_path):
    n = build(tmp_path, "v2", schema=2)
    first = hw_release.deploy(site, upload(tmp_path, n), n.sha256, n.source,
                              now=datetime(2026, 1, 1, tzinfo=UTC))
    site.database = ""
    nxt = build(tmp_path, "v3", schema=3)
    with pytest.raises(hw_release.ReleaseFailed, match="no --database") as err:
        hw_release.deploy(site, upload(tmp_path, nxt), nxt.sha256, nxt.source,
                          now=datetime(2026, 1, 2, tzinfo=UTC))
    assert err.value.record["result"] == "failed"
    assert site.current_id() == first["release"] and site.db["version"] == 2


def test_deploy_success_recorded_as_live_with_snapshot(site, tmp_path):
    n = build(tmp_path, "v2", schema=2)
    report = hw_release.deploy(site, upload(tmp_path, n), n.sha256, n.source)
    rec = _records(site)[-1]
    assert rec["result"] == "live" and rec["release"] == report["release"]
    assert rec["db_snapshot"]["path"].endswith(report["release"] + ".sql")
    assert site.db == {"version": 2, "rows": ["written before", "update ran"],
                       "maintenance": False}
    assert site.status()["last_record"]["result"] == "live"


def test_deploy_refused_stage_recorded_as_failed_live_untouched(site, tmp_path):
    b1 = build(tmp_path, "v1")
    first = hw_release.deploy(site, upload(tmp_path, b1), b1.sha256, b1.source)
    bad = build(tmp_path, "v2", settings="<?php $databases = [];\n")
    with pytest.raises(hw_release.ReleaseFailed, match="live site is untouched"):
        hw_release.deploy(site, upload(tmp_path, bad), bad.sha256, bad.source)
    rec = _records(site)[-1]
    assert rec["result"] == "failed" and rec["failed_step"] == "stage"
    assert rec["rolled_back"] == {"code": False, "db": False} and rec["maintenance"] is False
    assert site.current_id() == first["release"]


def test_deploy_unexpected_error_after_db_change_still_goes_back(site, tmp_path):
    n = build(tmp_path, "v2", schema=2)
    first = hw_release.deploy(site, upload(tmp_path, n), n.sha256, n.source,
                              now=datetime(2026, 1, 1, tzinfo=UTC))

    def disk_full(release):
        site.db["version"] = 3
        raise OSError(28, "No space left on device")
    site.post_switch = disk_full
    bad = build(tmp_path, "v3", schema=3)
    with pytest.raises(hw_release.ReleaseFailed, match="No space left") as err:
        hw_release.deploy(site, upload(tmp_path, bad), bad.sha256, bad.source,
                          now=datetime(2026, 1, 2, tzinfo=UTC))
    assert err.value.record["rolled_back"] == {"code": True, "db": True}
    assert site.db["version"] == 2 and site.current_id() == first["release"]
