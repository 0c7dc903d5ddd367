"""Repository keys, from the trusted side of a storage server (issue 19; R-INC-1, R-GDPR-9).

    python3 -m backup.rekey --site NAME --new-password-file FILE [--config PATH]

A compromised web host knows its repository password and can `restic key add` through its
append-only access (the server accepts new key files): a key that survives a rebuild. `fab
backup.contain` runs this module as the site's storage user on A and B: it adds a key with the
new password (opening the repository with the current one), then, opening it with the NEW
password, removes every other key (the old one and any key the host added), and records the
one key left in <state_dir>/keys.json. It prints {"added": ID, "removed": [IDs]} as JSON.
A failure before the removal leaves both passwords working (nothing lost); the caller installs
the new password file only after this succeeded.

`known_keys`/`unexpected_keys` are what the nightly rotation uses to report keys nobody added
(backup.rotate): the first rotation after `fab backup.setup` records the repository's keys
(the one the setup's `restic init` made), later ones report any other.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backup.restic import Repo, Restic, ResticError
from backup.storage_site import StorageSite, command_line
from backup.trusted import locks_of, remove_locks

KEYS_FILE = "keys.json"


def key_list(restic: Restic, repo: Repo) -> list[dict[str, Any]]:
    proc = restic.run(restic.key_argv(repo, "list", "--json"), f"list the keys of {repo.tier}",
                      timeout=300)
    return json.loads(proc.stdout or "[]") or []


def rekey(cfg: StorageSite, new_password_file: str, drop_locks_of: str = "") -> dict[str, Any]:
    restic = replace(cfg.restic, retry_lock="5m")  # a rotation may hold the lock a while
    old_repo = cfg.repo
    dropped = []
    if drop_locks_of:
        # The contained host's sessions are over (its identity revoked, its server processes
        # ended): a lock it left would block the key changes for ever.
        dropped = remove_locks(old_repo, locks_of(old_repo, restic, drop_locks_of))
    new_repo = replace(old_repo, password_file=new_password_file)
    restic.run(restic.key_argv(old_repo, "add", "--new-password-file", new_password_file),
               f"add the new key to {cfg.tier}", timeout=300)
    keys = key_list(restic, new_repo)
    current = [k["id"] for k in keys if k.get("current")]
    if len(current) != 1:
        raise ResticError(f"find the new key of {cfg.tier}", 1,
                          f"{len(current)} keys open with the new password")
    # What is about to go, kept beside the state for the incident's analysis (root and the
    # storage user only): the key files are small, and hold no password.
    saved = Path(cfg.state_dir) / f"keys-removed-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    saved.mkdir(mode=0o700, parents=True, exist_ok=True)
    for key in keys:
        if key["id"] != current[0] and (Path(cfg.repo.location) / "keys" / key["id"]).is_file():
            shutil.copy2(Path(cfg.repo.location) / "keys" / key["id"], saved / key["id"])
    removed = []
    for key in keys:
        if key["id"] != current[0]:
            restic.run(restic.key_argv(new_repo, "remove", key["id"]),
                       f"remove key {key['id'][:8]} of {cfg.tier}", timeout=300)
            removed.append(key["id"])
    record_keys(cfg, [current[0]])
    return {"added": current[0], "removed": removed, "saved": str(saved),
            "locks_dropped": dropped}


def record_keys(cfg: StorageSite, ids: Sequence[str]) -> None:
    path = Path(cfg.state_dir) / KEYS_FILE
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({"known": sorted(ids)}) + "\n")
    tmp.replace(path)


def known_keys(cfg: StorageSite) -> list[str] | None:
    try:
        return list(json.loads((Path(cfg.state_dir) / KEYS_FILE).read_text())["known"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def unexpected_keys(cfg: StorageSite) -> tuple[list[str], bool]:
    """(ids of keys nobody recorded, whether this call recorded the keys for the first time)."""
    ids = [k["id"] for k in key_list(cfg.restic, cfg.repo)]
    known = known_keys(cfg)
    if known is None:
        record_keys(cfg, ids)
        return [], True
    return [i for i in ids if i not in known], False


def main(argv: Sequence[str] | None = None) -> int:
    def more(p: argparse.ArgumentParser) -> None:
        p.add_argument("--new-password-file", required=True)
        p.add_argument("--drop-locks-of", default="",
                       help="remove the locks this (contained) host left in the repository")

    args, cfg = command_line("backup.rekey", argv, more)
    if cfg is None:
        return 2
    try:
        result = rekey(cfg, args.new_password_file, args.drop_locks_of)
    except (ResticError, OSError, ValueError) as error:
        print(f"rekey {cfg.site} on {cfg.tier}: FAILED: {error}", file=sys.stderr)
        return 4
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
