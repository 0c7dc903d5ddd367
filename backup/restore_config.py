"""The snapshot's host configuration (--stage-config, --apply-config of backup/restore.py):
restored beside the live one, compared, and only its restorable part put in place (never
secrets or ids of the backup's host: issue 11)."""
from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

from backup.config import SiteBackup
from backup.restore_db import CHUNK

# Host configuration a restore may put back (--apply-config). Never what belongs to the host
# it was taken on: its users' and groups' ids, secrets generated per host (database
# password, the private files' gocryptfs password, Drupal's hash salt and the settings file
# that carries them), the backup identity (not even in the backup), MariaDB's maintenance
# credentials. `fab deploy` writes those for THIS host; the restored ones would not match its
# encrypted private files, database users or certificates (issue 11).
NOT_RESTORABLE_CONFIG = (
    "/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/etc/subuid", "/etc/subgid",
    "/etc/hosting/*/db.cnf", "/etc/hosting/*/private.pass", "/etc/hosting/*/hash_salt",
    "/etc/hosting/*/settings.local.php", "/etc/hosting/backup/*", "/etc/hosting/backup-storage/*",
    "/etc/mysql/debian.cnf", "/etc/ssh/*", "*.key", "*.pem", "*password*", "*secret*",
)


def config_restorable(path: str) -> bool:
    """May --apply-config put this file of the snapshot in place (pure)?"""
    return not any(fnmatch.fnmatchcase(path, pattern) for pattern in NOT_RESTORABLE_CONFIG)


def staged_config(cfg: SiteBackup, repo_tier: str, snapshot_id: str, apply: bool
                  ) -> dict[str, Any]:
    """The snapshot's host configuration, restored beside the live one; differences listed."""
    includes = [p for p in cfg.paths if p.startswith("/etc/")]
    if not includes:
        # restic restore without --include would restore the whole snapshot.
        return {"staged_in": None, "differs_from_live": [], "applied": False}
    stage = Path(cfg.state_dir) / "restored-config" / snapshot_id[:8]
    stage.mkdir(parents=True, exist_ok=True)
    os.chmod(stage.parent, 0o700)
    cfg.restic.run(cfg.restic.restore_argv(cfg.repo(repo_tier), snapshot_id, str(stage),
                                           includes), f"restore config from {repo_tier}")
    differ = []
    for root, _dirs, files in os.walk(stage):
        for name in files:
            staged = Path(root) / name
            live = Path("/") / staged.relative_to(stage)
            if _differs(staged, live):
                differ.append(str(live))
    return {"staged_in": str(stage), "differs_from_live": sorted(differ), "applied": [],
            "not_restorable": sorted(p for p in differ if not config_restorable(p))}


def _differs(staged: Path, live: Path) -> bool:
    """A staged file against the live one: links by their target (a unit masked by a link to
    /dev/null is the same on both hosts), files by content."""
    if staged.is_symlink() or live.is_symlink():
        return not (staged.is_symlink() and live.is_symlink()
                    and os.readlink(staged) == os.readlink(live))
    return not live.is_file() or _sha(live) != _sha(staged)


def apply_config(staged: dict[str, Any]) -> list[str]:
    """The staged files that differ and are restorable, put in place (mode and owner kept)."""
    stage, applied = Path(staged["staged_in"]), []
    for live in staged["differs_from_live"]:
        if not config_restorable(live):
            continue
        source = stage / live.lstrip("/")
        os.makedirs(os.path.dirname(live), exist_ok=True)
        tmp = f"{live}.restore-tmp"
        shutil.copy2(source, tmp, follow_symlinks=False)
        st = os.lstat(source)
        os.lchown(tmp, st.st_uid, st.st_gid)
        os.replace(tmp, live)
        applied.append(live)
    return applied


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()
