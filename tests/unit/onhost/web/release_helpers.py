"""A web site's release tree on a temporary directory, as the current user, with the host's
commands (php, Drush, curl, mariadb-dump) replaced by plain data; and the codebases the tests
deploy on it (tests/fixtures/site). Shared by test_hw_release, test_hw_stage and test_hw_site."""
from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
from pathlib import Path

import hw_site
from hw_util import HelperError

from tasks.web_codebase import build_directory

from .conftest import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "site"


class LocalSite(hw_site.Site):
    """The host's commands replaced by plain data: `db` stands for the site's database
    (schema version + rows), Drush's steps act on it as the fixture's stub does."""
    checks: list[str]
    health = (True, "200")

    def check(self, release):  # php and runuser belong to the host
        self.checks.append(release)

    def healthy(self):
        self.calls.append("health")
        return self.health() if callable(self.health) else self.health

    def maintenance(self, release, on):
        self.calls.append(f"maintenance-{'on' if on else 'off'}")
        if self.fail.get("maintenance-off") and not on:
            raise HelperError("maintenance-off broke")
        self.db["maintenance"] = on

    def snapshot(self, rid):
        self.calls.append("snapshot")
        if self.fail.get("snapshot"):
            raise HelperError("mariadb-dump exited 2")
        return {"path": f"/snap/{rid}.sql", "sha256": "s" * 64, "bytes": 10,
                "db": json.loads(json.dumps(self.db))}

    def post_switch(self, release):
        self.calls.append("post-deploy")
        self.db["version"] = int((Path(release) / "SCHEMA_VERSION").read_text())
        self.db["rows"].append("update ran")
        if (Path(release) / "FAIL_UPDATE_AFTER_DB_CHANGE").exists():
            raise HelperError("drush deploy exited 1: update failed after changing the DB")
        return "drush deploy"

    def restore_db(self, meta):
        self.calls.append("db-restore")
        if self.fail.get("db-restore"):
            raise HelperError("loading into participation_rollback failed")
        self.db = json.loads(json.dumps(meta["db"]))
        return {"snapshot": meta["path"], "versions": self.db["version"]}

    def after_db_release(self, rid):
        return []


def make_site(tmp_path: Path) -> LocalSite:
    """A LocalSite on a fresh tree under tmp_path, owned by the current user."""
    user = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    root = tmp_path / "srv"
    (root / "shared" / "files").mkdir(parents=True)
    (root / "releases").mkdir()
    settings = tmp_path / "settings.local.php"
    settings.write_text("<?php\n")
    default = tmp_path / "settings.default.php"
    default.write_text("<?php // include settings.local.php\n")
    s = LocalSite(str(root), user, group, user, str(settings), str(default),
                  database="participation")
    s.checks, s.calls, s.fail = [], [], {}
    s.db = {"version": 1, "rows": ["written before"], "maintenance": False}
    return s


def build(tmp_path: Path, release: str = "fixture-1", settings: str | None = None,
           schema: int = 1, fail_update: bool = False):
    tree = tmp_path / f"tree-{release}"
    shutil.copytree(FIXTURE, tree)
    (tree / "RELEASE").write_text(release + "\n")
    (tree / "SCHEMA_VERSION").write_text(f"{schema}\n")
    if fail_update:
        (tree / "FAIL_UPDATE_AFTER_DB_CHANGE").write_text("")
    if settings is not None:
        (tree / "web/sites/default/settings.php").write_text(settings)
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    return build_directory(tree, out)


def upload(tmp_path: Path, built) -> str:
    up = tmp_path / f"upload-{built.sha256[:8]}.tar.gz"
    shutil.copy(built.archive, up)
    return str(up)
