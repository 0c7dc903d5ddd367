"""Release safety for the database (issue 11, section 2; R-INC-1, R-MNT-2): a local snapshot of
the site's database taken on the host just before a release changes it, and the way back to it
when the release fails after its database step.

  /var/lib/hosting/release-db/<site>/          root:root 0700, outside the site tree and the
                                               web root (the nightly backup does not carry it)
      <release id>.sql                         root 0600: `mariadb-dump --single-transaction`
      <release id>.json                        root 0600: sha256, bytes, schema fingerprint,
                                               schema-version rows, timings
      <release id>.failed.sql                  root 0600: a failed release's tables, dumped
                                               after the way back, for inspection

Kept: the snapshots of the last KEEP releases that changed the database (snapshots_to_prune).

The way back never empties the live database first: the dump is checked against its sha256,
loaded into a side database `<db>_rollback`, checked there (schema fingerprint and version rows
equal to the ones recorded when the dump was taken), and only then swapped in with ONE
`RENAME TABLE` statement (atomic: every table moves, or none). The failed release's tables go to
`<db>_failed`, which is then dumped beside the snapshot and dropped (one database per site).
The live database is checked again after the swap.

Like the rest of the helper: root over the Unix socket (root logs in by unix_socket only), no
password anywhere, standard library only. backup/ is not imported: it is deployed elsewhere
on the host (its own directory, its own configuration); the dump options are the same.
"""
import hashlib
import json
import os
import re
import subprocess
import time

from hw_util import HelperError, run, sha256_file

ROOT = "/var/lib/hosting/release-db"
KEEP = 3  # snapshots of the last three releases that changed the database
SNAPSHOT = re.compile(r"^(?P<rid>[0-9]{8}T[0-9]{6}Z-[0-9a-f]{12})\.sql$")
IDENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$")  # never a leading "-"
# Rows that say which schema version a database is at, when the table exists: Drupal's
# per-module schema versions, and the test fixture's own version table.
VERSION_QUERIES = {
    "key_value": "SELECT name, value FROM `key_value` WHERE collection='system.schema' "
                 "ORDER BY name",
    "hosting_fixture_schema": "SELECT id, version FROM `hosting_fixture_schema` ORDER BY id",
}


# -- pure decisions (unit-tested with plain data) -------------------------------------------
def ident(name):
    if not IDENT.match(name or ""):
        raise HelperError(f"unsafe SQL identifier {name!r}")
    return name


def side_names(database):
    """(side, failed): where a snapshot is loaded, where the failed release's tables go."""
    side, failed = f"{database}_rollback", f"{database}_failed"
    for name in (database, side, failed):
        ident(name)
    return side, failed


def swap_sql(database, side, failed, live_tables, side_tables):
    """One RENAME TABLE moving every live table to `failed` and every side table into the
    live database: atomic in MariaDB (all renames happen or none)."""
    for name in (database, side, failed, *live_tables, *side_tables):
        ident(name)
    if not side_tables:
        raise HelperError(f"{side} has no table: refusing to swap an empty database in")
    moves = [f"`{database}`.`{t}` TO `{failed}`.`{t}`" for t in sorted(live_tables)]
    moves += [f"`{side}`.`{t}` TO `{database}`.`{t}`" for t in sorted(side_tables)]
    return "RENAME TABLE " + ", ".join(moves) + ";"


def fingerprint(column_rows):
    """sha256 of the schema: (table, column, type, nullable, key) rows in order."""
    text = "\n".join("\t".join(r) for r in column_rows)
    return hashlib.sha256(text.encode()).hexdigest()


def state_differences(expected, got):
    """What differs between the recorded state of a snapshot and a database ([] if none)."""
    out = []
    if expected.get("fingerprint") != got.get("fingerprint"):
        out.append("schema fingerprint {} instead of {}".format(
            (got.get("fingerprint") or "none")[:12], (expected.get("fingerprint") or "none")[:12]))
    want, have = expected.get("versions", {}), got.get("versions", {})
    for table in sorted(set(want) | set(have)):
        if want.get(table) != have.get(table):
            out.append(f"schema version rows of {table}: {have.get(table)} instead of "
                       f"{want.get(table)}")
    return out


