"""Export one site's data as ONE archive, encrypted to the client's age key (R-DATA-1, R-GDPR-*).

    python3 -m backup.export --site NAME [--config PATH] [--from local|a|b]
                             [--at DATE|TIME | --snapshot ID [--snapshot ID]]
                             (--recipient AGE_PUBLIC_KEY | --plain)

Run as root on the site's web host (`fab export` starts it over SSH and reads its stdout):
1. the consistent point: by default a FRESH backup of the site, taken now into the local
   repository exactly as the nightly run takes it (backup.run, without the off-site copies);
   else, with --at or --snapshot, the chosen night's database and files pair (as `backup.restore`
   chooses it, backup.restore_choose). The site's backup lock is held for the whole export, so
   no rotation forgets the pair while it is read;
2. the archive, a tar (POSIX pax) written straight to stdout, never to disk:
     database/<site>.sql       the dump of the database snapshot (`restic dump`)
     files/public/...          the public files of the files snapshot
     files/private/...         the private files: the backup holds the plaintext view of the
                               gocryptfs mount, so they come out decrypted (R-GDPR-1 protects
                               them at rest on the host; the age encryption protects the export)
     manifest.json             last: the site, both snapshot ids and times, when, and for every
                               member its name, type, size and sha256
   Each member is streamed from `restic dump --archive tar` and hashed on the way; the dump's
   body is checked against the sha256 recorded at backup time (its trailer line, or the files
   snapshot's dump-sha256 tag): a corrupt dump fails the export;
3. unless --plain, the tar goes through `age -r RECIPIENT` (Debian's age tool) before it
   leaves this process: only ciphertext reaches stdout. The recipient is a public key (no
   secret in argv). On ANY failure age is killed before it can finish its stream (a cut
   ciphertext never decrypts as a whole archive), a message names every error on stderr and
   the exit code is non-zero; the caller throws the partial output away.

Nothing is written to disk but the fresh backup itself (the runner's own repository, status
and run record). Exit codes: 0 ok; 1 failed; 2 bad usage or configuration; 75 the site's
backup lock is held. Standard library only (runs on the hosts).
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from backup import config as config_mod
from backup.config import ConfigError, SiteBackup
from backup.dumpsum import TRAILER_LEN, enlarge_pipe, parse_trailer
from backup.lock import LockHeld, exclusive
from backup.records import DUMP_SHA256, DUMP_TRAILER, tag_value
from backup.restic import ResticError
from backup.restore_choose import choose, parse_at
from backup.restore_db import RestoreError
from backup.snapshots import parse_restic_time

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_LOCKED = 0, 1, 2, 75
FORMAT = "hosting-export/1"
MANIFEST = "manifest.json"
CHUNK = 1 << 20
AGE = "age"
# An age X25519 recipient: "age1" + 58 bech32 characters (Bech32 excludes 1, b, i, o).
AGE_RECIPIENT = re.compile(r"age1[02-9ac-hj-np-z]{58}")


class ExportError(RuntimeError):
    pass


def check_recipient(recipient: str) -> str:
    """The age public key the archive is encrypted to, or ExportError naming --recipient."""
    value = recipient.strip()
    if not AGE_RECIPIENT.fullmatch(value):
        shown = value if value.startswith("age1") and len(value) < 80 else "(not shown)"
        raise ExportError(f"--recipient {shown}: not an age public key (age1 followed by 58 "
                          "lowercase bech32 characters, as `age-keygen -y` prints); an "
                          "AGE-SECRET-KEY must never be given")
    return value


def data_parts(cfg: SiteBackup) -> dict[str, str]:
    """{archive folder: path in the files snapshot} of the site's data (roles/web/layout.py:
    public files under shared/files, the private files' plaintext view under private)."""
    if not cfg.restore_root:
        raise ExportError("the runner's configuration has no restore.root: cannot tell where "
                          "the site's files are")
    private = cfg.required_mounts[0] if cfg.required_mounts else f"{cfg.restore_root}/private"
    return {"files/public": f"{cfg.restore_root}/shared/files", "files/private": private}


