"""The database half of a restore (backup.restore step 3 and 4): the site's database emptied,
the snapshot's dump streamed into the client as root over the socket and hashed on the way,
then verified: against the sha256 recorded at backup time, or by a re-dump made exactly as the
backup makes it. Standard library only (runs on the hosts)."""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
from typing import Any

from backup.config import SiteBackup
from backup.dumpsum import copy_hashing, enlarge_pipe

CHUNK = 1 << 20


class RestoreError(RuntimeError):
    pass


def _mariadb(cfg: SiteBackup, sql: str, database: str | None = None) -> str:
    argv = [cfg.database.client_program, "--protocol=socket", "--batch", "--skip-column-names"]
    if database:
        argv.append(database)
    proc = subprocess.run(argv, input=sql, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RestoreError(f"mariadb: {proc.stderr.strip()[-1000:]}")
    return proc.stdout


def _ident(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise RestoreError(f"unsafe SQL identifier {name!r}")
    return f"`{name}`"


def restore_database(cfg: SiteBackup, repo_tier: str, snapshot_id: str) -> dict[str, Any]:
    db = cfg.database.name
    # A broken site may have lost its database altogether; grants survive DROP DATABASE.
    _mariadb(cfg, f"CREATE DATABASE IF NOT EXISTS {_ident(db)} CHARACTER SET utf8mb4 "
                  "COLLATE utf8mb4_general_ci;")
    tables = _mariadb(cfg, "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES "
                           f"WHERE TABLE_SCHEMA='{db}';").splitlines()
    drops = ["SET FOREIGN_KEY_CHECKS=0;"]
    for line in tables:
        name, _, kind = line.partition("\t")
        drops.append(f"DROP {'VIEW' if kind == 'VIEW' else 'TABLE'} IF EXISTS {_ident(name)};")
    _mariadb(cfg, "\n".join(drops) + "\n", db)
    argv = cfg.restic.dump_argv(cfg.repo(repo_tier), snapshot_id, cfg.dump_path)
    sha256, size = stream_hashing(argv, cfg.restic.environment(),
                                  [cfg.database.client_program, "--protocol=socket", db])
    return {"bytes": size, "sha256": sha256}


def stream_hashing(source: list[str], source_env: dict[str, str], sink: list[str]
                   ) -> tuple[str, int]:
    """`source | sink`, hashing what passes: (sha256, bytes). Raises RestoreError naming the
    side that failed (the sink first: a client that stops reading makes the source fail too).

    The copy is a loop over raw pipe descriptors of 1 MiB (no buffered objects in between),
    each chunk written before it is hashed; hashlib releases the GIL while it hashes."""
    with tempfile.TemporaryFile() as source_err, tempfile.TemporaryFile() as sink_err:
        producer = subprocess.Popen(source, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=source_err, env=source_env)
        consumer = subprocess.Popen(sink, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                    stderr=sink_err)
        assert producer.stdout is not None and consumer.stdin is not None
        in_fd, out_fd = producer.stdout.fileno(), consumer.stdin.fileno()
        enlarge_pipe(in_fd)
        enlarge_pipe(out_fd)
        sha256, size, broken = "", 0, False
        try:
            sha256, size = copy_hashing(in_fd, out_fd)
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
        if consumed != 0 or broken:
            sink_err.seek(0)
            raise RestoreError(f"loading the dump failed (exit {consumed}): "
                               f"{sink_err.read().decode(errors='replace').strip()[-1000:]}")
        if produced != 0:
            source_err.seek(0)
            raise RestoreError(f"restic dump failed (exit {produced}): "
                               f"{source_err.read().decode(errors='replace').strip()[-1000:]}")
    return sha256, size


def redump_sha256(cfg: SiteBackup) -> str:
    """sha256 of a new dump of the database, made exactly as the backup makes it (hashed as it
    comes: a large database is never held in memory)."""
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
    """Rows per base table, in one client call."""
    db = cfg.database.name
    names = _mariadb(cfg, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE "
                          f"TABLE_SCHEMA='{db}' AND TABLE_TYPE='BASE TABLE';").split()
    if not names:
        return {}
    sql = "".join(f"SELECT '{name}', COUNT(*) FROM {_ident(name)};\n" for name in names)
    counts = {}
    for line in _mariadb(cfg, sql, db).splitlines():
        name, _, count = line.partition("\t")
        if count.strip().isdigit():
            counts[name] = int(count)
    return counts


def verify_database(cfg: SiteBackup, streamed: dict[str, Any], recorded: str | None,
                    redump: bool = False) -> dict[str, Any]:
    """Does the restored database hold the snapshot's dump? See the module's step 4."""
    result: dict[str, Any] = {"streamed_sha256": streamed["sha256"]}
    matches = True
    if recorded is not None:
        result["method"] = "sha256 recorded at backup time"
        result["recorded_sha256"] = recorded
        matches = streamed["sha256"] == recorded
    if recorded is None or redump:
        if recorded is None:
            result["method"] = "re-dump (no sha256 recorded at backup time)"
        actual = redump_sha256(cfg)
        result["dump_sha256"] = actual
        matches = matches and actual == (recorded or streamed["sha256"])
    result["matches_snapshot"] = matches
    result["row_counts"] = row_counts(cfg)
    return result
