"""Codebase sources, with local stand-ins for the forge: a git repository and a file:// archive
(no network here). composer is not installed here: its path is not exercised."""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import tarfile

import pytest

from roles.web.codebase import CodebaseError, build, build_directory

from .conftest import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "site"


@pytest.fixture
def repo(tmp_path):
    if not shutil.which("git"):
        pytest.skip("git is not installed")
    path = tmp_path / "repo"
    shutil.copytree(FIXTURE, path)
    env = ["-c", "user.name=t", "-c", "user.email=t@example.org"]
    for argv in (["init", "-q", "-b", "main"], ["add", "-A"], [*env, "commit", "-q", "-m", "1"],
                 ["tag", "v1"]):
        subprocess.run(["git", "-C", str(path), *argv], check=True, capture_output=True)
    return path


def test_build_git_branch_same_content_as_the_directory(repo, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    built = build({"type": "git", "url": str(repo), "ref": "main"}, out)
    assert built.source.startswith(f"git {repo} main (")
    assert built.sha256 == build_directory(FIXTURE, out).sha256  # no .git, fixed times


def test_build_git_tag_and_unknown_ref(repo, tmp_path):
    assert build({"type": "git", "url": str(repo), "ref": "v1"}, tmp_path).sha256
    with pytest.raises(CodebaseError, match="couldn.t find remote ref nosuch"):
        build({"type": "git", "url": str(repo), "ref": "nosuch"}, tmp_path)


def _archive(tmp_path, top: str = "site-1.0"):
    path = tmp_path / "release.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(FIXTURE, arcname=top)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_build_archive_pinned_digest_and_top_directory_stripped(tmp_path):
    path, digest = _archive(tmp_path)
    built = build({"type": "archive", "url": path.as_uri(), "sha256": digest}, tmp_path)
    with tarfile.open(built.archive) as tar:
        assert "web/index.php" in tar.getnames()


def test_build_archive_wrong_or_missing_digest_refused(tmp_path):
    path, _digest = _archive(tmp_path)
    with pytest.raises(CodebaseError, match="is not the pinned"):
        build({"type": "archive", "url": path.as_uri(), "sha256": "0" * 64}, tmp_path)
    with pytest.raises(CodebaseError, match="no sha256"):
        build({"type": "archive", "url": path.as_uri(), "sha256": ""}, tmp_path)


def test_build_directory_without_web_root_refused(tmp_path):
    (tmp_path / "src").mkdir()
    with pytest.raises(CodebaseError, match="no web/index.php"):
        build_directory(tmp_path / "src", tmp_path)
