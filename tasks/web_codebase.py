"""The codebase of a release, fetched and packed on the admin's machine.

The web hosts have no route to git forges or packagist (private network only), so the
admin's machine (or CI) fetches the source the model names, builds it, and uploads ONE
archive; the host never fetches code. Sources (`sites[i].codebase` in the model):

  git       url + ref (branch, tag or commit): `git fetch --depth 1`, then `git archive`,
            then `composer install --no-dev` when the tree has composer.json but no vendor/
  composer  url = the package (e.g. drupal/recommended-project), ref = version constraint:
            `composer create-project --no-dev`
  archive   url (https:// or file://) + sha256 (required): downloaded, checked, unpacked

and, for the lab and development only, a local directory (`fab web.release --path DIR`).

Values from the model reach git's and composer's command lines: a url or ref starting with "-"
is refused before anything runs (git would read `--upload-pack=CMD` as an option and run CMD
here), and every command puts "--" before its positional arguments.

The archive is normalised (sorted entries, root-owned, fixed timestamps, no .git), so the
same code always gives the same sha256: that digest is the release's identity, and
deploying identical code twice changes nothing (onhost/web/hw_plan.py).
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import localcmd

FIXED_MTIME = 946684800  # 2000-01-01: content, not checkout time, decides the digest
EXCLUDED = {".git", ".hg", ".svn", ".DS_Store"}


class CodebaseError(RuntimeError):
    pass


@dataclass(frozen=True)
class Built:
    archive: Path
    sha256: str
    source: str  # for the release manifest and the report: where this code came from


def _run(argv: list[str], cwd: Path | None = None, timeout: int = 900, text: bool = True
         ) -> Any:
    """stdout of a build command (localcmd.run, no prompts: str, or bytes when not `text`);
    CodebaseError with its stderr."""
    try:
        return localcmd.run(argv, cwd=cwd, timeout=timeout, text=text,
                            env={"GIT_TERMINAL_PROMPT": "0",
                                 "COMPOSER_NO_INTERACTION": "1"}).stdout
    except localcmd.CommandError as exc:
        raise CodebaseError(str(exc)) from None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def pack(tree: Path, out: Path, source: str) -> Built:
    """A deterministic .tar.gz of `tree` (its content, not its location or timestamps)."""
    if not (tree / "web" / "index.php").is_file():
        raise CodebaseError(f"{source}: no web/index.php (expected a composer project layout "
                            "with the web root in web/)")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in _walk(tree):
            rel = path.relative_to(tree).as_posix()
            info = tar.gettarinfo(str(path), arcname=rel)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = FIXED_MTIME
            if info.isdir():
                info.mode = 0o755
            elif info.isfile():
                info.mode = 0o755 if info.mode & 0o100 else 0o644
                with open(path, "rb") as src:
                    tar.addfile(info, src)
                continue
            tar.addfile(info)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return Built(out, sha256_file(out), source)


def _walk(tree: Path) -> list[Path]:
    out = []
    for top, dirs, files in os.walk(tree):
        dirs[:] = sorted(d for d in dirs if d not in EXCLUDED)
        base = Path(top)
        out += [base / d for d in dirs if (base / d).is_symlink()]
        out += [base / d for d in dirs if not (base / d).is_symlink()]
        out += [base / f for f in sorted(files) if f not in EXCLUDED]
    return sorted(out, key=lambda p: p.relative_to(tree).as_posix())


def _composer_install(tree: Path) -> None:
    if (tree / "composer.json").exists() and not (tree / "vendor").exists():
        _run(["composer", "install", "--no-dev", "--no-interaction", "--no-progress",
              "--optimize-autoloader"], cwd=tree)


def git_fetch_argv(repo: Path, url: str, ref: str) -> list[str]:
    return ["git", "-C", str(repo), "fetch", "-q", "--depth", "1", "--", url, ref]


def composer_create_argv(package: str, tree: Path, constraint: str) -> list[str]:
    return ["composer", "create-project", "--no-dev", "--no-interaction", "--no-progress", "--",
            package, str(tree), constraint]


def check_arguments(codebase: Mapping[str, str], field: str) -> None:
    """Refuse a url or ref a command would take as an option (`--upload-pack=CMD`)."""
    for key in ("url", "ref"):
        value = codebase.get(key) or ""
        if value.startswith("-"):
            raise CodebaseError(f"{field}.{key}: {value!r} starts with '-': git and composer "
                                "would read it as an option, not a "
                                f"{'repository or package' if key == 'url' else 'ref'}")


def from_git(url: str, ref: str, work: Path) -> tuple[Path, str]:
    repo, tree = work / "repo", work / "tree"
    _run(["git", "init", "-q", "--", str(repo)])
    _run(git_fetch_argv(repo, url, ref))
    commit = _run(["git", "-C", str(repo), "rev-parse", "FETCH_HEAD"]).strip()
    data = _run(["git", "-C", str(repo), "archive", "--format=tar", "--", commit], text=False)
    tree.mkdir()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(tree, filter="data")
    _composer_install(tree)
    return tree, f"git {url} {ref} ({commit[:12]})"


def from_composer(package: str, constraint: str, work: Path) -> tuple[Path, str]:
    tree = work / "tree"
    _run(composer_create_argv(package, tree, constraint))
    return tree, f"composer {package} {constraint}"


def from_archive(url: str, sha256: str, work: Path) -> tuple[Path, str]:
    if not sha256:
        raise CodebaseError(f"archive {url}: no sha256 in the model; an archive is only "
                            "deployed when its digest is pinned")
    download = work / "download"
    try:
        with urllib.request.urlopen(url, timeout=120) as resp, open(download, "wb") as f:
            shutil.copyfileobj(resp, f)
    except OSError as exc:
        raise CodebaseError(f"cannot download {url}: {exc}") from exc
    digest = sha256_file(download)
    if digest != sha256.lower():
        raise CodebaseError(f"{url}: sha256 {digest} is not the pinned {sha256}")
    tree = work / "tree"
    tree.mkdir()
    if zipfile.is_zipfile(download):
        with zipfile.ZipFile(download) as z:
            for name in z.namelist():
                if name.startswith("/") or ".." in Path(name).parts:
                    raise CodebaseError(f"{url}: unsafe path {name!r} in the archive")
            z.extractall(tree)
    else:
        with tarfile.open(download) as tar:
            tar.extractall(tree, filter="data")
    entries = [p for p in tree.iterdir() if p.name not in EXCLUDED]
    if len(entries) == 1 and entries[0].is_dir() and not (tree / "web").exists():
        tree = entries[0]  # release archives usually hold one top-level directory
    return tree, f"archive {url} (sha256 {sha256[:12]})"


def build(codebase: Mapping[str, str], out_dir: Path, field: str = "codebase") -> Built:
    """Fetch and pack the model's codebase into out_dir; CodebaseError says what failed.
    `field` names the codebase in the model for errors (sites[1].codebase)."""
    kind = codebase.get("type")
    check_arguments(codebase, field)
    with tempfile.TemporaryDirectory(prefix="hosting-codebase-") as tmp:
        work = Path(tmp)
        if kind == "git":
            tree, source = from_git(codebase["url"], codebase.get("ref") or "HEAD", work)
        elif kind == "composer":
            tree, source = from_composer(codebase["url"], codebase.get("ref", ""), work)
        elif kind == "archive":
            tree, source = from_archive(codebase["url"], codebase.get("sha256", ""), work)
        else:
            raise CodebaseError(f"unknown codebase type {kind!r}")
        return _finish(tree, out_dir, source)


def build_directory(path: Path, out_dir: Path) -> Built:
    """A local directory as a release (lab and development: the test fixture site)."""
    path = path.resolve()
    if not path.is_dir():
        raise CodebaseError(f"{path} is not a directory")
    return _finish(path, out_dir, f"directory {path}")


def _finish(tree: Path, out_dir: Path, source: str) -> Built:
    tmp = out_dir / f".build-{os.getpid()}.tar.gz"
    built = pack(tree, tmp, source)
    final = out_dir / f"{built.sha256}.tar.gz"
    tmp.replace(final)
    return Built(final, built.sha256, source)
