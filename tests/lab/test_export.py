"""`fab export` in the lab (issue 16, R-DATA-1, R-GDPR-1): export villeparisis from a fresh
backup, encrypted to a test age key, through the project's SSH; decrypt it here; import the
dump into a scratch database and the files into a scratch directory on the web host; the
scratch copy has the same CHECKSUM TABLE for every table and the same sha256 for every public
and private file as the live site at that snapshot (its writers, PHP-FPM and the site's cron,
are stopped meanwhile so the live site is the snapshot). Everything scratch is removed and the
writers started again: the lab stays healthy for the tests after this one."""
from __future__ import annotations

import json
import stat
import subprocess
import tarfile
import time

import pytest

from lab.testing import LabSession
from roles.backup.layout import BackupLayout
from tasks.export_tasks import ExportTaskError, run_export

from .test_backup_support import Chain, backup_chain
from .test_web_support import lab_env

pytestmark = pytest.mark.lab
SITE = "villeparisis"
SCRATCH = "/var/tmp/hosting-export-check"
# The site's data as the export carries it (roles/web/layout.py): folder in the archive ->
# directory of the live site.
PARTS = {"files/public": f"/srv/{SITE}/shared/files", "files/private": f"/srv/{SITE}/private"}


@pytest.fixture
def chain(lab: LabSession) -> Chain:
    return backup_chain(lab)


def runner_config(chain: Chain) -> dict:
    path = chain.root(chain.web(SITE)) / BackupLayout(SITE).config.lstrip("/")
    return json.loads(path.read_text())


def checksums(chain: Chain, db: str, skip: tuple[str, ...]) -> dict[str, str]:
    """{table: CHECKSUM TABLE} of every base table of `db` but the log tables."""
    web = chain.web(SITE)
    tables = chain.sh(web, f"mariadb --protocol=socket -N -e \"SELECT table_name FROM "
                           f"information_schema.tables WHERE table_schema='{db}' AND "
                           f"table_type='BASE TABLE' ORDER BY 1\"")
    assert tables.returncode == 0, tables.stderr
    names = [t for t in tables.stdout.split() if t not in skip]
    assert names, f"no table in {db}"
    sql = "CHECKSUM TABLE " + ", ".join(f"`{db}`.`{t}`" for t in names) + " EXTENDED"
    proc = chain.sh(web, f"mariadb --protocol=socket -N -e '{sql}'")
    assert proc.returncode == 0, proc.stderr
    return {line.split("\t")[0].split(".", 1)[1]: line.split("\t")[1]
            for line in proc.stdout.splitlines()}


def file_hashes(chain: Chain, directory: str) -> dict[str, str]:
    """{relative path: sha256} of every regular file under `directory` on the web host."""
    proc = chain.sh(chain.web(SITE), f"cd {directory} && find . -type f -print0 | sort -z | "
                                     "xargs -0 -r sha256sum")
    assert proc.returncode == 0, proc.stderr
    return {line[66:].removeprefix("./"): line[:64] for line in proc.stdout.splitlines()}