class BodyHash:
    """sha256 of a dump without its trailer line (backup.dumpsum), and what the trailer says."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.held = b""

    def update(self, data: bytes) -> None:
        buf = self.held + data
        if len(buf) > TRAILER_LEN:
            self.digest.update(buf[:-TRAILER_LEN])
            buf = buf[-TRAILER_LEN:]
        self.held = buf

    def result(self) -> tuple[str, str | None]:
        trailer = parse_trailer(self.held)
        digest = self.digest.copy()
        if trailer is None:
            digest.update(self.held)
        return digest.hexdigest(), trailer


class HashingReader(io.RawIOBase):
    """A member's content as tarfile.addfile reads it, hashed (and counted) on the way."""

    def __init__(self, source: IO[bytes], body: BodyHash | None = None) -> None:
        self.source = source
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.body = body

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        if data:
            self.sha256.update(data)
            self.size += len(data)
            if self.body is not None:
                self.body.update(data)
        return data


@dataclass
class Manifest:
    site: str
    host: str
    source: str
    snapshots: dict[str, dict[str, str]]
    fresh_backup: bool
    members: list[dict[str, Any]] = field(default_factory=list)
    database: dict[str, Any] = field(default_factory=dict)

    def as_dict(self, created: str) -> dict[str, Any]:
        return {"format": FORMAT, "site": self.site, "host": self.host, "created": created,
                "source": self.source, "fresh_backup": self.fresh_backup,
                "snapshots": self.snapshots, "database": self.database,
                "members": self.members}


def rename(name: str, prefix: str, folder: str) -> str | None:
    """The archive name of a member restic dumped as `name` (the snapshot path without its
    leading slash); None for what lies outside `prefix` (restic's parent entries)."""
    base = prefix.strip("/")
    if base and name.rstrip("/") == base:
        return folder
    if base and not name.startswith(base + "/"):
        return None
    rest = name[len(base) + 1:] if base else name
    if not rest or rest.startswith("/") or ".." in rest.split("/"):
        raise ExportError(f"unexpected member {name!r} in the dump of {prefix}")
    return f"{folder}/{rest}"


def copy_members(source: IO[bytes], out: tarfile.TarFile, prefix: str, folder: str,
                 manifest: Manifest, body: BodyHash | None = None) -> int:
    """Every member of restic's tar stream of `prefix`, renamed under `folder`, into `out`;
    regular files hashed into the manifest. Returns the number of regular files."""
    files = 0
    with tarfile.open(fileobj=source, mode="r|") as stream:
        for member in stream:
            name = rename(member.name, prefix, folder)
            if name is None:
                continue
            info = tarfile.TarInfo(name)
            for attr in ("mode", "mtime", "type", "linkname", "uname", "gname", "uid", "gid"):
                setattr(info, attr, getattr(member, attr))
            info.size = member.size if member.isreg() else 0
            entry: dict[str, Any] = {"name": name, "type": _kind(member)}
            if member.isreg():
                content = stream.extractfile(member)
                assert content is not None
                reader = HashingReader(content, body)
                out.addfile(info, reader)
                if reader.size != member.size:
                    raise ExportError(f"{name}: {reader.size} bytes read, {member.size} expected")
                entry.update(size=member.size, sha256=reader.sha256.hexdigest())
                files += 1
            elif member.islnk() or member.issym():
                entry["target"] = member.linkname
                out.addfile(info)
            elif member.isdir():
                out.addfile(info)
            else:
                continue  # devices, fifos: no site data
            manifest.members.append(entry)
    return files


def _kind(member: tarfile.TarInfo) -> str:
    return ("file" if member.isreg() else "dir" if member.isdir() else
            "symlink" if member.issym() else "hardlink" if member.islnk() else "other")


def dump_stream(cfg: SiteBackup, tier: str, snapshot_id: str, path: str, out: tarfile.TarFile,
                folder: str, manifest: Manifest, body: BodyHash | None = None) -> int:
    """`restic dump --archive tar SNAPSHOT PATH` into the archive; restic's failure named."""
    repo = cfg.repo(tier)
    argv = cfg.restic.dump_argv(repo, snapshot_id, path)  # ... dump -- ID PATH
    argv[-3:-3] = ["--archive", "tar"]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=err, env=cfg.restic.environment())
        assert proc.stdout is not None
        enlarge_pipe(proc.stdout.fileno())
        what = f"dump {path} of snapshot {snapshot_id[:8]} from {tier}"
        try:
            files = copy_members(proc.stdout, out, path, folder, manifest, body)
            proc.stdout.read()  # restic's end-of-archive blocks
        except (tarfile.TarError, ExportError, OSError) as error:
            # restic's own failure (nothing or half a stream came) says more than the tar's.
            proc.stdout.close()
            try:
                code = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
            if code != 0:
                err.seek(0)
                raise ResticError(what, code, err.read().decode(errors="replace")) from None
            raise ExportError(f"{what}: {error}") from None
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            proc.stdout.close()
        code = proc.wait()
        if code != 0:
            err.seek(0)
            raise ResticError(what, code, err.read().decode(errors="replace"))
    return files


