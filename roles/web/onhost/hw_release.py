"""Release deployment on a web host: stage a new release directory from an archive, check it,
switch the `current` symlink atomically, check the live site, roll back on failure.

  <site root>/releases/<id>/   one release: the codebase (read-only to PHP: owned by the code
                                owner, group-readable by the site's PHP user and nginx)
  <site root>/current -> releases/<id>   what nginx and cron use
  <site root>/incoming/<sha256>.tar.gz   the archive of each kept release
  <site root>/releases.log     one line per switch (time, id, why): the history

Until the switch nothing the live site uses is touched, so a failed deployment leaves it as
it was. The switch is rename(2) of a new symlink over `current`: atomic.
"""
import datetime
import hashlib
import json
import os
import shutil
import tarfile
import time

import hw_plan
from hw_util import HelperError, ids, run

MANIFEST = ".hosting-release.json"


class Site:
    def __init__(self, root, owner, group, user, settings_local, default_settings,
                 health_url="", health_host="", php="php"):
        self.root = root
        self.owner, self.group, self.user = owner, group, user
        self.settings_local = settings_local  # rendered by the role, linked into each release
        self.default_settings = default_settings  # used when a codebase ships no settings.php
        self.health_url, self.health_host = health_url, health_host
        self.php = php

    releases = property(lambda self: os.path.join(self.root, "releases"))
    current = property(lambda self: os.path.join(self.root, "current"))
    incoming = property(lambda self: os.path.join(self.root, "incoming"))
    log = property(lambda self: os.path.join(self.root, "releases.log"))
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
                "rollback_target": hw_plan.rollback_target(current, self.history(), existing)}

    # -- steps -----------------------------------------------------------------------------
    def receive(self, upload, sha256):
        """Move an uploaded archive into incoming/ after checking its digest."""
        digest = _sha256(upload)
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

    def post_switch(self, release):
        """Drupal codebases only: `drush deploy` (database updates, config import, cache
        rebuild) inside Drupal's own maintenance mode, for the shortest time (R-MNT-1)."""
        if not os.path.exists(os.path.join(release, "web", "core", "lib", "Drupal.php")):
            return "no Drupal core: no post-deploy step"
        drush = ["runuser", "-u", self.user, "--", self.php,
                 os.path.join(release, "vendor", "bin", "drush"),
                 "--root=" + os.path.join(release, "web"), "--yes"]
        env = {"HOME": self.root}
        run(drush + ["state:set", "system.maintenance_mode", "1", "--input-format=integer"],
            env=env)
        try:
            run(drush + ["deploy"], timeout=1800, env=env)
        finally:
            run(drush + ["state:set", "system.maintenance_mode", "0",
                         "--input-format=integer"], env=env)
        return "drush deploy"

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


def deploy(site, upload, sha256, source, now=None):
    """The whole deployment; returns a report. Raises (live site untouched, or switched back
    to the previous release when the new one failed its health check)."""
    t0 = time.monotonic()
    archive = site.receive(upload, sha256) if upload else os.path.join(
        site.incoming, sha256 + ".tar.gz")
    previous = site.current_id()
    action, rid = hw_plan.plan_deploy(previous, site.existing(), sha256,
                                      hw_plan.release_id(sha256, now or _now()))
    report = {"action": action, "release": rid, "previous": previous}
    if action == "none":
        report["seconds"] = round(time.monotonic() - t0, 3)
        return report
    if action == "stage":
        site.stage(archive, sha256, rid, source)
    report["staged_seconds"] = round(time.monotonic() - t0, 3)
    site.switch(rid, "deploy")
    try:
        report["post_deploy"] = site.post_switch(os.path.join(site.releases, rid))
    except HelperError as exc:
        if previous is not None:
            site.switch(previous, "auto-rollback")
        raise HelperError(f"release {rid}: post-deploy step failed ({exc}); "
                          f"switched back to {previous}") from exc
    ok, detail = site.healthy()
    report["health"] = detail
    if not ok:
        if previous is not None:
            site.switch(previous, "auto-rollback")
        raise HelperError("release {} failed its health check ({}); {}".format(
            rid, detail, f"switched back to {previous}" if previous else "no previous release"))
    report["pruned"] = site.prune()
    report["seconds"] = round(time.monotonic() - t0, 3)
    return report


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
    return {"action": "rollback", "release": target, "previous": current, "health": detail,
            "seconds": round(time.monotonic() - t0, 3)}


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _now():
    return datetime.datetime.now(datetime.UTC)
