"""backup.export (R-DATA-1, R-GDPR-1): one site's database and files as one archive, from a
fresh backup or a chosen one, encrypted with age; real restic repositories (conftest), real age
when installed (scripts/install-system-deps), the runner's fake dump (no MariaDB here)."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from backup_run_helpers import REPO, Site

from backup import config as config_mod
from backup.dumpsum import trailer_line
from backup.export import (
    BodyHash,
    ExportError,
    Manifest,
    check_recipient,
    rename,
    write_archive,
)
from backup.lock import exclusive

T1 = "2026-03-02T01:30:00+01:00"
T2 = "2026-03-03T01:30:00+01:00"
KEY = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"


def site_data(site: Site) -> tuple[Path, Path]:
    """The site's public and private files where backup.export looks for them (the layout of
    roles/web: <root>/shared/files, <root>/private)."""
    public, private = site.code.parent / "shared" / "files", site.code.parent / "private"
    (public / "img").mkdir(parents=True, exist_ok=True)
    private.mkdir(exist_ok=True)
    (public / "img" / "logo.png").write_bytes(bytes(range(256)) * 40)
    (public / "notice.txt").write_text("public notice\n")
    (private / "form-42.txt").write_text("Jeanne Dupont, 12 rue de la Paix\n")
    (public / "latest").symlink_to("notice.txt")
    return public, private


def export(site: Site, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "backup.export", "--site", "demo", "--config",
         str(site.config_path), *args], capture_output=True, cwd=REPO, timeout=300)


def members(archive: bytes) -> dict[str, bytes | None]:
    """name -> content (None for what is not a regular file) of a tar stream."""
    found: dict[str, bytes | None] = {}
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r|") as tar:
        for m in tar:
            f = tar.extractfile(m) if m.isreg() else None
            found[m.name] = f.read() if f else None
    return found


def check_manifest(found: dict[str, bytes | None]) -> dict:
    manifest = json.loads(found["manifest.json"] or b"")
    for entry in manifest["members"]:
        if entry["type"] == "file":
            content = found[entry["name"]]
            assert content is not None and len(content) == entry["size"]
            assert hashlib.sha256(content).hexdigest() == entry["sha256"], entry["name"]
    return manifest


def test_main_fresh_backup_plain_holds_dump_files_and_manifest(site: Site) -> None:
    public, private = site_data(site)
    before = len(site.snapshots("local"))
    proc = export(site, "--plain")
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"WARNING: --plain" in proc.stderr
    found = members(proc.stdout)
    manifest = check_manifest(found)
    dump = (site.root / "bin" / "dump-source.sql").read_bytes()
    assert found["database/demo.sql"] == dump + trailer_line(hashlib.sha256(dump).hexdigest())
    assert found["files/public/img/logo.png"] == (public / "img" / "logo.png").read_bytes()
    assert found["files/private/form-42.txt"] == (private / "form-42.txt").read_bytes()
    assert list(found)[-1] == "manifest.json"
    assert manifest["fresh_backup"] is True and manifest["site"] == "demo"
    assert manifest["database"]["matches_backup"] is True
    link = next(m for m in manifest["members"] if m["name"] == "files/public/latest")
    assert link == {"name": "files/public/latest", "type": "symlink", "target": "notice.txt"}
    # The fresh backup is a real one of the local repository (both halves), not copied off-site.
    after = site.snapshots("local")
    assert len(after) == before + 2
    assert {s["id"] for s in after} >= {manifest["snapshots"]["db"]["id"],
                                        manifest["snapshots"]["files"]["id"]}
    assert site.snapshots("a") == []
    assert not any(name.startswith("files/code") or "access.log" in name for name in found)


@pytest.mark.skipif(shutil.which("age") is None, reason="age is not installed "
                    "(scripts/install-system-deps installs it)")
def test_main_recipient_output_is_age_ciphertext_that_decrypts_to_the_archive(
        site: Site, tmp_path: Path) -> None:
    site_data(site)
    identity = tmp_path / "client.key"
    subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
    recipient = subprocess.run(["age-keygen", "-y", str(identity)], check=True,
                               capture_output=True, text=True).stdout.strip()
    proc = export(site, "--recipient", recipient)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.startswith(b"age-encryption.org/v1\n")
    assert b"Jeanne Dupont" not in proc.stdout and b"INSERT INTO" not in proc.stdout
    plain = subprocess.run(["age", "--decrypt", "--identity", str(identity)],
                           input=proc.stdout, capture_output=True, check=True).stdout
    found = members(plain)
    check_manifest(found)
    assert found["files/private/form-42.txt"] == b"Jeanne Dupont, 12 rue de la Paix\n"


def test_main_snapshot_exports_that_night_without_a_new_backup(site: Site) -> None:
    public, _private = site_data(site)
    assert site.run(T1, "--local-only").returncode == 0
    (public / "notice.txt").write_text("changed later\n")
    assert site.run(T2, "--local-only").returncode == 0
    first = next(s for s in site.snapshots("local")
                 if "files" in s["tags"] and s["time"].startswith("2026-03-02T00:30:00"))
    count = len(site.snapshots("local"))
    proc = export(site, "--snapshot", first["id"][:8], "--plain")
    assert proc.returncode == 0, proc.stderr.decode()
    found = members(proc.stdout)
    manifest = check_manifest(found)
    assert found["files/public/notice.txt"] == b"public notice\n"
    assert manifest["snapshots"]["files"]["id"] == first["id"]
    assert manifest["fresh_backup"] is False
    assert len(site.snapshots("local")) == count


def test_main_at_picks_the_newest_backup_of_that_day(site: Site) -> None:
    public, _private = site_data(site)
    assert site.run(T1, "--local-only").returncode == 0
    (public / "notice.txt").write_text("changed later\n")
    assert site.run(T2, "--local-only").returncode == 0
    proc = export(site, "--at", "2026-03-02", "--plain")
    assert proc.returncode == 0, proc.stderr.decode()
    assert members(proc.stdout)["files/public/notice.txt"] == b"public notice\n"


def test_main_from_a_exports_the_copy_on_the_append_only_server(site: Site) -> None:
    public, _private = site_data(site)
    assert site.run(T1).returncode == 0  # copied to A through the append-only server
    (public / "notice.txt").write_text("changed later\n")
    proc = export(site, "--from", "a", "--at", "2026-03-02", "--plain")
    assert proc.returncode == 0, proc.stderr.decode()
    found = members(proc.stdout)
    manifest = check_manifest(found)
    assert manifest["source"] == "a" and found["files/public/notice.txt"] == b"public notice\n"
    assert manifest["snapshots"]["files"]["id"] in {s["id"] for s in site.snapshots("a")}


def test_main_from_a_without_a_chosen_backup_exits_2_naming_from(site: Site) -> None:
    site_data(site)
    proc = export(site, "--from", "a", "--plain")
    assert proc.returncode == 2 and b"--from a: a fresh backup is taken into the local" in (
        proc.stderr)
    assert proc.stdout == b"" and len(site.snapshots("local")) == 0


def test_main_missing_private_files_fails_naming_the_path(site: Site) -> None:
    site_data(site)
    shutil.rmtree(site.code.parent / "private")
    proc = export(site, "--plain")
    assert proc.returncode == 1
    err = proc.stderr.decode()
    assert "FAILED" in err and "srv/private" in err and "discard the partial output" in err


@pytest.mark.skipif(shutil.which("age") is None, reason="age is not installed")
def test_main_failure_with_recipient_leaves_no_decryptable_output(
        site: Site, tmp_path: Path) -> None:
    site_data(site)
    shutil.rmtree(site.code.parent / "private")
    identity = tmp_path / "client.key"
    subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
    recipient = subprocess.run(["age-keygen", "-y", str(identity)], check=True,
                               capture_output=True, text=True).stdout.strip()
    proc = export(site, "--recipient", recipient)
    assert proc.returncode == 1
    decrypted = subprocess.run(["age", "--decrypt", "--identity", str(identity)],
                               input=proc.stdout, capture_output=True)
    assert decrypted.returncode != 0  # a cut stream: age refuses it, never a short archive


def test_main_bad_recipient_exits_2_naming_the_field(site: Site) -> None:
    proc = export(site, "--recipient", "AGE-SECRET-KEY-1QQQQ")
    assert proc.returncode == 2
    assert b"--recipient (not shown): not an age public key" in proc.stderr
    assert b"AGE-SECRET-KEY-1QQQQ" not in proc.stderr and proc.stdout == b""


def test_main_lock_held_refuses_with_75(site: Site) -> None:
    site_data(site)
    with exclusive(site.state_dir / "lock", "test"):
        proc = export(site, "--plain")
    assert proc.returncode == 75 and b"REFUSED" in proc.stderr and proc.stdout == b""


def test_write_archive_dump_differing_from_its_trailer_raises(site: Site) -> None:
    site_data(site)
    assert site.run(T1, "--local-only").returncode == 0
    genuine = {s["id"] for s in site.snapshots("local")}
    forged = b"INSERT INTO t VALUES (1);\n" + trailer_line("0" * 64)
    proc = subprocess.run(
        [site.restic, "--repo", str(site.repo_dir("local")), "--password-file",
         str(site.root / "etc" / "password"), "--no-cache", "backup", "--stdin",
         "--stdin-filename", "demo.sql", "--host", "web-demo", "--tag", "db", "--time",
         "2026-03-02 00:30:00"], input=forged, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    snaps = site.snapshots("local")
    db = next(s for s in snaps if s["id"] not in genuine)
    files = next(s for s in snaps if "files" in s["tags"])
    cfg = config_mod.load(site.config_path)
    with pytest.raises(ExportError, match="differs from the sha256 recorded"):
        write_archive(cfg, "local", db, files, io.BytesIO(), False)


def test_check_recipient_secret_key_raises_without_showing_it() -> None:
    with pytest.raises(ExportError, match=r"--recipient \(not shown\)") as info:
        check_recipient("AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ")
    assert "GFPYY" not in str(info.value)


def test_check_recipient_public_key_returns_it_stripped() -> None:
    assert check_recipient(f" {KEY}\n") == KEY


def test_check_recipient_short_key_raises_naming_the_field() -> None:
    with pytest.raises(ExportError, match="--recipient age1abc: not an age public key"):
        check_recipient("age1abc")


def test_body_hash_dump_with_trailer_returns_body_sha_and_trailer() -> None:
    body = b"".join(b"INSERT INTO t VALUES (%d);\n" % i for i in range(5000))
    digest = hashlib.sha256(body).hexdigest()
    h = BodyHash()
    data = body + trailer_line(digest)
    for i in range(0, len(data), 333):
        h.update(data[i:i + 333])
    assert h.result() == (digest, digest)


def test_body_hash_dump_without_trailer_hashes_everything() -> None:
    h = BodyHash()
    h.update(b"short dump\n")
    assert h.result() == (hashlib.sha256(b"short dump\n").hexdigest(), None)


def test_rename_member_under_prefix_goes_under_folder() -> None:
    assert rename("srv/demo/shared/files/a/b.txt", "/srv/demo/shared/files",
                  "files/public") == "files/public/a/b.txt"
    assert rename("demo.sql", "/", "database") == "database/demo.sql"


def test_rename_member_outside_prefix_returns_none() -> None:
    assert rename("srv/demo", "/srv/demo/shared/files", "files/public") is None


def test_rename_member_with_dotdot_raises() -> None:
    with pytest.raises(ExportError, match="unexpected member"):
        rename("srv/f/../../etc/shadow", "/srv/f", "files/public")


def test_manifest_as_dict_names_format_site_and_snapshots() -> None:
    m = Manifest("demo", "web-demo", "local", {"db": {"id": "a", "time": "t"}}, True)
    d = m.as_dict("2026-01-01T00:00:00Z")
    assert (d["format"], d["site"], d["created"], d["snapshots"]["db"]["id"]) == (
        "hosting-export/1", "demo", "2026-01-01T00:00:00Z", "a")