def write_archive(cfg: SiteBackup, tier: str, db_snap: dict[str, Any],
                  files_snap: dict[str, Any], sink: IO[bytes], fresh: bool) -> dict[str, Any]:
    """Steps 2 (the tar, written to `sink`); returns the manifest written last."""
    manifest = Manifest(
        site=cfg.site, host=cfg.host, source=tier, fresh_backup=fresh,
        snapshots={kind: {"id": snap["id"], "time": snap["time"]}
                   for kind, snap in (("db", db_snap), ("files", files_snap))})
    parts = data_parts(cfg)
    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as out:
        body = BodyHash()
        # The database snapshot holds one file, /<site>.sql: dumped as a tar of "/".
        found = dump_stream(cfg, tier, db_snap["id"], "/", out, "database", manifest, body)
        names = [m["name"] for m in manifest.members if m["type"] == "file"]
        expected = f"database/{cfg.dump_filename}"
        if found != 1 or names != [expected]:
            raise ExportError(f"database snapshot {db_snap['id'][:8]} holds {names}, not "
                              f"{expected}")
        body_sha, trailer = body.result()
        recorded = trailer or tag_value(files_snap, DUMP_SHA256)
        if recorded is None and DUMP_TRAILER in (db_snap.get("tags") or ()):
            raise ExportError(f"the dump of snapshot {db_snap['id'][:8]} ends without its "
                              "trailer line: it was cut short")
        if recorded is not None and recorded != body_sha:
            raise ExportError(f"the dump of snapshot {db_snap['id'][:8]} differs from the sha256 "
                              f"recorded at backup time ({body_sha[:12]} read, {recorded[:12]} "
                              "recorded)")
        manifest.database = {"name": cfg.database.name, "member": expected,
                             "body_sha256": body_sha,
                             "recorded_sha256": recorded,
                             "matches_backup": None if recorded is None else True}
        for folder, path in parts.items():
            dump_stream(cfg, tier, files_snap["id"], path, out, folder, manifest)
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        document = json.dumps(manifest.as_dict(created), indent=2, sort_keys=True).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mode, info.mtime = len(document), 0o644, int(time.time())
        out.addfile(info, io.BytesIO(document))
    return manifest.as_dict(created)


def fresh_pair(cfg: SiteBackup) -> tuple[dict[str, Any], dict[str, Any]]:
    """Step 1 by default: a backup taken now, local only, recorded like any run (its status,
    run record and metrics: monitoring sees it). Its report goes to stderr, never into the
    archive on stdout."""
    from backup.run import report, run_backup  # the runner's own night, reused

    when = datetime.now(cfg.policy.zone).replace(microsecond=0)
    record = run_backup(cfg, when, offsite=False)
    with contextlib.redirect_stdout(sys.stderr):
        code = report(cfg, record)
    if record.facts.get("backup") != "ok":
        raise ExportError(f"the fresh backup failed (exit {code}): {'; '.join(record.errors)}")
    snapshots = cfg.restic.snapshots(cfg.local)
    db_snap, files_snap = choose(snapshots, cfg.host, when)
    if parse_restic_time(files_snap["time"]) != when:
        raise ExportError(f"the fresh backup of {when.isoformat()} is not in the local "
                          "repository's listing")
    return db_snap, files_snap


