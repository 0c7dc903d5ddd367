"""Codebase sources, with local stand-ins for the forge: a git repository and a file:// archive
(no network here). composer is not installed here: its path is not exercised, except for the
argv it would be given."""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

import localcmd
from tasks import web_codebase as codebase
from tasks.web_codebase import CodebaseError, build, build_directory

ROOT = Path(__file__).resolve().parents[3]

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


@pytest.fixture
def no_commands(monkeypatch):
    """Every command the codebase module would run, recorded instead of run."""
    ran: list[list[str]] = []

    def record(argv, *args, **kwargs):
        ran.append(list(argv))
        raise AssertionError(f"ran {argv}")
    monkeypatch.setattr(localcmd.subprocess, "run", record)
    return ran


@pytest.mark.parametrize("kind", ["git", "composer"])
def test_build_ref_starting_with_dash_refused_naming_the_field_and_nothing_runs(
        kind, no_commands, tmp_path):
    marker = tmp_path / "x"
    source = {"type": kind, "url": "https://git.example.org/site.git",
              "ref": f"--upload-pack=touch {marker}"}
    with pytest.raises(CodebaseError, match=r"sites\[1\]\.codebase\.ref: '--upload-pack=.*"
                                            r"starts with '-'"):
        build(source, tmp_path, "sites[1].codebase")
    assert no_commands == [] and not marker.exists()


def test_build_url_starting_with_dash_refused_naming_the_field_and_nothing_runs(
        no_commands, tmp_path):
    source = {"type": "composer", "url": "--working-dir=/etc", "ref": "^11"}
    with pytest.raises(CodebaseError, match=r"sites\[0\]\.codebase\.url: .* starts with '-'"):
        build(source, tmp_path, "sites[0].codebase")
    assert no_commands == []


def test_git_fetch_argv_double_dash_before_url_and_ref(tmp_path):
    argv = codebase.git_fetch_argv(tmp_path, "https://git.example.org/s.git", "main")
    assert argv[-3:] == ["--", "https://git.example.org/s.git", "main"]


def test_composer_create_argv_double_dash_before_package_directory_and_constraint(tmp_path):
    argv = codebase.composer_create_argv("drupal/recommended-project", tmp_path / "t", "^11")
    assert argv[-4:] == ["--", "drupal/recommended-project", str(tmp_path / "t"), "^11"]


def test_from_git_dash_ref_past_the_check_is_a_refspec_not_an_option(repo, tmp_path):
    """Defence in depth: even a ref that skipped the check reaches git after "--"."""
    marker = tmp_path / "pwned"
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(CodebaseError, match="invalid refspec"):
        codebase.from_git(str(repo), f"--upload-pack=touch {marker}", work)
    assert not marker.exists()
