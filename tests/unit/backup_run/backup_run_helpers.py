"""A site to back up in a temp directory, with REAL restic 0.18 repositories.

local: a directory; A and B: directories served by a real `rclone serve restic --stdio
--append-only`, reached through restic's rclone backend exactly as on the web host, except
that the program restic starts is a stand-in for `ssh` (a script that ignores the ssh
arguments and runs what the storage server's forced command runs). The database dump is a
script too (no MariaDB on this machine): it prints SQL, or fails half-way when told to.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
FETCH = HERE / "fetch-restic"
PASSWORD = "correct horse battery staple"  # test repositories only
RESTIC_COMMANDS = {"backup", "cat", "check", "copy", "dump", "forget", "init", "ls", "prune",
                   "restore", "snapshots", "tag", "unlock"}


def find_restic() -> str | None:
    """restic >= 0.17: $RESTIC_BIN, the fetch-restic cache, or PATH; fetched if missing."""
    candidates = [os.environ.get("RESTIC_BIN"), "/var/cache/hosting-restic/root/usr/bin/restic",
                  shutil.which("restic")]
    for c in candidates:
        if c and _recent(c):
            return c
    if os.environ.get("BACKUP_TESTS_NO_FETCH"):
        return None
    try:
        out = subprocess.run([str(FETCH)], capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired):
        return None
    path = out.stdout.strip().splitlines()[-1] if out.returncode == 0 and out.stdout else ""
    return path if path and _recent(path) else None


def _recent(binary: str) -> bool:
    try:
        out = subprocess.run([binary, "version"], capture_output=True, text=True, timeout=20)
    except OSError:
        return False
    parts = out.stdout.split()
    if len(parts) < 2 or parts[0] != "restic":
        return False
    major, minor = (int(x) for x in parts[1].split(".")[:2])
    return (major, minor) >= (0, 17)


FAKE_DUMP = """#!/bin/sh
# Stand-in for mariadb-dump: checks the option-file argument, prints SQL from $DUMP_SOURCE;
# with $DUMP_FAIL_AFTER set, prints that many lines then dies like a dump cut by an error.
case "$1" in --defaults-extra-file=*) ;; *) echo "no option file first" >&2; exit 7;; esac
src="$(dirname "$0")/dump-source.sql"
# What the dump saw: the runner's tests check no secret reached its argv or environment.
{ echo "ARGV $*"; env; } > "$(dirname "$0")/dump-seen"
if [ -e "$(dirname "$0")/dump-fail" ]; then
    head -n 3 "$src"
    echo "mariadb-dump: Error 2013: Lost connection to server during query" >&2
    exit 2
fi
cat "$src"
"""

FAKE_SSH = """#!/bin/sh
# Stand-in for `ssh -F CONFIG ALIAS REMOTE`: ignores its arguments and runs what the storage
# server's sshd forces for the site's certificate principal.
if [ -e "{down}" ]; then
    echo "ssh: connect to host backup-{tier} port 22: No route to host" >&2
    exit 255
fi
if [ -e "{cut}" ]; then
    exec python3 "{relay}" "$(cat "{cut}")" rclone serve restic --config "" --stdio \
        --append-only "{repo}"
fi
exec rclone serve restic --config "" --stdio --append-only "{repo}"
"""

CUT_RELAY = """
# A connection that dies after LIMIT bytes from restic, as a dropped SSH session does: the
# server process is killed and both pipes close at once (restic sees EOF, not a stall).
import os, subprocess, sys
limit = int(sys.argv[1])
server = subprocess.Popen(sys.argv[2:], stdin=subprocess.PIPE)
sent = 0
while True:
    chunk = os.read(0, 65536)
    if not chunk:
        server.stdin.close()
        sys.exit(server.wait())
    sent += len(chunk)
    if sent > limit:
        server.kill()
        os._exit(255)
    server.stdin.write(chunk)
    server.stdin.flush()