def test_export_villeparisis_imports_elsewhere_with_the_same_database_and_files(
        chain: Chain, tmp_path) -> None:
    web = chain.web(SITE)
    cfg = runner_config(chain)
    db, skip = cfg["database"]["name"], tuple(cfg["database"].get("log_tables", ()))
    scratch_db = f"{db}_exportcheck"
    units = cfg["restore"]["stop_units"]
    identity = tmp_path / "client.key"
    subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
    recipient = subprocess.run(["age-keygen", "-y", str(identity)], check=True,
                               capture_output=True, text=True).stdout.strip()
    dest = tmp_path / f"{SITE}.tar.age"
    # A file of each kind the test can recognise, written through the live paths (the private
    # one into the gocryptfs mount: it must come out of the export decrypted).
    marks = {folder: f"{path}/export-check-{folder.split('/')[1]}.txt"
             for folder, path in PARTS.items()}
    try:
        stopped = chain.sh(web, "systemctl stop " + " ".join(units) + " && " + " && ".join(
            f"printf 'export check %s\\n' {folder} > {mark}" for folder, mark in marks.items()))
        assert stopped.returncode == 0, stopped.stderr
        live_db = checksums(chain, db, skip)
        live_files = {folder: file_hashes(chain, path) for folder, path in PARTS.items()}
        for folder, mark in marks.items():
            assert mark.rsplit("/", 1)[1] in live_files[folder], live_files

        lines: list[str] = []
        t0 = time.monotonic()
        with lab_env(chain.lab):
            result = run_export("lab", SITE, str(dest), recipient, check_with=str(identity),
                                emit=lines.append)
            seconds = time.monotonic() - t0
            with pytest.raises(ExportTaskError, match="exists; give --force"):
                run_export("lab", SITE, str(dest), recipient, emit=lines.append)
        print("\n".join(lines))
        print(f"export: {result['bytes']} bytes, {result['files']} files in {seconds:.1f} s")
        assert result["checked_against_manifest"] and result["fresh_backup"]
        assert stat.S_IMODE(dest.stat().st_mode) == 0o600
        ciphertext = dest.read_bytes()
        assert ciphertext.startswith(b"age-encryption.org/v1\n")
        assert not list(tmp_path.glob(".export-*"))

        # The client's side: decrypt, then import on "another" system (scratch names here).
        plain = subprocess.run(["age", "--decrypt", "--identity", str(identity), str(dest)],
                               capture_output=True, check=True).stdout
        host_dir = chain.root(web) / SCRATCH.lstrip("/")
        host_dir.mkdir(mode=0o700)
        (host_dir / "export.tar").write_bytes(plain)
        imported = chain.sh(web, f"""set -e
cd {SCRATCH} && mkdir site && tar -xf export.tar -C site
mariadb --protocol=socket -e 'CREATE DATABASE `{scratch_db}`'
mariadb --protocol=socket {scratch_db} < site/database/{SITE}.sql""")
        assert imported.returncode == 0, imported.stderr
        manifest = json.loads((host_dir / "site" / "manifest.json").read_text())
        assert manifest["snapshots"] == result["snapshots"]

        # The same backup again, chosen by its two ids and --plain: no new backup is taken,
        # and the archive holds exactly the same members.
        count = len(chain.snapshots(SITE, "local"))
        pair = ",".join(result["snapshots"][kind]["id"] for kind in ("db", "files"))
        with lab_env(chain.lab):
            again = run_export("lab", SITE, str(tmp_path / "again.tar"), plain=True,
                               snapshot=pair, emit=lines.append)
        assert again["snapshots"] == result["snapshots"] and not again["fresh_backup"]
        assert again["checked_against_manifest"] and again["encrypted"] is False
        assert len(chain.snapshots(SITE, "local")) == count
        with tarfile.open(tmp_path / "again.tar") as tar:
            member = tar.extractfile("manifest.json")
            assert member is not None
            assert json.loads(member.read())["members"] == manifest["members"]

        assert checksums(chain, scratch_db, skip) == live_db
        for folder, hashes in live_files.items():
            assert file_hashes(chain, f"{SCRATCH}/site/{folder}") == hashes, folder
        for table in skip:  # logs never leave the host (R-GDPR-11): structure only
            live = chain.sh(web, f"mariadb --protocol=socket -N -e \"SELECT COUNT(*) FROM "
                                 f"information_schema.tables WHERE table_schema='{db}' AND "
                                 f"table_name='{table}'\"")
            if live.stdout.strip() != "1":
                continue  # the fixture site is not Drupal: it has no watchdog table
            count = chain.sh(web, f"mariadb --protocol=socket -N -e "
                                  f"'SELECT COUNT(*) FROM `{scratch_db}`.`{table}`'")
            assert count.stdout.strip() == "0", count.stderr
    finally:
        chain.sh(web, f"mariadb --protocol=socket -e 'DROP DATABASE IF EXISTS `{scratch_db}`'; "
                      f"rm -rf {SCRATCH} " + " ".join(marks.values()))
        started = chain.sh(web, "systemctl start " + " ".join(units) + " && systemctl "
                                "is-active " + " ".join(units))
    assert started.returncode == 0, started.stdout + started.stderr
    gone = chain.sh(web, f"test ! -e {SCRATCH} && " + " && ".join(
        f"test ! -e {mark}" for mark in marks.values()) + f" && ! mariadb --protocol=socket -N -e "
                         f"\"SHOW DATABASES LIKE '{scratch_db}'\" | grep -q .")
    assert gone.returncode == 0, "scratch copy left behind"