def snapshots_to_prune(names, keep=KEEP, protect=()):
    """Snapshot files to delete: all but the `keep` newest (release ids sort by time); never
    one named in `protect` (the one a rollback may still need)."""
    rids = sorted(m.group("rid") for m in map(SNAPSHOT.match, names) if m)
    doomed = rids[:-keep] if keep > 0 else rids
    return [r for r in doomed if r not in protect]


# -- on the host ------------------------------------------------------------------------------
def sql(statements, database=None, timeout=600):
    argv = ["mariadb", "--batch", "--skip-column-names", "--protocol=socket"]
    if database:
        argv.append(database)
    proc = run(argv, input=statements, timeout=timeout)
    return [line.split("\t") for line in proc.stdout.splitlines()]


def tables(database):
    rows = sql("SELECT TABLE_NAME FROM information_schema.TABLES WHERE "
               f"TABLE_SCHEMA='{ident(database)}' ORDER BY TABLE_NAME;\n")
    return [r[0] for r in rows]


def state(database):
    """{"fingerprint": ..., "versions": {table: rows}} of a database as it is now."""
    cols = sql("SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_KEY FROM "
               f"information_schema.COLUMNS WHERE TABLE_SCHEMA='{ident(database)}' "
               "ORDER BY TABLE_NAME, ORDINAL_POSITION;\n")
    present = {r[0] for r in cols}
    versions = {}
    for table, query in VERSION_QUERIES.items():
        if table in present:
            versions[table] = sql(query + ";\n", database)
    return {"fingerprint": fingerprint(cols), "versions": versions}


def _write_root_only(path, data):
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(path + ".tmp", path)


