"""The storage server's forced command for a site's backup certificate (R-BKP-7, R-GDPR-4).

    python3 -m backup.serve --site NAME [--config PATH]

sshd runs it, whatever the client asked, for the principal backup-<site> (the certificate's
force-command and the storage server's principals file say the same, docs/backups.md). It is
`rclone serve restic --stdio --append-only <the site's repository>` behind a SPACE LIMIT: one
site's web host, compromised or not, cannot fill the storage server and stop the other site's
backups (issue 19).

Why a limit in the forced command, not a file-system quota: the same code then holds on OVH's
block volumes (whatever their file system and mount options) and in the lab (a plain directory
on the container's file system, where quotas cannot be switched on), and a quota would also
count what the trusted rotation writes while it prunes. How it holds:
  * the session's upload is counted as it arrives (the restic REST protocol over stdio: what
    the client sends is its requests and the files it adds); the server stops the session as
    soon as the repository's size at the start plus what arrived passes the limit, plus a
    small allowance for the requests themselves (`request_allowance_mb`, 64) so that a site
    over its limit can still be listed and restored from;
  * one session per site at a time (a lock in the state directory, waited for): parallel
    sessions cannot each spend the room left;
  * a refusal is recorded (<state_dir>/quota.json) for the status, the metrics and the
    alert; the client's restic fails, so its run fails and says so.
A file cut short by the stop is an unreferenced pack: the next `restic prune` of the rotation
removes it. The limit is per site per storage server; the model sets it (docs/backups.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from backup.lock import LockHeld, exclusive
from backup.status import directory_size
from backup.storage_site import StorageSite, command_line

RCLONE = "/usr/bin/rclone"
CHUNK = 1 << 16
QUOTA_FILE = "quota.json"
SESSION_WAIT = 900  # seconds a second session waits for the first


def server_argv(cfg: StorageSite, rclone: str = RCLONE) -> list[str]:
    return [rclone, "serve", "restic", "--config", "/dev/null", "--stdio", "--append-only",
            cfg.repo.location]


def record_refusal(cfg: StorageSite, used: int, received: int) -> None:
    path = Path(cfg.state_dir) / QUOTA_FILE
    doc = {"time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "used_bytes": used,
           "received_bytes": received, "quota_bytes": cfg.quota_bytes}
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc) + "\n")
    tmp.replace(path)


def pump(source: int, child: subprocess.Popen[bytes], budget: int | None) -> int:
    """Copy `source` to the child's stdin until EOF; returns the bytes copied, or -1 once
    more than `budget` arrived (the child is then stopped)."""
    assert child.stdin is not None
    total = 0
    while True:
        data = os.read(source, CHUNK)
        if not data:
            child.stdin.close()
            return total
        total += len(data)
        if budget is not None and total > budget:
            child.kill()
            return -1
        try:
            child.stdin.write(data)
            child.stdin.flush()
        except BrokenPipeError:
            return total


def serve(cfg: StorageSite, stdin: int = 0, rclone: str = RCLONE) -> int:
    used = directory_size(cfg.repo.location) if cfg.quota_bytes is not None else 0
    budget = None if cfg.quota_bytes is None else max(cfg.quota_bytes - used, 0) + \
        cfg.request_allowance
    # stdout and stderr go straight to sshd: only what the client sends is counted.
    child = subprocess.Popen(server_argv(cfg, rclone), stdin=subprocess.PIPE)
    received = pump(stdin, child, budget)
    code = child.wait()
    if received < 0:
        record_refusal(cfg, used, budget or 0)
        print(f"backup.serve {cfg.site}: REFUSED: the repository holds {used} bytes of its "
              f"{cfg.quota_bytes}-byte limit on this storage server; session stopped",
              file=sys.stderr)
        return 1
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args, cfg = command_line("backup.serve", argv, lambda p: p.add_argument(
        "--rclone", default=RCLONE, help=argparse.SUPPRESS))  # tests
    if cfg is None:
        return 2
    try:
        with exclusive(Path(cfg.state_dir) / "serve.lock", f"backup session of {cfg.site}",
                       wait=SESSION_WAIT):
            return serve(cfg, rclone=args.rclone)
    except LockHeld as error:
        print(f"backup.serve {cfg.site}: {error}", file=sys.stderr)
        return 75


if __name__ == "__main__":
    sys.exit(main())
