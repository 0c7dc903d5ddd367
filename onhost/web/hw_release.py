"""Release deployment on a web host: stage a new release directory from an archive, check it,
switch the `current` symlink atomically, check the live site, roll back on failure.

  <site root>/releases/<id>/   one release: the codebase (read-only to PHP: owned by the code
                                owner, group-readable by the site's PHP user and nginx)
  <site root>/current -> releases/<id>   what nginx and cron use
  <site root>/incoming/<sha256>.tar.gz   the archive of each kept release
  <site root>/releases.log     one line per switch (time, id, why): the history

  <site root>/releases.jsonl   one JSON record per deployment (live, rolled back, or failed):
                                which step failed, the error, what was rolled back, timings

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
import datetime
import json
import os
import shutil
import tarfile
import time

import hw_dbsnap
import hw_plan
from hw_util import HelperError, ids, run, sha256_file

MANIFEST = ".hosting-release.json"


class Site:
    def __init__(self, root, owner, group, user, settings_local, default_settings,
                 health_url="", health_host="", php="php", database="", snapshot_dir=""):
        self.root = root
        self.owner, self.group, self.user = owner, group, user
        self.settings_local = settings_local  # rendered by the role, linked into each release
        self.default_settings = default_settings  # used when a codebase ships no settings.php
        self.health_url, self.health_host = health_url, health_host
        self.php = php
        self.database = database  # the site's database: snapshot before the post-switch step
        self.snapshot_dir = snapshot_dir or os.path.join(
            hw_dbsnap.ROOT, os.path.basename(root.rstrip("/")))

    releases = property(lambda self: os.path.join(self.root, "releases"))
    current = property(lambda self: os.path.join(self.root, "current"))
    incoming = property(lambda self: os.path.join(self.root, "incoming"))
    log = property(lambda self: os.path.join(self.root, "releases.log"))
    records = property(lambda self: os.path.join(self.root, "releases.jsonl"))
    public_files = property(lambda self: os.path.join(self.root, "shared", "files"))

    # -- state -----------------------------------------------------------------------------
    def current_id(self):
        try:
            target = os.readlink(self.current)
        except OSError:
            return None
        return os.path.basename(target.rstrip("/"))

    def existing(self):
        """{id: sha256} of complete releases (a manifest is written last, before the rename)."""
        out = {}
        if not os.path.isdir(self.releases):
            return out
        for name in os.listdir(self.releases):
            if hw_plan.RELEASE_ID.match(name):
                try:
                    with open(os.path.join(self.releases, name, MANIFEST)) as f:
                        out[name] = json.load(f)["sha256"]
                except (OSError, ValueError, KeyError):
                    continue
        return out

    def history(self):
        try:
            with open(self.log) as f:
                return [line.split()[1] for line in f if len(line.split()) >= 2]
        except FileNotFoundError:
            return []

    def status(self):
        existing = self.existing()
        current = self.current_id()
        return {"current": current, "releases": existing, "history": self.history()[-20:],
                "rollback_target": hw_plan.rollback_target(current, self.history(), existing),
                "last_record": self.last_record()}

    def last_record(self):
        try:
            with open(self.records) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return None
        try:
            return json.loads(lines[-1]) if lines else None
        except ValueError:
            return None

    # -- steps -----------------------------------------------------------------------------
    def receive(self, upload, sha256):
        """Move an uploaded archive into incoming/ after checking its digest."""
        digest = sha256_file(upload)
        if digest != sha256:
            raise HelperError(f"archive {upload} has sha256 {digest}, expected {sha256}")
        os.makedirs(self.incoming, mode=0o700, exist_ok=True)
        target = os.path.join(self.incoming, sha256 + ".tar.gz")
        shutil.move(upload, target)
        if os.geteuid() == 0:
            os.chown(target, 0, 0)
        os.chmod(target, 0o600)
        return target

    def stage(self, archive, sha256, rid, source):
        final = os.path.join(self.releases, rid)
        stage = os.path.join(self.releases, ".stage-" + rid)
        shutil.rmtree(stage, ignore_errors=True)
        os.makedirs(stage, mode=0o700)
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(stage, filter="data")  # no absolute paths, links out, devices
            self._prepare(stage)
            self._own(stage)
            self.check(stage)
            with open(os.path.join(stage, MANIFEST), "w") as f:
                json.dump({"id": rid, "sha256": sha256, "source": source,
                           "staged": _now().isoformat()}, f)
            os.chown(os.path.join(stage, MANIFEST), *ids(self.owner, self.group))
            os.chmod(os.path.join(stage, MANIFEST), 0o640)
            os.chmod(stage, 0o750)
            os.rename(stage, final)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        return final

    def _prepare(self, stage):
        web = os.path.join(stage, "web")
        if not os.path.isfile(os.path.join(web, "index.php")):
            raise HelperError("the codebase has no web/index.php (composer project layout)")
        site_dir = os.path.join(web, "sites", "default")
        os.makedirs(site_dir, exist_ok=True)
        settings = os.path.join(site_dir, "settings.php")
        if not os.path.exists(settings):
            shutil.copyfile(self.default_settings, settings)
        else:
            with open(settings, errors="replace") as f:
                if "settings.local.php" not in f.read():
                    raise HelperError("web/sites/default/settings.php does not include "
                                      "settings.local.php: the host's settings would be ignored")
        local = os.path.join(site_dir, "settings.local.php")
        if os.path.lexists(local):
            os.unlink(local)  # the host's settings, never a copy shipped with the code
        os.symlink(self.settings_local, local)
        files = os.path.join(site_dir, "files")
        if os.path.lexists(files):
            if os.path.isdir(files) and not os.path.islink(files) and not os.listdir(files):
                os.rmdir(files)
            else:
                raise HelperError("the codebase ships web/sites/default/files: public files "
                                  "belong to the host (shared/files), not to a release")
        os.symlink(self.public_files, files)

    def _own(self, stage):
        """Code owner:site group, no write for the group, nothing for others: PHP reads the
        code and cannot change it (the issue's "code read-only to PHP")."""
        uid, gid = ids(self.owner, self.group)
        for top, dirs, files in os.walk(stage):
            os.chown(top, uid, gid)
            os.chmod(top, 0o750)
            for name in dirs + files:
                path = os.path.join(top, name)
                os.chown(path, uid, gid, follow_symlinks=False)
                if os.path.islink(path):
                    continue
                if name in files:
                    mode = os.stat(path).st_mode
                    os.chmod(path, 0o750 if mode & 0o100 else 0o640)

    def check(self, release):
        """Before going live: the front controller parses, and, when the codebase has Drush,
        it boots against the real settings and database, as the site's PHP user."""
        index = os.path.join(release, "web", "index.php")
        run(["runuser", "-u", self.user, "--", self.php, "-l", index])
        drush = os.path.join(release, "vendor", "bin", "drush")
        if os.path.exists(drush):
            run(["runuser", "-u", self.user, "--", self.php, drush,
                 "--root=" + os.path.join(release, "web"), "status"], timeout=120,
                env={"HOME": self.root})

    def has_post_step(self, release):
        """A codebase with Drush (Drupal's, or the test fixture's stand-in) has a post-switch
        step that changes the database."""
        return os.path.exists(os.path.join(release, "vendor", "bin", "drush"))

    def _drush(self, release, *args, timeout=120):
        run(["runuser", "-u", self.user, "--", self.php,
             os.path.join(release, "vendor", "bin", "drush"),
             "--root=" + os.path.join(release, "web"), "--yes", *args], timeout=timeout,
            env={"HOME": self.root})

    def maintenance(self, release, on):
        """Drupal's own maintenance mode (503 to visitors, through the proxy's maintenance
        page), set with the given release's Drush."""
        self._drush(release, "state:set", "system.maintenance_mode", "1" if on else "0",
                    "--input-format=integer")

    def post_switch(self, release):
        """`drush deploy` (database updates, config import, cache rebuild), inside Drupal's
        maintenance mode (set by deploy() around it, for the shortest time: R-MNT-1)."""
        self._drush(release, "deploy", timeout=1800)
        return "drush deploy"

    def snapshots(self):
        if not self.database:
            raise HelperError("no --database given: cannot snapshot the database before the "
                              "post-switch step")
        return hw_dbsnap.Snapshots(self.snapshot_dir, self.database)

    def snapshot(self, rid):
        return self.snapshots().take(rid)

    def restore_db(self, meta):
        return self.snapshots().restore(meta)

    def after_db_release(self, rid):
        """A release that changed the database is live: drop the last failure's tables,
        keep the last snapshots."""
        snaps = self.snapshots()
        snaps.drop_failed()
        return snaps.prune(protect=(rid,))

    def record(self, entry):
        """Append one JSON line to releases.jsonl (root-only: errors may name paths)."""
        fd = os.open(self.records, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a") as f:
            f.write(json.dumps(entry, sort_keys=True) + "\n")

    def switch(self, rid, why):
        target = os.path.join("releases", rid)
        if not os.path.isdir(os.path.join(self.root, target)):
            raise HelperError(f"no release {rid}")
        tmp = os.path.join(self.root, f".current-{os.getpid()}")
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(target, tmp)
        os.rename(tmp, self.current)  # atomic: every request sees one release or the other
        with open(self.log, "a") as f:
            f.write("{} {} {}\n".format(_now().strftime("%Y-%m-%dT%H:%M:%SZ"), rid, why))

    def healthy(self):
        """The live site answers below 500 on the web host itself (front controller, PHP,
        database); True when there is nothing to check."""
        if not self.health_url:
            return True, "no health check configured"
        last = ""
        for _ in range(5):
            proc = run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time",
                        "20", "-H", "Host: " + self.health_host, self.health_url], check=False)
            last = proc.stdout.strip() or proc.stderr.strip()
            if proc.returncode == 0 and last.isdigit() and int(last) < 500:
                return True, last
            time.sleep(1)
        return False, last

    def prune(self, keep=hw_plan.KEEP):
        existing = self.existing()
        doomed = hw_plan.to_prune(self.current_id(), self.history(), existing, keep)
        for rid in doomed:
            shutil.rmtree(os.path.join(self.releases, rid), ignore_errors=True)
        kept = {existing[r] for r in existing if r not in doomed}
        if os.path.isdir(self.incoming):
            for name in os.listdir(self.incoming):
                if name.endswith(".tar.gz") and name[:-7] not in kept:
                    os.unlink(os.path.join(self.incoming, name))
        for name in os.listdir(self.releases) if os.path.isdir(self.releases) else ():
            if name.startswith(".stage-"):
                shutil.rmtree(os.path.join(self.releases, name), ignore_errors=True)
        return doomed


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
    when = now or _now()
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
              "result": "rolled back (code only)", "time": _now().strftime("%Y-%m-%dT%H:%M:%SZ"),
              "seconds": round(time.monotonic() - t0, 3)}
    site.record(report)
    return report


def _now():
    return datetime.datetime.now(datetime.UTC)
