"""Secrets a web host makes for its own backups, behind a read-only check (the deploy engine's
Check primitive, engine/primitives/check.py).

    python3 -m backup.hostsetup secrets --site NAME [--check]

  password   <dir>/<site>.password: the restic repositories' password (local, A, B share it:
             `restic copy` then needs no second secret). 32 random bytes, base64; root 0600.
             Generated here, never on the admin's machine, and never printed. The deploy copies
             it to the storage servers, which prune and check (docs/backups.md, trust model).
  ssh key    <dir>/<site>.id_ed25519: the host's backup identity; only its public half leaves
             the host, to be signed by the user CA as principal backup-<site> (R-BKP-7).

--check changes nothing: it exits 0 when both exist with safe modes, else prints what is
missing and exits WOULD_CHANGE (3): the engine then runs the same command without --check.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import stat
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

DEFAULT_DIR = "/etc/hosting/backup"
WOULD_CHANGE = 3  # the deploy agent's (onhost/agent.py): "not in state, run the fix"


def paths(directory: str, site: str) -> dict[str, Path]:
    d = Path(directory)
    return {"password": d / f"{site}.password", "key": d / f"{site}.id_ed25519",
            "pub": d / f"{site}.id_ed25519.pub"}


def problems(directory: str, site: str) -> list[str]:
    out = []
    p = paths(directory, site)
    for name in ("password", "key"):
        path = p[name]
        try:
            st = path.stat()
        except FileNotFoundError:
            out.append(f"{path} missing")
            continue
        if stat.S_IMODE(st.st_mode) & 0o077 or st.st_uid != 0:
            out.append(f"{path} must be root-only (0600)")
        if st.st_size == 0:
            out.append(f"{path} is empty")
    if not p["pub"].exists():
        out.append(f"{p['pub']} missing")
    return out


def ensure(directory: str, site: str) -> list[str]:
    """Create what is missing, fix modes; never replace an existing secret (the repositories
    were encrypted with it, and the certificate names the key)."""
    done = []
    d = Path(directory)
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    p = paths(directory, site)
    if not p["password"].exists():
        fd = os.open(p["password"], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
        done.append(f"generated {p['password']}")
    if not p["key"].exists():
        # -N '': the key must work unattended under cron; its file is root-only.
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
                        f"backup-{site}@{os.uname().nodename}", "-f", str(p["key"])],
                       check=True, capture_output=True, stdin=subprocess.DEVNULL)
        done.append(f"generated {p['key']}")
    elif not p["pub"].exists():
        pub = subprocess.run(["ssh-keygen", "-y", "-f", str(p["key"])], check=True,
                             capture_output=True, text=True).stdout
        p["pub"].write_text(pub)
    for name in ("password", "key"):
        os.chown(p[name], 0, 0)
        os.chmod(p[name], 0o600)
    return done


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m backup.hostsetup")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("secrets")
    s.add_argument("--site", required=True)
    s.add_argument("--dir", default=DEFAULT_DIR)
    s.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    if args.check:
        found = problems(args.dir, args.site)
        if found:
            print("; ".join(found))
            return WOULD_CHANGE
        return 0
    for line in ensure(args.dir, args.site) or ["nothing to do"]:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
