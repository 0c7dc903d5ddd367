"""What a night's backup records for its restore (stdlib only).

  the dump's sha256     since issue 11, in the dump itself: its last line,
                        `-- dump-sha256 <hex>` (backup.dumpsum.trailer_line), written by
                        dumpsum.py after the dump exited 0 and read back by the restore
                        (dumpsum.copy_hashing_body) while it streams the dump into the client.
                        So the dump and the files snapshots are taken at once (backup.run).
  dump-sha256=<64 hex>  the same sha256 as a tag of the files snapshot: how older backups
                        recorded it (the files then had to wait for the dump). New nightly
                        backups no longer write it; the restore still reads it for snapshots
                        whose dump has no trailer. Snapshots with neither (older still) are
                        verified the old way: a re-dump of the restored database must have the
                        streamed dump's sha256.
  ids-sha256=<16 hex>   a tag of the files snapshot: a digest of the host's user and group
                        names and ids (/etc/passwd, /etc/group) when the backup ran. A restore
                        onto a host whose digest is the same needs no owner remapping, so it
                        does not restore the snapshot's /etc/passwd and /etc/group beside the
                        live ones to compare them.

Tags, not files: the restore reads them from the listing it makes anyway (no extra restic
command, each of which costs a key derivation), `restic copy` carries them to A and B, and
a snapshot's tags cannot change without changing its id.

The listing of the local repository is kept in the state directory too (LISTING_FILE): the
runner decides the weekly/monthly tags and the rotation from it, and the restore from local
chooses its backup from it, without `restic snapshots`. It is used only while it names
exactly the snapshot files of the repository directory (a snapshot's file name is the
sha256 of its content, so the same names mean the same snapshots); otherwise restic lists.
(restic's local backend keeps one file per snapshot in `snapshots/`, named by its id: the
repository layout of restic's design document, the same in every restic version.)
The runner takes the dump and the files snapshots at once, under its lock, and saves the
listing only after both ended: the listing it saves is the one it started from plus what it
kept (a snapshot withdrawn because its other half failed is forgotten and left out). If the
forget itself fails, the repository holds a snapshot the listing lacks, so the next run
lists with restic: the check never trusts a listing that differs.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

DUMP_SHA256 = "dump-sha256="
IDS_SHA256 = "ids-sha256="
# On a database snapshot: its dump ends with a trailer line (backup.dumpsum). Known before the
# dump starts, so it costs the parallel backup nothing; the restore then knows a stream that
# ends without a trailer was cut short, and refuses it before touching the live database.
DUMP_TRAILER = "dump-trailer=1"
RECORD_PREFIXES = (DUMP_SHA256, IDS_SHA256, DUMP_TRAILER)
LISTING_FILE = "local-snapshots.json"


def tag_value(snapshot: Mapping[str, Any], prefix: str) -> str | None:
    """The value of the snapshot's `prefix...` tag, None when it has none."""
    for tag in snapshot.get("tags") or ():
        if tag.startswith(prefix):
            return str(tag[len(prefix):])
    return None


def is_record(tag: str) -> bool:
    """A per-snapshot record (no category to count in status tables)."""
    return tag.startswith(RECORD_PREFIXES)


def dump_tag(sha256: str) -> str:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError(f"not a sha256: {sha256!r}")
    return f"{DUMP_SHA256}{sha256}"


def ids_digest(etc: Path = Path("/etc")) -> str | None:
    """Digest of the name -> id tables of users and groups; None if they cannot be read."""
    parts = []
    for table in ("passwd", "group"):
        try:
            text = (etc / table).read_text()
        except OSError:
            return None
        entries = set()
        for line in text.splitlines():
            fields = line.split(":")
            if len(fields) > 2 and fields[2].isdigit():
                entries.add(f"{fields[0]}:{fields[2]}")
        parts.append(table + "\n" + "\n".join(sorted(entries)))
    return hashlib.sha256("\n\n".join(parts).encode()).hexdigest()[:16]


def ids_tag(etc: Path = Path("/etc")) -> list[str]:
    digest = ids_digest(etc)
    return [] if digest is None else [f"{IDS_SHA256}{digest}"]


# --- the local repository's listing, kept between runs --------------------------------------


def _snapshot_names(location: str) -> set[str] | None:
    """The ids of the snapshots of a local repository directory, None if it is not one."""
    repo = Path(location)
    try:
        if not (repo / "config").is_file():
            return None
        return {n for n in os.listdir(repo / "snapshots") if len(n) == 64}
    except OSError:
        return None


def cached_listing(state_dir: str, location: str) -> list[dict[str, Any]] | None:
    """The kept listing of the repository at `location` if it is still exact, else None.

    A repository without any snapshot file lists as empty, kept listing or not (the first
    backup, a rebuilt host's new repository)."""
    names = _snapshot_names(location)
    if names is None:
        return None
    if not names:
        return []
    try:
        data = json.loads((Path(state_dir) / LISTING_FILE).read_text())
        if data.get("repository") != location:
            return None
        snapshots = data["snapshots"]
        ids = [s["id"] for s in snapshots]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if len(ids) != len(set(ids)) or set(ids) != names:
        return None
    return list(snapshots)


def save_listing(state_dir: str, location: str, snapshots: Iterable[Mapping[str, Any]]) -> None:
    """Keep the listing (after a run) for the next run; a failure only costs a listing."""
    keep = ("id", "time", "tags", "hostname", "original")
    data = {"repository": location,
            "snapshots": [{k: s[k] for k in keep if k in s} for s in snapshots]}
    path = Path(state_dir) / LISTING_FILE
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
