"""The database half of a restore (backup.restore): never the live database first.

1. the snapshot's dump is streamed from `restic dump` into a SIDE database `<db>_restore`
   (created fresh; a leftover one is dropped), as root over the socket, hashed on the way
   (backup.dumpsum.copy_hashing_body: the sha256 of the body and the one its trailer line
   records, if any);
2. the stream is verified BEFORE anything live is touched: its sha256 must be the one recorded
   at backup time (the dump's trailer, else the files snapshot's `dump-sha256=` tag). A cut or
   corrupt stream, or a client error, drops the side database: the live one is untouched;
3. the swap: ONE `RENAME TABLE live.t TO old.t, ..., side.t TO live.t, ...` statement, which
   MariaDB performs atomically (all or none), the live tables kept in `<db>_prerestore`;
4. a backup without a recorded sha256 (taken before it existed), or --redump, is verified
   after the swap by a new dump made exactly as the backup makes it (it names the live
   database, so it cannot run on the side one); a mismatch swaps back;
5. the kept tables are dropped only when the whole restore succeeded.

The site user's grants are on the live database NAME (`db`.*): they apply to the tables the
swap moves in. Views and triggers cannot move between databases with RENAME TABLE: a dump
or live database holding any is refused before anything is touched (Drupal uses neither),
naming them (docs/backups.md). Standard library only (runs on the hosts).
"""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
from typing import Any

from backup.config import SiteBackup
from backup.dumpsum import copy_hashing_body, enlarge_pipe

CHUNK = 1 << 20
SIDE_SUFFIX = "_restore"
OLD_SUFFIX = "_prerestore"


class RestoreError(RuntimeError):
    pass


def side_names(db: str) -> tuple[str, str]:
    """(side database the dump is loaded into, database the live tables are kept in).

    MariaDB names are at most 64 characters."""
    side, old = f"{db}{SIDE_SUFFIX}", f"{db}{OLD_SUFFIX}"
    if len(old) > 64:
        raise RestoreError(f"database name {db!r} too long for its side databases")
    return side, old


def ident(name: str) -> str:
    if not name or not name.replace("_", "").isalnum() or not name.isascii():
        raise RestoreError(f"unsafe SQL identifier {name!r}")
    return f"`{name}`"


def _rename_sql(moves: list[tuple[str, str, list[str]]]) -> str:
    """One RENAME TABLE statement (atomic) for every (from_db, to_db, tables) move."""
    parts = [f"{ident(src)}.{ident(t)} TO {ident(dst)}.{ident(t)}"
             for src, dst, tables in moves for t in tables]
    return "RENAME TABLE " + ",\n  ".join(parts) + ";\n" if parts else ""


def rename_sql(live: str, side: str, old: str, live_tables: list[str],
               side_tables: list[str]) -> str:
    """The swap: every live table to `old`, every side table to `live`."""
    return _rename_sql([(live, old, live_tables), (side, live, side_tables)])


def swap_back_sql(live: str, side: str, old: str, live_tables: list[str],
                  side_tables: list[str]) -> str:
    """The swap undone: the restored tables back to `side`, the kept ones back to `live`."""
    return _rename_sql([(live, side, side_tables), (old, live, live_tables)])