"""


@dataclass
class Site:
    root: Path
    restic: str

    @property
    def config_path(self) -> Path:
        return self.root / "etc" / "site.json"

    def repo_dir(self, tier: str) -> Path:
        return self.root / "repos" / tier

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def code(self) -> Path:
        return self.root / "srv" / "code"

    @property
    def files(self) -> Path:
        return self.root / "srv" / "files"

    @property
    def logs(self) -> Path:
        return self.root / "srv" / "log"

    def tier_down(self, tier: str, down: bool = True) -> None:
        flag = self.root / "bin" / f"down-{tier}"
        if down:
            flag.touch()
        else:
            flag.unlink(missing_ok=True)

    def cut_transfer(self, tier: str, after_bytes: int | None) -> None:
        flag = self.root / "bin" / f"cut-{tier}"
        if after_bytes is None:
            flag.unlink(missing_ok=True)
        else:
            flag.write_text(str(after_bytes))

    def run(self, when: str, *args: str) -> subprocess.CompletedProcess[str]:
        """The runner, as cron starts it, for the backup time `when` (ISO with offset)."""
        return subprocess.run(
            [sys.executable, "-m", "backup.run", "--site", "demo", "--config",
             str(self.config_path), "--time", when, *args],
            capture_output=True, text=True, cwd=REPO, timeout=300)

    def rotate(self, tier: str, now: str, *args: str) -> subprocess.CompletedProcess[str]:
        """The storage server's rotation of `tier`."""
        return subprocess.run(
            [sys.executable, "-m", "backup.rotate", "--site", "demo", "--config",
             str(self.storage_config(tier)), "--now", now, *args],
            capture_output=True, text=True, cwd=REPO, timeout=300)

    def dump_fails(self, fail: bool = True) -> None:
        flag = self.root / "bin" / "dump-fail"
        if fail:
            flag.touch()
        else:
            flag.unlink(missing_ok=True)

    def config(self) -> dict:
        return json.loads(self.config_path.read_text())

    def restore(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The host-side restore, as `fab restore` starts it."""
        return subprocess.run(
            [sys.executable, "-m", "backup.restore", "--site", "demo", "--config",
             str(self.config_path), *args], capture_output=True, text=True, cwd=REPO,
            timeout=300)

    def log_restic(self) -> Path:
        """From now on the runner's restic logs each call's subcommand to the returned file
        (one line per call): what each operation costs in restic invocations."""
        log = self.root / "restic-calls"
        wrapper = self.root / "bin" / "restic-logged"
        commands = " ".join(sorted(RESTIC_COMMANDS))
        wrapper.write_text(f"""#!/bin/sh
for a in "$@"; do
    case " {commands} " in *" $a "*) echo "$a" >> {log}; break;; esac
