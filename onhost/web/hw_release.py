"""Release deployment on a web host: stage a new release directory from an archive, check it,
switch the `current` symlink atomically, check the live site, roll back on failure. The
release tree and its steps are hw_site's (staging: hw_stage; the codebase's checks and Drush
steps: hw_codebase); this module runs them in order and records what happened.

Until the switch nothing the live site uses is touched, so a failed deployment leaves it as
it was. The switch is rename(2) of a new symlink over `current`: atomic.

A codebase with Drush (vendor/bin/drush) has a post-switch step that changes the database
(`drush deploy`: schema updates, config import). Before it, with the site in Drupal's
maintenance mode, the database is dumped on the host (hw_dbsnap). If anything fails after
that point (the step itself, lifting maintenance, the health check), the database AND the code
go back to the previous release, and the site leaves maintenance only if the previous release
then passes its health check; if the way back fails too, the site stays in maintenance and
every error is reported (issue 11, section 2; R-INC-1, R-MNT-2).
"""
import os
import time

import hw_plan
from hw_util import HelperError, utc_now


class ReleaseFailed(HelperError):
    """A deployment that failed; `record` says what happened (also in releases.jsonl)."""

    def __init__(self, message, record):
        super().__init__(message)
        self.record = record


class _Steps:
    """Runs named steps, timing each: the record's "timings" and, on failure, "failed_step"."""

    def __init__(self):
        self.timings, self.current = {}, None

    def __call__(self, name, fn, *args):
        self.current = name
        t0 = time.monotonic()
        try:
            return fn(*args)
        finally:
            self.timings[name] = round(time.monotonic() - t0 + self.timings.get(name, 0), 3)


