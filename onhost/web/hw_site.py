"""One site's release tree on a web host, its state and the steps that change it.

  <site root>/releases/<id>/   one release: the codebase (read-only to PHP: owned by the code
                                owner, group-readable by the site's PHP user and nginx)
  <site root>/current -> releases/<id>   what nginx and cron use
  <site root>/incoming/<sha256>.tar.gz   the archive of each kept release
  <site root>/releases.log     one line per switch (time, id, why): the history
  <site root>/releases.jsonl   one JSON record per deployment (live, rolled back, or failed):
                                which step failed, the error, what was rolled back, timings

Staging is hw_stage's, the codebase's own checks and steps hw_codebase's, the database
snapshots hw_dbsnap's; the deployment that runs them in order is hw_release's.
"""
import json
import os
import shutil

import hw_dbsnap
import hw_plan
from hw_codebase import Codebase
from hw_stage import MANIFEST, Staging
from hw_util import HelperError, utc_now


class Site(Staging, Codebase):
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
            f.write("{} {} {}\n".format(utc_now().strftime("%Y-%m-%dT%H:%M:%SZ"), rid, why))

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