done
exec {self.restic} "$@"
""")
        wrapper.chmod(0o755)
        cfg = self.config()
        cfg["restic"]["binary"] = str(wrapper)
        self.config_path.write_text(json.dumps(cfg, indent=2))
        return log

    def restic_calls(self) -> list[str]:
        """The subcommands logged since the last call (see log_restic), then a fresh log."""
        log = self.root / "restic-calls"
        calls = log.read_text().split() if log.exists() else []
        log.unlink(missing_ok=True)
        return calls

    def restic_cmd(self, tier: str, *args: str) -> subprocess.CompletedProcess[str]:
        """restic directly on a repository directory (as the storage server does)."""
        return subprocess.run(
            [self.restic, "--repo", str(self.repo_dir(tier)), "--password-file",
             str(self.root / "etc" / "password"), "--no-cache", *args],
            capture_output=True, text=True, timeout=120, env={**os.environ, "TZ": "UTC"})

    def snapshots(self, tier: str) -> list[dict]:
        proc = self.restic_cmd(tier, "--no-lock", "snapshots", "--json")
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout) or []

    def storage_config(self, tier: str) -> Path:
        data = {
            "site": "demo", "tier": tier, "host": "web-demo",
            "policy": self.config()["policy"],
            "restic": {"binary": self.restic},
            "repository": str(self.repo_dir(tier)),
            "password_file": str(self.root / "etc" / "password"),
            "state_dir": str(self.root / f"storage-{tier}"),
            "lock_file": str(self.root / f"storage-{tier}" / "rotate.lock"),
            # The tests replay up to nine nights before a rotation: each snapshot "arrives"
            # at the rotation's --now (backup.ledger), days after its own time.
            "expect": {"window_hours": 240},
        }
        path = self.root / "etc" / f"storage-{tier}.json"
        path.write_text(json.dumps(data))
        return path


def build_site(root: Path, restic: str) -> Site:
    """Directories, scripts and the runner's configuration; repositories not created."""
    site = Site(root, restic)
    for d in ("etc", "bin", "repos", "state", "srv/code", "srv/files/private", "srv/log",
              "cfg/nginx"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "etc" / "password").write_text(PASSWORD + "\n")
    os.chmod(root / "etc" / "password", 0o600)
    (root / "etc" / "db.cnf").write_text("[client]\nuser=demo\npassword=secret-db-pw\n")
    (root / "bin" / "dump-source.sql").write_text(
        "".join(f"INSERT INTO t VALUES ({i},'row {i}');\n" for i in range(200)))
    (root / "bin" / "cut-relay.py").write_text(CUT_RELAY)
    client = root / "bin" / "mariadb"
    # Stand-in for the mariadb client: schema queries answer nothing, a load is swallowed
    # (and kept, so tests can compare it with the dump).
    client.write_text(f'#!/bin/sh\nif [ "$2" = --batch ]; then cat >/dev/null; '
                      f'else cat > {root}/bin/loaded.sql; fi\n')
    client.chmod(0o755)
    dump = root / "bin" / "mariadb-dump"
    dump.write_text(FAKE_DUMP)
    dump.chmod(0o755)
    for tier in ("a", "b"):
        ssh = root / "bin" / f"ssh-{tier}"
        ssh.write_text(FAKE_SSH.format(down=root / "bin" / f"down-{tier}", tier=tier,
                                       cut=root / "bin" / f"cut-{tier}",
                                       relay=root / "bin" / "cut-relay.py",
                                       repo=site.repo_dir(tier)))
        ssh.chmod(0o755)
    (site.code / "index.php").write_text("<?php echo 'hello';\n")
    (site.files / "image.txt").write_text("public file\n")
    (site.files / "private" / "secret.txt").write_text("private file\n")
    (site.logs / "access.log").write_text("203.0.113.9 - - GET /\n")
    (root / "cfg" / "nginx" / "site.conf").write_text("server { listen 80; }\n")
    cfg = {
        "site": "demo",
        "host": "web-demo",
        "policy": {"timezone": "Europe/Paris", "weekly_day": "sunday", "local_keep_days": 7,
                   "a_keep_days": 14, "weekly_keep_days": 35, "monthly_keep_days": 365},
        "restic": {"binary": restic},
        "password_file": str(root / "etc" / "password"),
        "repositories": {
            "local": {"location": str(site.repo_dir("local"))},
            "a": {"location": "rclone:demo", "ssh_alias": "backup-a",
                  "ssh_config": str(root / "etc" / "ssh_config"),
                  "ssh_program": str(root / "bin" / "ssh-a")},
            "b": {"location": "rclone:demo", "ssh_alias": "backup-b",
                  "ssh_config": str(root / "etc" / "ssh_config"),
                  "ssh_program": str(root / "bin" / "ssh-b")},
        },
        "database": {"name": "demo", "option_file": str(root / "etc" / "db.cnf"),
                     "dump_program": str(dump), "client_program": str(root / "bin" / "mariadb")},
        "restore": {"root": str(root / "srv"), "subpaths": ["code", "files"], "stop_units": []},
        "paths": [str(root / "srv"), str(root / "cfg")],
        "excludes": [str(site.logs)],
        "state_dir": str(site.state_dir),
        "lock_file": str(site.state_dir / "lock"),
    }
    site.config_path.write_text(json.dumps(cfg, indent=2))
    return site