def _mariadb(cfg: SiteBackup, sql: str, database: str | None = None) -> str:
    argv = [cfg.database.client_program, "--protocol=socket", "--batch", "--skip-column-names"]
    if database:
        argv.append(database)
    proc = subprocess.run(argv, input=sql, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RestoreError(f"mariadb: {proc.stderr.strip()[-1000:]}")
    return proc.stdout


def objects(cfg: SiteBackup, db: str) -> dict[str, list[str]]:
    """{"tables": [...], "views": [...], "triggers": [...]} of database `db` (none if absent)."""
    ident(db)
    out = _mariadb(cfg, "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES "
                        f"WHERE TABLE_SCHEMA='{db}' ORDER BY TABLE_NAME;\n"
                        "SELECT TRIGGER_NAME, 'TRIGGER' FROM information_schema.TRIGGERS "
                        f"WHERE TRIGGER_SCHEMA='{db}' ORDER BY TRIGGER_NAME;\n")
    found: dict[str, list[str]] = {"tables": [], "views": [], "triggers": []}
    for line in out.splitlines():
        name, _, kind = line.partition("\t")
        key = {"VIEW": "views", "TRIGGER": "triggers"}.get(kind.strip(), "tables")
        found[key].append(name)
    return found


def database_exists(cfg: SiteBackup, db: str) -> bool:
    ident(db)
    return bool(_mariadb(cfg, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA "
                              f"WHERE SCHEMA_NAME='{db}';\n").strip())


def prepare(cfg: SiteBackup) -> None:
    """Before anything is touched: the live database exists (a broken site may have lost it;
    an empty one is created, nothing is lost), and no earlier restore was cut half-way
    between its swap and its end (its kept tables would hold the only copy of a database)."""
    db = cfg.database.name
    _side, old = side_names(db)
    _mariadb(cfg, f"CREATE DATABASE IF NOT EXISTS {ident(db)} CHARACTER SET utf8mb4 "
                  "COLLATE utf8mb4_general_ci;\n")
    if database_exists(cfg, old):
        if any(objects(cfg, old).values()):
            raise RestoreError(f"database {old} exists and holds tables: an earlier restore was "
                               "interrupted after its swap; compare it with the live one, then "
                               "drop it (or rename its tables back) before restoring again")
        _mariadb(cfg, f"DROP DATABASE {ident(old)};\n")


def load_side(cfg: SiteBackup, repo_tier: str, snapshot_id: str) -> dict[str, Any]:
    """Step 1: the dump into a fresh side database. Raises RestoreError (side dropped)."""
    side, _old = side_names(cfg.database.name)
    _mariadb(cfg, f"DROP DATABASE IF EXISTS {ident(side)};\n"
                  f"CREATE DATABASE {ident(side)} CHARACTER SET utf8mb4 "
                  "COLLATE utf8mb4_general_ci;\n")
    argv = cfg.restic.dump_argv(cfg.repo(repo_tier), snapshot_id, cfg.dump_path)
    try:
        sha256, size, trailer = stream_hashing(
            argv, cfg.restic.environment(),
            [cfg.database.client_program, "--protocol=socket", side])
    except BaseException:
        drop_side(cfg)
        raise
    return {"bytes": size, "sha256": sha256, "trailer_sha256": trailer, "loaded_into": side}


def drop_side(cfg: SiteBackup) -> None:
    side, _old = side_names(cfg.database.name)
    _mariadb(cfg, f"DROP DATABASE IF EXISTS {ident(side)};\n")


def stream_hashing(source: list[str], source_env: dict[str, str], sink: list[str]
                   ) -> tuple[str, int, str | None]:
    """`source | sink`, hashing what passes: (sha256 of the body, bytes, trailer's sha256).
    Raises RestoreError naming the side that failed (the sink first: a client that stops
    reading makes the source fail too)."""
    with tempfile.TemporaryFile() as source_err, tempfile.TemporaryFile() as sink_err:
        producer = subprocess.Popen(source, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=source_err, env=source_env)
        consumer = subprocess.Popen(sink, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                    stderr=sink_err)
        assert producer.stdout is not None and consumer.stdin is not None
        in_fd, out_fd = producer.stdout.fileno(), consumer.stdin.fileno()
        enlarge_pipe(in_fd)
        enlarge_pipe(out_fd)
        sha256, size, trailer, broken = "", 0, None, False
        try:
            sha256, size, trailer = copy_hashing_body(in_fd, out_fd)
        except BrokenPipeError:
            broken = True
            producer.kill()
        except BaseException:
            producer.kill()
            consumer.kill()
            raise
        finally:
            producer.stdout.close()
            try:
                consumer.stdin.close()
            except BrokenPipeError:
                broken = True
        produced, consumed = producer.wait(), consumer.wait()
        errors = []
        if produced != 0:
            # restic first: a cut stream makes the client fail too, on a truncated statement.
            source_err.seek(0)
            errors.append(f"restic dump failed (exit {produced}) after {size} bytes: "
                          f"{_last_words(source_err.read())}")
        if consumed != 0 or broken:
            sink_err.seek(0)
            errors.append(f"loading the dump failed (exit {consumed}): "
                          f"{_last_words(sink_err.read())}")
        if errors:
            raise RestoreError("; ".join(errors))
    return sha256, size, trailer


def _last_words(stderr: bytes) -> str:
    """A program's error lines, never the data around them: the client quotes the SQL it
    choked on (rows of the site's database, personal data) before its ERROR line."""
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines()
             if line.strip()]
    wanted = [line for line in lines if line.startswith(("ERROR", "Fatal", "error", "restic"))]
    return " | ".join(line[:300] for line in (wanted or lines)[-3:]) or "(no message)"