def deploy(site, upload, sha256, source, now=None):
    """The whole deployment; returns a report (also appended to releases.jsonl). Raises
    ReleaseFailed with the record when it fails: the live site untouched (failure before the
    switch), or back on the previous release's code and database (after it), or left in
    maintenance when the way back failed too."""
    t0 = time.monotonic()
    when = now or utc_now()
    steps = _Steps()
    archive = site.receive(upload, sha256) if upload else os.path.join(
        site.incoming, sha256 + ".tar.gz")
    previous = site.current_id()
    action, rid = hw_plan.plan_deploy(previous, site.existing(), sha256,
                                      hw_plan.release_id(sha256, when))
    report = {"action": action, "release": rid, "previous": previous,
              "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "source": source}
    if action == "none":
        report["seconds"] = round(time.monotonic() - t0, 3)
        return report
    release = os.path.join(site.releases, rid)
    state = {"switched": False, "maintenance": False, "snapshot": None, "db_changed": False}
    post = False
    try:
        if action == "stage":
            steps("stage", site.stage, archive, sha256, rid, source)
        report["staged_seconds"] = round(time.monotonic() - t0, 3)
        post = site.has_post_step(release)
        if post and not site.database:
            raise HelperError("this codebase has a database step (Drush) and no --database was "
                              "given: refusing to change a database that cannot be restored")
        steps("switch", site.switch, rid, "deploy")
        state["switched"] = True
        if post:
            steps("maintenance-on", site.maintenance, release, True)
            state["maintenance"] = True
            state["snapshot"] = steps("db-snapshot", site.snapshot, rid)
            report["db_snapshot"] = {k: state["snapshot"][k] for k in ("path", "sha256", "bytes")}
            state["db_changed"] = True  # from here on the database may differ from the dump
            report["post_deploy"] = steps("post-deploy", site.post_switch, release)
            steps("maintenance-off", site.maintenance, release, False)
            state["maintenance"] = False
        ok, detail = steps("health", site.healthy)
        report["health"] = detail
        if not ok:
            raise HelperError(f"the release failed its health check (answered {detail})")
    except Exception as exc:  # noqa: BLE001 -- whatever broke (an OSError too), go back
        report["seconds"] = round(time.monotonic() - t0, 3)
        _fail(site, report, steps, state, exc, previous, release)
    if post:
        try:  # housekeeping: the release is live whatever happens here
            report["db_snapshots_pruned"] = steps("prune", site.after_db_release, rid)
        except (HelperError, OSError) as exc:
            report["warnings"] = [f"pruning old database snapshots: {exc}"]
    report["pruned"] = steps("prune", site.prune)
    report.update(result="live", timings=steps.timings,
                  seconds=round(time.monotonic() - t0, 3))
    try:
        site.record(report)
    except OSError as exc:  # the release is live: say so, and that the record is missing
        report.setdefault("warnings", []).append(f"releases.jsonl not written: {exc}")
    return report


def _fail(site, report, steps, state, exc, previous, release):
    """Everything after a failed step: put back what was changed, record, raise."""
    failed_step = steps.current
    errors = [f"{failed_step}: {exc}"]
    report.update(result="failed", failed_step=failed_step, error=str(exc),
                  rolled_back={"code": False, "db": False})
    t0 = time.monotonic()
    if state["switched"]:
        _roll_back(site, report, steps, state, errors, previous, release)
    report.update(errors=errors, maintenance=state["maintenance"], timings=steps.timings,
                  rollback_seconds=round(time.monotonic() - t0, 3),
                  seconds=round(report["seconds"] + time.monotonic() - t0, 3))
    if len(errors) > 1:
        report["result"] = "rollback failed"
    elif state["switched"]:
        report["result"] = "rolled back"
    try:
        site.record(report)
    except OSError as rec_exc:
        errors.append(f"record: {rec_exc}")
    rid = report["release"]
    if report["result"] == "failed":
        what = "the live site is untouched"
    elif report["result"] == "rolled back":
        what = "{} rolled back to {}".format(
            "code and database" if report["rolled_back"]["db"] else "code", previous)
    else:
        what = "the way back failed too; the site stays in maintenance"
    raise ReleaseFailed(f"release {rid} failed at {failed_step}: {exc}; {what}"
                        + ("" if len(errors) == 1 else " (errors: " + " | ".join(errors[1:])
                           + ")"), report)


def _roll_back(site, report, steps, state, errors, previous, release):
    def attempt(name, fn, *args):
        try:
            return True, steps("rollback-" + name, fn, *args)
        except Exception as exc:  # noqa: BLE001 -- every error is reported, none stops the rest
            errors.append(f"rollback-{name}: {exc}")
            return False, None

    if previous is None:
        errors.append("no previous release to go back to")
        if state["db_changed"] or state["maintenance"]:
            state["maintenance"] = attempt("maintenance-on", site.maintenance, release, True)[0] \
                or state["maintenance"]
        return
    if state["db_changed"]:
        # Keep visitors out while the database goes back (already on unless lifting failed).
        attempt("maintenance-on", site.maintenance, release, True)
        state["maintenance"] = True
        ok, restored = attempt("db-restore", site.restore_db, state["snapshot"])
        if not ok:
            # The database is still the failed release's: its code stays with it, in
            # maintenance, until an admin decides.
            return
        report["rolled_back"]["db"] = True
        report["db_restore"] = restored
    ok, _ = attempt("switch", site.switch, previous, "auto-rollback")
    if not ok:
        return
    report["rolled_back"]["code"] = True
    prev_release = os.path.join(site.releases, previous)
    if state["maintenance"] or state["db_changed"]:
        # The restored database was dumped in maintenance mode: lift it with the previous
        # release's code, check, and put it back at once if the check fails.
        state["maintenance"] = True
        if not attempt("maintenance-off", site.maintenance, prev_release, False)[0]:
            return
        state["maintenance"] = False
    healthy, detail = steps("rollback-health", site.healthy)
    report["rollback_health"] = detail
    if not healthy:
        errors.append(f"rollback-health: {previous} answered {detail}")
        if state["db_changed"] or site.has_post_step(prev_release):
            state["maintenance"] = attempt("maintenance-on", site.maintenance, prev_release,
                                           True)[0]


def rollback(site):
    t0 = time.monotonic()
    current = site.current_id()
    target = hw_plan.rollback_target(current, site.history(), site.existing())
    if target is None:
        raise HelperError(f"nothing to roll back to (current: {current})")
    site.switch(target, "rollback")
    ok, detail = site.healthy()
    if not ok:
        raise HelperError(f"rolled back to {target} but it fails its health check ({detail})")
    report = {"action": "rollback", "release": target, "previous": current, "health": detail,
              "result": "rolled back (code only)", "time": utc_now().strftime("%Y-%m-%dT%H:%M:%SZ"),
              "seconds": round(time.monotonic() - t0, 3)}
    site.record(report)
    return report
