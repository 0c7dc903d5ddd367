"""Owners by name (step 6 of backup/restore.py): restic restores numeric ids, so on a host
whose users and groups have other ids (a re-created one) each restored file gets the owner it
had BY NAME, read from the snapshot's own /etc/passwd and /etc/group."""
from __future__ import annotations

import os
from pathlib import Path

from backup.config import SiteBackup


def stage_ids(cfg: SiteBackup, repo_tier: str, snapshot_id: str, stage: Path) -> None:
    """The snapshot's /etc/passwd and /etc/group under `stage` (for remap_owners)."""
    cfg.restic.run(cfg.restic.restore_argv(cfg.repo(repo_tier), snapshot_id, str(stage),
                                           ["/etc/passwd", "/etc/group"]),
                   f"restore the backup's users and groups from {repo_tier}")


def _id_maps(stage: Path) -> tuple[dict[int, int], dict[int, int]]:
    """old id -> this host's id, for names whose ids differ (users, then groups)."""
    maps: list[dict[int, int]] = []
    for table in ("passwd", "group"):
        old: dict[str, int] = {}
        try:
            text = (stage / "etc" / table).read_text()
        except OSError:
            maps.append({})
            continue
        for line in text.splitlines():
            fields = line.split(":")
            if len(fields) > 2 and fields[2].isdigit():
                old[fields[0]] = int(fields[2])
        live = {}
        for line in Path(f"/etc/{table}").read_text().splitlines():
            fields = line.split(":")
            if len(fields) > 2 and fields[2].isdigit():
                live[fields[0]] = int(fields[2])
        maps.append({old[n]: live[n] for n in old if n in live and live[n] != old[n]})
    return maps[0], maps[1]


def remap_owners(paths: list[str], stage: Path) -> int:
    """restic restores numeric ids: give each file the owner it had BY NAME (fresh hosts)."""
    uids, gids = _id_maps(stage)
    if not uids and not gids:
        return 0
    changed = 0
    for top in paths:
        for root, dirs, files in os.walk(top):
            for name in [*dirs, *files, ""] if root == top else [*dirs, *files]:
                path = os.path.join(root, name) if name else root
                st = os.lstat(path)
                uid, gid = uids.get(st.st_uid, st.st_uid), gids.get(st.st_gid, st.st_gid)
                if (uid, gid) != (st.st_uid, st.st_gid):
                    os.lchown(path, uid, gid)
                    changed += 1
    return changed
