"""`fab update`'s decisions on plain data (tasks/update_plan.py, issue 15): the sanitizing
steps, the smoke options, promotion, what follows prod's release, the maintenance window, the
record and the report."""
from __future__ import annotations

import pytest

from tasks import update_plan as up


def test_sanitize_steps_default_profile_rewrites_drupal_accounts():
    steps = up.sanitize_steps(up.UpdatePolicy())
    users = next(s for s in steps if s.get("table") == "users_field_data")
    assert "CONCAT('user+', uid, '@example.invalid')" in users["sql"]
    assert "pass = NULL" in users["sql"] and "WHERE uid > 0" in users["sql"]
    assert {"sessions", "watchdog", "webform_submission", "contact_message"} <= {
        s.get("table") for s in steps}
    assert any(s.get("tables_like") == "cache%" for s in steps)


def test_sanitize_steps_fixture_profile_and_domain_filled():
    steps = up.sanitize_steps(up.UpdatePolicy(sanitize=("fixture",),
                                              allowed_email_domain="preprod.test"))
    assert steps == [{"table": "hosting_fixture_people", "sql": (
        "UPDATE hosting_fixture_people SET name = CONCAT('person', id), "
        "email = CONCAT('person+', id, '@preprod.test'), note = NULL")}]


def test_sanitize_steps_unknown_profile_names_the_option():
    with pytest.raises(up.UpdateInputError, match="--sanitize 'wordpress'"):
        up.sanitize_steps(up.UpdatePolicy(sanitize=("wordpress",)))


def test_sanitize_steps_extra_statement_runs_once():
    steps = up.sanitize_steps(up.UpdatePolicy(sanitize=(), sanitize_sql=("DELETE FROM x",)))
    assert steps == [{"sql": "DELETE FROM x"}]


def test_sanitize_steps_empty_extra_statement_refused():
    with pytest.raises(up.UpdateInputError, match=r"--sanitize-sql\[0\]"):
        up.sanitize_steps(up.UpdatePolicy(sanitize_sql=("  ",)))


def test_parse_smoke_path_and_marker():
    assert up.parse_smoke(["/news=news of x", "/"]) == (up.Smoke("/news", "news of x"),
                                                       up.Smoke("/", ""))


@pytest.mark.parametrize("value", ["news", "http://x/", "/a b", ""])
def test_parse_smoke_not_a_path_refused(value):
    with pytest.raises(up.UpdateInputError, match="--smoke"):
        up.parse_smoke([value])


def test_promote_every_check_passed_true():
    assert up.promote({"checks": [{"ok": True}, {"ok": True}]})


@pytest.mark.parametrize("qualification", [{"checks": [{"ok": True}, {"ok": False}]},
                                           {"checks": []}, {}])
def test_promote_failed_or_missing_check_false(qualification):
    assert not up.promote(qualification)


def test_after_prod_all_checks_ok_live():
    assert up.after_prod("live", [{"ok": True}]) == "live"


def test_after_prod_check_failed_revert():
    assert up.after_prod("live", [{"ok": True}, {"ok": False}]) == "revert"


def test_after_prod_no_check_ran_revert():
    assert up.after_prod("live", []) == "revert"


def test_after_prod_release_failed_rolled_back_by_itself():
    assert up.after_prod("rolled back", []) == "rolled back"


def test_maintenance_seconds_sum_of_steps_in_maintenance():
    timings = {"stage": 1.0, "switch": 0.01, "maintenance-on": 0.2, "db-snapshot": 0.4,
               "post-deploy": 0.3, "maintenance-off": 0.1, "health": 0.05}
    assert up.maintenance_seconds({"timings": timings}) == 1.0


def test_maintenance_seconds_no_database_step_none():
    assert up.maintenance_seconds({"timings": {"stage": 1.0, "switch": 0.01}}) is None


def report(outcome: str) -> up.Report:
    r = up.Report("villeparisis", "prod", "preprod", "v1.2", "2026-12-05T02:00:00Z",
                  artifact_sha256="ab" * 32, from_release="r1", to_release="r2",
                  steps={"build": 1.5, "prod: release": 2.0},
                  qualification={"checks": [{"name": "smoke /", "ok": True, "detail": "200"}]},
                  prod_checks=[{"name": "smoke /", "ok": outcome == "live", "detail": "x|y"}],
                  maintenance_seconds=1.25, outcome=outcome)
    return r


def test_record_live_resolved_with_artifact_and_window():
    rec = report("live").record()
    assert rec["kind"] == "update" and rec["status"] == "resolved"
    assert rec["artifact"] == "ab" * 32 and rec["maintenance_seconds"] == 1.25
    assert rec["qualification"] == "passed" and rec["seconds"] == 3.5
    assert (rec["previous"], rec["release"]) == ("r1", "r2")


def test_record_reverted_failed():
    assert report("reverted").record()["status"] == "failed"


def test_render_markdown_shows_window_checks_and_escapes_pipes():
    md = up.render_markdown(report("reverted"))
    assert md.startswith("# Update of villeparisis to `v1.2`: reverted")
    assert "maintenance window on prod: 1.25 s" in md
    assert "| smoke / | FAILED | x/y |" in md and "## Qualification on preprod" in md


def test_render_markdown_prod_untouched_says_so():
    r = report("qualification failed")
    r.maintenance_seconds, r.prod_checks = None, []
    assert "none (prod not touched)" in up.render_markdown(r)
