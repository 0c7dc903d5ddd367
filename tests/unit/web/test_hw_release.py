"""The on-host release steps, run here on a temporary tree as the current user (the host runs
them as root for the site's users)."""
from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
from datetime import UTC, datetime
from pathlib import Path

import hw_release
import pytest
from hw_util import HelperError

from roles.web.codebase import build_directory

from .conftest import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "site"


class LocalSite(hw_release.Site):
    checks: list[str]
    health = (True, "200")

    def check(self, release):  # php and runuser belong to the host
        self.checks.append(release)

    def healthy(self):
        return self.health


@pytest.fixture
def site(tmp_path):
    user = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    root = tmp_path / "srv"
    (root / "shared" / "files").mkdir(parents=True)
    (root / "releases").mkdir()
    settings = tmp_path / "settings.local.php"
    settings.write_text("<?php\n")
    default = tmp_path / "settings.default.php"
    default.write_text("<?php // include settings.local.php\n")
    s = LocalSite(str(root), user, group, user, str(settings), str(default))
    s.checks = []
    return s


def _build(tmp_path: Path, release: str = "fixture-1", settings: str | None = None):
    tree = tmp_path / f"tree-{release}"
    shutil.copytree(FIXTURE, tree)
    (tree / "RELEASE").write_text(release + "\n")
    if settings is not None:
        (tree / "web/sites/default/settings.php").write_text(settings)
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    return build_directory(tree, out)


def _upload(tmp_path: Path, built) -> str:
    up = tmp_path / f"upload-{built.sha256[:8]}.tar.gz"
    shutil.copy(built.archive, up)
    return str(up)


def test_deploy_first_release_goes_live(site, tmp_path):
    b = _build(tmp_path)
    report = hw_release.deploy(site, _upload(tmp_path, b), b.sha256, b.source)
    assert report["action"] == "stage" and report["previous"] is None
    live = Path(site.current)
    assert (live / "RELEASE").read_text() == "fixture-1\n"
    assert os.readlink(live / "web/sites/default/settings.local.php") == site.settings_local
    assert os.readlink(live / "web/sites/default/files") == site.public_files
    assert json.loads((live / hw_release.MANIFEST).read_text())["sha256"] == b.sha256


def test_deploy_code_is_not_writable_by_group_or_others(site, tmp_path):
    b = _build(tmp_path)
    hw_release.deploy(site, _upload(tmp_path, b), b.sha256, b.source)
    for top, dirs, files in os.walk(os.path.realpath(site.current)):
        for name in dirs + files:
            p = os.path.join(top, name)
            if not os.path.islink(p):
                assert os.stat(p).st_mode & 0o027 == 0, p


def test_deploy_same_code_twice_changes_nothing(site, tmp_path):
    b = _build(tmp_path)
    hw_release.deploy(site, _upload(tmp_path, b), b.sha256, b.source)
    again = hw_release.deploy(site, _upload(tmp_path, b), b.sha256, b.source)
    assert again["action"] == "none" and len(site.existing()) == 1


def test_deploy_then_rollback_serves_previous(site, tmp_path):
    b1, b2 = _build(tmp_path, "v1"), _build(tmp_path, "v2")
    r1 = hw_release.deploy(site, _upload(tmp_path, b1), b1.sha256, b1.source,
                           now=datetime(2026, 1, 1, tzinfo=UTC))
    hw_release.deploy(site, _upload(tmp_path, b2), b2.sha256, b2.source,
                      now=datetime(2026, 1, 2, tzinfo=UTC))
    assert (Path(site.current) / "RELEASE").read_text() == "v2\n"
    back = hw_release.rollback(site)
    assert back["release"] == r1["release"]
    assert (Path(site.current) / "RELEASE").read_text() == "v1\n"
    assert [line.split()[2] for line in Path(site.log).read_text().splitlines()] == [
        "deploy", "deploy", "rollback"]


def test_deploy_bad_digest_leaves_live_site_untouched(site, tmp_path):
    b1, b2 = _build(tmp_path, "v1"), _build(tmp_path, "v2")
    hw_release.deploy(site, _upload(tmp_path, b1), b1.sha256, b1.source)
    with pytest.raises(HelperError, match="expected"):
        hw_release.deploy(site, _upload(tmp_path, b2), "0" * 64, b2.source)
    assert (Path(site.current) / "RELEASE").read_text() == "v1\n"


def test_deploy_settings_without_local_include_refused_live_untouched(site, tmp_path):
    b1 = _build(tmp_path, "v1")
    hw_release.deploy(site, _upload(tmp_path, b1), b1.sha256, b1.source)
    bad = _build(tmp_path, "v2", settings="<?php $databases = [];\n")
    with pytest.raises(HelperError, match="does not include settings.local.php"):
        hw_release.deploy(site, _upload(tmp_path, bad), bad.sha256, bad.source)
    assert (Path(site.current) / "RELEASE").read_text() == "v1\n"
    assert not [n for n in os.listdir(site.releases) if n.startswith(".stage-")]


def test_deploy_failed_health_check_switches_back(site, tmp_path):
    b1, b2 = _build(tmp_path, "v1"), _build(tmp_path, "v2")
    hw_release.deploy(site, _upload(tmp_path, b1), b1.sha256, b1.source,
                      now=datetime(2026, 1, 1, tzinfo=UTC))
    site.health = (False, "500")
    with pytest.raises(HelperError, match="switched back"):
        hw_release.deploy(site, _upload(tmp_path, b2), b2.sha256, b2.source,
                          now=datetime(2026, 1, 2, tzinfo=UTC))
    assert (Path(site.current) / "RELEASE").read_text() == "v1\n"


def test_deploy_codebase_without_settings_gets_default(site, tmp_path):
    tree = tmp_path / "nosettings"
    shutil.copytree(FIXTURE, tree)
    (tree / "web/sites/default/settings.php").unlink()
    (tmp_path / "out").mkdir()
    b = build_directory(tree, tmp_path / "out")
    hw_release.deploy(site, _upload(tmp_path, b), b.sha256, b.source)
    settings = Path(site.current) / "web/sites/default/settings.php"
    assert settings.read_text() == Path(site.default_settings).read_text()


def test_prune_keeps_three_and_their_archives(site, tmp_path):
    shas = []
    for day in range(1, 6):
        b = _build(tmp_path, f"v{day}")
        shas.append(b.sha256)
        hw_release.deploy(site, _upload(tmp_path, b), b.sha256, b.source,
                          now=datetime(2026, 1, day, tzinfo=UTC))
    assert sorted(site.existing().values()) == sorted(shas[2:])
    assert sorted(os.listdir(site.incoming)) == sorted(f"{s}.tar.gz" for s in shas[2:])