def export(cfg: SiteBackup, tier: str, at: datetime | None, snapshot: Sequence[str] | None,
           recipient: str | None, out_fd: int) -> dict[str, Any]:
    """Steps 1-3 (the caller holds the site's lock); returns the manifest."""
    fresh = at is None and not snapshot
    if fresh:
        if tier != "local":
            raise ExportError(f"--from {tier}: a fresh backup is taken into the local "
                              "repository; choose a backup with --at or --snapshot")
        db_snap, files_snap = fresh_pair(cfg)
    else:
        db_snap, files_snap = choose(cfg.restic.snapshots(cfg.repo(tier)), cfg.host, at,
                                     list(snapshot or ()) or None)
    print(f"export {cfg.site}: snapshots {db_snap['id'][:8]} (database) and "
          f"{files_snap['id'][:8]} (files) of {files_snap['time']} from {tier}"
          f"{' (fresh backup)' if fresh else ''}", file=sys.stderr)
    if recipient is None:
        with os.fdopen(os.dup(out_fd), "wb") as sink:
            return write_archive(cfg, tier, db_snap, files_snap, sink, fresh)
    with tempfile.TemporaryFile() as err:
        age = subprocess.Popen([AGE, "--encrypt", "--recipient", recipient],
                               stdin=subprocess.PIPE, stdout=out_fd, stderr=err)
        assert age.stdin is not None
        try:
            manifest = write_archive(cfg, tier, db_snap, files_snap, age.stdin, fresh)
        except BaseException:
            age.kill()  # before its stdin closes: age never writes the end of a cut stream
            age.wait()
            with contextlib.suppress(OSError):
                age.stdin.close()
            raise
        try:
            age.stdin.close()
        except BrokenPipeError:
            pass
        code = age.wait()
        if code != 0:
            err.seek(0)
            raise ExportError(f"age exited {code}: "
                              f"{err.read().decode(errors='replace').strip()[-500:]}")
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m backup.export",
                                description="One site's database and files as one archive, "
                                            "encrypted with age, on stdout.")
    p.add_argument("--site", required=True)
    p.add_argument("--config")
    p.add_argument("--from", dest="tier", choices=("local", "a", "b"), default="local")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--at", help="YYYY-MM-DD (end of that day) or an ISO time: the newest "
                                   "backup then; default: a fresh backup now")
    when.add_argument("--snapshot", action="append",
                      help="the pair one of whose ids starts with this (8+ hex digits); twice: "
                           "exactly that database and files pair")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--recipient", help="the age public key (age1...) to encrypt to")
    how.add_argument("--plain", action="store_true", help="no encryption (a warning is printed)")
    args = p.parse_args(argv)
    try:
        cfg = config_mod.load(args.config or config_mod.config_path(args.site))
        if cfg.site != args.site:
            raise ConfigError(f"the configuration is {cfg.site}'s, not {args.site}'s")
        at = parse_at(args.at, cfg.policy.zone) if args.at else None
        recipient = None if args.plain else check_recipient(args.recipient)
        data_parts(cfg)
        if args.tier != "local" and not (args.at or args.snapshot):
            raise ExportError(f"--from {args.tier}: a fresh backup is taken into the local "
                              "repository; choose a backup with --at or --snapshot")
    except (ConfigError, RestoreError, ExportError) as error:
        print(f"export {args.site}: {error}", file=sys.stderr)
        return EXIT_USAGE
    if os.isatty(1):
        print(f"export {args.site}: stdout is a terminal: redirect it to a file",
              file=sys.stderr)
        return EXIT_USAGE
    if args.plain:
        print(f"export {args.site}: WARNING: --plain: the archive is NOT encrypted; it holds "
              "the site's database and private files in clear", file=sys.stderr)
    t0 = time.monotonic()
    try:
        with exclusive(cfg.lock_file, f"backup or export of {cfg.site}"):
            manifest = export(cfg, args.tier, at, args.snapshot, recipient, 1)
    except LockHeld as error:
        print(f"export {cfg.site}: REFUSED: {error}", file=sys.stderr)
        return EXIT_LOCKED
    except (ExportError, ResticError, RestoreError, tarfile.TarError, OSError) as error:
        print(f"export {cfg.site}: FAILED: {error}; discard the partial output",
              file=sys.stderr)
        return EXIT_FAILED
    files = sum(1 for m in manifest["members"] if m["type"] == "file")
    size = sum(m.get("size", 0) for m in manifest["members"])
    print(f"export {cfg.site}: ok in {time.monotonic() - t0:.1f} s: {files} files, {size} bytes"
          f" before {'encryption' if recipient else 'NO encryption'}; snapshot "
          f"{manifest['snapshots']['files']['time']}", file=sys.stderr)
    print("manifest " + json.dumps({k: manifest[k] for k in ("site", "snapshots", "created")},
                                   sort_keys=True), file=sys.stderr)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
