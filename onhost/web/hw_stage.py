"""Staging a release on a web host (hw_release.deploy's first step): the uploaded archive is
checked against its sha256 and kept in incoming/, unpacked into releases/.stage-<id>, given the
host's settings and public files, made read-only to PHP, checked, and renamed into
releases/<id> with its manifest. Nothing the live site uses is touched."""
import json
import os
import shutil
import tarfile

from hw_util import HelperError, ids, sha256_file, utc_now

MANIFEST = ".hosting-release.json"


class Staging:
    """The staging steps of `hw_site.Site` (its paths, owner, group and settings; `check` is
    the codebase's own, hw_codebase)."""

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
                           "staged": utc_now().isoformat()}, f)
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
