"""`copy-in`: load a production export (backup/export.py's archive, plain, checked by the admin
against its manifest and here against its sha256) into this host's copy of the site: the
preproduction site `fab update` qualifies an update on (issue 15, step 2; R-MNT-2).

  database/<site>.sql   -> the site's database: the current database is first dumped to
                           <snapshot dir>/precopy.sql (root 0600, one kept), the export's dump
                           is loaded into the side database `<db>_rollback` and swapped in with
                           ONE `RENAME TABLE` (hw_dbsnap.swap_sql: every table moves or none)
  files/public/...      -> <site root>/shared/files
  files/private/...     -> <site root>/private (the plaintext view of the encrypted store)

Files are extracted (tarfile's "data" filter: no absolute path, no link out of the tree, no
device) into `.copy-incoming-<token>` inside each target, then the target's old entries move
aside into `.copy-previous-<token>` and the new ones up: renames on one filesystem. Any
failure puts the old entries back and says so; the previous entries are removed only once
both trees and the database are in. New entries get the target directory's owner and group.

The caller keeps visitors out meanwhile (the proxy's maintenance flag): personal data is
sanitized (hw_update.sanitize) before the copy serves anything. Standard library only.
"""
import os
import shutil
import subprocess
import tarfile
import time

import hw_dbsnap
from hw_util import HelperError, sha256_file, token

PARTS = {"files/public/": "public", "files/private/": "private"}


def copy_in(site, archive, sha256, public_dir, private_dir):
    """The whole copy; a report, or HelperError with the site's old data in place."""
    t0 = time.monotonic()
    if not site.database:
        raise HelperError("--database is required: the copy replaces the site's database")
    got = sha256_file(archive)
    if got != sha256:
        raise HelperError(f"{archive}: sha256 {got}, expected {sha256}: not loaded")
    report = {"archive_sha256": got, "timings": {}}
    tag = token()
    os.makedirs(site.snapshot_dir, mode=0o700, exist_ok=True)
    dump = os.path.join(site.snapshot_dir, f".copy-{tag}.sql")  # root-only, not web-visible
    targets = {"public": public_dir, "private": private_dir}
    for d in targets.values():
        if not os.path.isdir(d):
            raise HelperError(f"{d}: not a directory (is the site deployed, its store mounted?)")
    try:
        t = time.monotonic()
        _extract(archive, dump, targets, tag)
        report["timings"]["extract"] = round(time.monotonic() - t, 3)
        t = time.monotonic()
        snaps = site.snapshots()
        report["saved"] = {k: snaps.take("precopy")[k] for k in ("path", "sha256", "bytes")}
        report["timings"]["save"] = round(time.monotonic() - t, 3)
        t = time.monotonic()
        report["tables"] = load_database(site.database, dump)
        report["timings"]["database"] = round(time.monotonic() - t, 3)
    except Exception:
        for d in targets.values():
            shutil.rmtree(os.path.join(d, f".copy-incoming-{tag}"), ignore_errors=True)
        raise
    finally:
        if os.path.exists(dump):
            os.unlink(dump)
    t = time.monotonic()
    report["files"] = swap_trees(targets, tag)
    report["timings"]["files"] = round(time.monotonic() - t, 3)
    report["seconds"] = round(time.monotonic() - t0, 3)
    return report


def _extract(archive, dump, targets, tag):
    """Extract the archive: files into each target's incoming dir, the database to `dump`."""
    incoming = {}
    for name, d in targets.items():
        incoming[name] = os.path.join(d, f".copy-incoming-{tag}")
        os.mkdir(incoming[name], 0o700)
    found_dump = False
    with tarfile.open(archive, mode="r|*") as tar:
        for member in tar:
            if member.name.startswith("database/") and member.name.endswith(".sql") \
                    and member.isreg():
                fd = os.open(dump, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(tar.extractfile(member), out, 1 << 20)
                found_dump = True
                continue
            for prefix, name in PARTS.items():
                if member.name.startswith(prefix) and len(member.name) > len(prefix):
                    member.name = member.name[len(prefix):]
                    tar.extract(member, incoming[name], filter="data")
                    break
    if not found_dump:
        raise HelperError(f"{archive}: no database/<site>.sql member")
    for name, d in targets.items():
        st = os.stat(d)
        for root, dirs, files in os.walk(incoming[name]):
            for entry in dirs + files:
                os.lchown(os.path.join(root, entry), st.st_uid, st.st_gid)
        os.chown(incoming[name], st.st_uid, st.st_gid)


def load_database(database, dump):
    """The export's dump as the live database: side load, then one atomic swap. Returns the
    number of tables now live."""
    db = hw_dbsnap.ident(database)
    side, failed = hw_dbsnap.side_names(db)
    create = "CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
    hw_dbsnap.sql(f"DROP DATABASE IF EXISTS `{side}`;\nCREATE DATABASE `{side}` {create};\n")
    with open(dump, "rb") as f:
        proc = subprocess.run(["mariadb", "--protocol=socket", side], stdin=f,
                              capture_output=True, timeout=3600,
                              env=dict(os.environ, LC_ALL="C"))
    if proc.returncode != 0:
        hw_dbsnap.sql(f"DROP DATABASE IF EXISTS `{side}`;\n")
        raise HelperError("loading the export's dump failed (live database untouched): "
                          + proc.stderr.decode(errors="replace").strip()[-1000:])
    new_tables = hw_dbsnap.tables(side)
    if not new_tables:
        raise HelperError("the export's dump holds no table (live database untouched)")
    hw_dbsnap.sql(f"DROP DATABASE IF EXISTS `{failed}`;\nCREATE DATABASE `{failed}` {create};\n")
    hw_dbsnap.sql("SET FOREIGN_KEY_CHECKS=0;\n" + hw_dbsnap.swap_sql(
        db, side, failed, hw_dbsnap.tables(db), new_tables) + "\n")
    hw_dbsnap.sql(f"DROP DATABASE IF EXISTS `{side}`;\nDROP DATABASE IF EXISTS `{failed}`;\n")
    return len(new_tables)


def swap_trees(targets, tag):
    """Old entries aside, new ones up, in every target; on failure the old ones go back."""
    moved = []  # (from, to) renames done, undone in reverse on failure
    try:
        for d in targets.values():
            incoming = os.path.join(d, f".copy-incoming-{tag}")
            previous = os.path.join(d, f".copy-previous-{tag}")
            os.mkdir(previous, 0o700)
            moved.append((None, previous))
            for entry in os.listdir(d):
                if entry.startswith(".copy-"):
                    continue
                os.rename(os.path.join(d, entry), os.path.join(previous, entry))
                moved.append((os.path.join(d, entry), os.path.join(previous, entry)))
            for entry in os.listdir(incoming):
                os.rename(os.path.join(incoming, entry), os.path.join(d, entry))
                moved.append((os.path.join(incoming, entry), os.path.join(d, entry)))
    except OSError as exc:
        errors = [str(exc)]
        for src, dst in reversed(moved):
            try:
                if src is None:
                    os.rmdir(dst)
                else:
                    os.rename(dst, src)
            except OSError as undo:
                errors.append(f"putting back {dst}: {undo}")
        raise HelperError("replacing the files failed, the old files are back: "
                          + " | ".join(errors)) from exc
    counts = {}
    for name, d in targets.items():
        shutil.rmtree(os.path.join(d, f".copy-previous-{tag}"), ignore_errors=True)
        os.rmdir(os.path.join(d, f".copy-incoming-{tag}"))
        counts[name] = sum(len(f) for _r, _d, f in os.walk(d))
    return counts