def check_stream(streamed: dict[str, Any], tag_sha256: str | None,
                 expects_trailer: bool = False) -> dict[str, Any]:
    """Step 2 (pure): is the streamed dump the one recorded at backup time? `matches` is None
    when nothing was recorded (the re-dump after the swap decides then).

    `expects_trailer`: the database snapshot is marked as ending with a trailer line
    (backup.records.DUMP_TRAILER); a stream without one was cut short, even if restic exited 0,
    and is refused here, before the swap."""
    recorded, source = streamed.get("trailer_sha256"), "the dump's trailer line"
    result: dict[str, Any] = {"streamed_sha256": streamed["sha256"]}
    if recorded is None and expects_trailer:
        result["method"] = "sha256 recorded at backup time (the dump's trailer line)"
        result["recorded_sha256"] = "(missing: the stream ended before its trailer line)"
        result["matches"] = False
        return result
    if recorded is None and tag_sha256 is not None:
        recorded, source = tag_sha256, "the files snapshot's dump-sha256 tag"
    if recorded is None:
        result["method"] = "re-dump after the swap (no sha256 recorded at backup time)"
        result["matches"] = None
        return result
    result["method"] = f"sha256 recorded at backup time ({source})"
    result["recorded_sha256"] = recorded
    result["matches"] = streamed["sha256"] == recorded
    return result


class Swap:
    """Step 3 and its undoing. `done` is True between swap_in and swap_back."""

    def __init__(self, cfg: SiteBackup) -> None:
        self.cfg = cfg
        self.live = cfg.database.name
        self.side, self.old = side_names(self.live)
        self.live_tables: list[str] = []
        self.side_tables: list[str] = []
        self.done = False

    def check(self) -> None:
        """Refuse, before anything is touched, what RENAME TABLE cannot move."""
        problems = []
        for db in (self.live, self.side):
            found = objects(self.cfg, db)
            extra = [f"view {n}" for n in found["views"]] + [
                f"trigger {n}" for n in found["triggers"]]
            if extra:
                problems.append(f"{db}: {', '.join(extra)}")
            if db == self.live:
                self.live_tables = found["tables"]
            else:
                self.side_tables = found["tables"]
        if problems:
            raise RestoreError("views and triggers cannot be swapped in by RENAME TABLE ("
                               + "; ".join(problems) + "): restore this database by hand "
                               "(docs/backups.md), the live one is untouched")

    def swap_in(self) -> None:
        _mariadb(self.cfg, f"CREATE DATABASE {ident(self.old)} CHARACTER SET utf8mb4 "
                           "COLLATE utf8mb4_general_ci;\n")
        sql = rename_sql(self.live, self.side, self.old, self.live_tables, self.side_tables)
        try:
            if sql:
                _mariadb(self.cfg, sql)  # all or nothing: on error no table moved
        except RestoreError as error:
            try:
                _mariadb(self.cfg, f"DROP DATABASE IF EXISTS {ident(self.old)};\n")
            except RestoreError as drop_error:
                raise RestoreError(f"{error}; then {drop_error}") from None
            raise RestoreError(f"the database swap failed, no table moved: {error}") from None
        self.done = True

    def swap_back(self) -> None:
        sql = swap_back_sql(self.live, self.side, self.old, self.live_tables, self.side_tables)
        if sql:
            _mariadb(self.cfg, sql)
        self.done = False
        _mariadb(self.cfg, f"DROP DATABASE IF EXISTS {ident(self.old)};\n")

    def finish(self) -> None:
        """Success: the kept live tables and the (now empty) side database go."""
        _mariadb(self.cfg, f"DROP DATABASE IF EXISTS {ident(self.old)};\n"
                           f"DROP DATABASE IF EXISTS {ident(self.side)};\n")


def redump_sha256(cfg: SiteBackup) -> str:
    """sha256 of a new dump of the live database, made exactly as the backup makes it (hashed
    as it comes: a large database is never held in memory)."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cfg.database.dump_command(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=err)
        assert proc.stdout is not None
        digest = hashlib.sha256()
        while chunk := proc.stdout.read(CHUNK):
            digest.update(chunk)
        proc.stdout.close()
        if proc.wait() != 0:
            err.seek(0)
            raise RestoreError("re-dump for verification failed: "
                               f"{err.read().decode(errors='replace')[-800:]}")
    return digest.hexdigest()


def row_counts(cfg: SiteBackup) -> dict[str, int]:
    """Rows per base table of the live database, in one client call."""
    db = cfg.database.name
    names = objects(cfg, db)["tables"]
    if not names:
        return {}
    sql = "".join(f"SELECT '{name}', COUNT(*) FROM {ident(name)};\n" for name in names)
    counts = {}
    for line in _mariadb(cfg, sql, db).splitlines():
        name, _, count = line.partition("\t")
        if count.strip().isdigit():
            counts[name] = int(count)
    return counts
