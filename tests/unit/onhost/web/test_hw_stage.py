"""Staging a release (hw_stage): the archive's digest, the host's settings and public files
linked in, the code read-only to PHP; a refused codebase leaves the live site untouched."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import hw_release
import pytest
from hw_util import HelperError

from tasks.web_codebase import build_directory

from .release_helpers import FIXTURE, LocalSite, build, make_site, upload


@pytest.fixture
def site(tmp_path: Path) -> LocalSite:
    return make_site(tmp_path)


def test_deploy_code_is_not_writable_by_group_or_others(site, tmp_path):
    b = build(tmp_path)
    hw_release.deploy(site, upload(tmp_path, b), b.sha256, b.source)
    for top, dirs, files in os.walk(os.path.realpath(site.current)):
        for name in dirs + files:
            p = os.path.join(top, name)
            if not os.path.islink(p):
                assert os.stat(p).st_mode & 0o027 == 0, p


def test_deploy_bad_digest_leaves_live_site_untouched(site, tmp_path):
    b1, b2 = build(tmp_path, "v1"), build(tmp_path, "v2")
    hw_release.deploy(site, upload(tmp_path, b1), b1.sha256, b1.source)
    with pytest.raises(HelperError, match="expected"):
        hw_release.deploy(site, upload(tmp_path, b2), "0" * 64, b2.source)
    assert (Path(site.current) / "RELEASE").read_text() == "v1\n"


def test_deploy_settings_without_local_include_refused_live_untouched(site, tmp_path):
    b1 = build(tmp_path, "v1")
    hw_release.deploy(site, upload(tmp_path, b1), b1.sha256, b1.source)
    bad = build(tmp_path, "v2", settings="<?php $databases = [];\n")
    with pytest.raises(HelperError, match="does not include settings.local.php"):
        hw_release.deploy(site, upload(tmp_path, bad), bad.sha256, bad.source)
    assert (Path(site.current) / "RELEASE").read_text() == "v1\n"
    assert not [n for n in os.listdir(site.releases) if n.startswith(".stage-")]


def test_deploy_codebase_without_settings_gets_default(site, tmp_path):
    tree = tmp_path / "nosettings"
    shutil.copytree(FIXTURE, tree)
    (tree / "web/sites/default/settings.php").unlink()
    (tmp_path / "out").mkdir()
    b = build_directory(tree, tmp_path / "out")
    hw_release.deploy(site, upload(tmp_path, b), b.sha256, b.source)
    settings = Path(site.current) / "web/sites/default/settings.php"
    assert settings.read_text() == Path(site.default_settings).read_text()