class Snapshots:
    def __init__(self, directory, database):
        self.dir, self.database = directory, ident(database)

    def path(self, rid):
        return os.path.join(self.dir, rid + ".sql")

    def take(self, rid):
        """Dump the live database to <rid>.sql (0600) and record its sha256 and schema state.
        Raises (and leaves no partial file) when the dump fails."""
        t0 = time.monotonic()
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        os.chmod(self.dir, 0o700)
        final, tmp = self.path(rid), self.path(rid) + ".part"
        before = state(self.database)
        argv = ["mariadb-dump", "--protocol=socket", "--single-transaction", "--skip-dump-date",
                "--triggers", "--hex-blob", self.database]
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out,
                                      stderr=subprocess.PIPE, timeout=1800,
                                      env=dict(os.environ, LC_ALL="C"))
                out.flush()
                os.fsync(out.fileno())
            if proc.returncode != 0:
                raise HelperError("mariadb-dump {} exited {}: {}".format(
                    self.database, proc.returncode, proc.stderr.decode(errors="replace")
                    .strip()[-1000:]))
            with open(tmp, "rb") as f:
                f.seek(max(0, os.path.getsize(tmp) - 200))
                if b"-- Dump completed" not in f.read():
                    raise HelperError(f"mariadb-dump {self.database}: dump is incomplete")
            os.replace(tmp, final)
        except subprocess.TimeoutExpired as exc:
            raise HelperError(f"mariadb-dump {self.database}: timed out") from exc
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        after = state(self.database)
        if state_differences(before, after):
            os.unlink(final)
            raise HelperError(f"{self.database} changed its schema while it was dumped")
        meta = {"release": rid, "database": self.database, "path": final,
                "sha256": sha256_file(final), "bytes": os.path.getsize(final),
                "fingerprint": after["fingerprint"], "versions": after["versions"],
                "seconds": round(time.monotonic() - t0, 3)}
        _write_root_only(os.path.join(self.dir, rid + ".json"), json.dumps(meta, indent=1))
        return meta

    def restore(self, meta):
        """Put the snapshot back as the live database (side load, checks, atomic swap).
        Raises naming the step; the live database is untouched unless the swap happened."""
        t0 = time.monotonic()
        db = self.database
        side, failed = side_names(db)
        digest = sha256_file(meta["path"])
        if digest != meta["sha256"]:
            raise HelperError(f"snapshot {meta['path']} has sha256 {digest}, recorded "
                              f"{meta['sha256']}: not loaded")
        sql(f"DROP DATABASE IF EXISTS `{side}`;\nCREATE DATABASE `{side}` CHARACTER SET utf8mb4 "
            "COLLATE utf8mb4_general_ci;\n")
        with open(meta["path"], "rb") as dump:
            proc = subprocess.run(["mariadb", "--protocol=socket", side], stdin=dump,
                                  capture_output=True, timeout=1800,
                                  env=dict(os.environ, LC_ALL="C"))
        if proc.returncode != 0:
            raise HelperError("loading {} into {} failed: {}".format(
                meta["path"], side, proc.stderr.decode(errors="replace").strip()[-1000:]))
        loaded = state(side)
        wrong = state_differences(meta, loaded)
        if wrong:
            raise HelperError(f"{side} after loading the snapshot: {'; '.join(wrong)}; "
                              "live database untouched")
        load_s = time.monotonic() - t0
        sql(f"DROP DATABASE IF EXISTS `{failed}`;\nCREATE DATABASE `{failed}` CHARACTER SET "
            "utf8mb4 COLLATE utf8mb4_general_ci;\n")
        sql("SET FOREIGN_KEY_CHECKS=0;\n" + swap_sql(db, side, failed, tables(db), tables(side))
            + "\n")
        live = state(db)
        wrong = state_differences(meta, live)
        if wrong:
            raise HelperError(f"{db} after the swap: {'; '.join(wrong)} (the failed release's "
                              f"tables are in {failed})")
        sql(f"DROP DATABASE IF EXISTS `{side}`;\n")
        return {"snapshot": meta["path"], "sha256": digest, "versions": live["versions"],
                "failed_tables": self._keep_failed_safely(failed, meta["path"]),
                "load_seconds": round(load_s, 3), "seconds": round(time.monotonic() - t0, 3)}

    def _keep_failed_safely(self, failed, snapshot_path):
        """The live database is already back: nothing here may fail the way back."""
        try:
            return self._keep_failed(failed, snapshot_path)
        except (HelperError, OSError, subprocess.SubprocessError) as exc:
            return f"database {failed} (kept: {exc})"

    def _keep_failed(self, failed, snapshot_path):
        """The failed release's tables, for inspection, as a root-only dump beside the snapshot
        (<id>.failed.sql); then the extra database goes (one database per site, R-GDPR-8).
        If that dump fails the database stays, and the answer says where the tables are."""
        path = snapshot_path[:-len(".sql")] + ".failed.sql"
        argv = ["mariadb-dump", "--protocol=socket", "--single-transaction", "--skip-dump-date",
                "--triggers", "--hex-blob", failed]
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.PIPE, timeout=1800,
                                  env=dict(os.environ, LC_ALL="C"))
        if proc.returncode != 0:
            os.unlink(path)
            return f"database {failed} (its dump failed: kept as it is)"
        sql(f"DROP DATABASE IF EXISTS `{failed}`;\n")
        return path

    def drop_failed(self):
        """After a release that changed the database went live: a failed way back's leftover
        database, if any, is no longer needed."""
        sql(f"DROP DATABASE IF EXISTS `{side_names(self.database)[1]}`;\n")

    def prune(self, keep=KEEP, protect=()):
        if not os.path.isdir(self.dir):
            return []
        doomed = snapshots_to_prune(os.listdir(self.dir), keep, protect)
        for rid in doomed:
            for ext in (".sql", ".json", ".failed.sql"):
                try:
                    os.unlink(os.path.join(self.dir, rid + ext))
                except FileNotFoundError:
                    pass
        return doomed
