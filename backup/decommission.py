"""Decommission ON THE HOSTS (issue 16, R-GDPR-8): delete one site's live data on its web host,
close its backup access on a storage server, and purge (now, or at their expiry) its backups.

    python3 -m backup.decommission web --site S --database D
    python3 -m backup.decommission storage --site S (--purge-now | --purge-at ISO)
    python3 -m backup.decommission purge-due [--now ISO]   # the storage server's daily timer

Run as root (sudo, over the project's SSH; `purge-due` by systemd on the storage server itself,
never by a web host: a web host can only append to its backups, R-BKP-7). Standard library only.

Every step is recorded (what, where, ok, detail) and every deletion is followed by a check that
looks again from scratch (the path is absent, no database of that name, no such user): the
admin side's report quotes both. A failed step does not stop the others (the host is going away:
what can be deleted is deleted) and the exit code is 1 with every error named; the data was
saved before (a final backup, or the client's export) by `fab decommission`.

Prints one JSON document on stdout: {"site", "mode", "steps": [...], "checks": [...],
"purge_at"?: ..., "ok": bool}. Exit 0 all ok; 1 a step or check failed; 2 bad usage.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SAFE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
PHP_VERSION = "8.4"  # roles/web/layout.py (the role pins it; Debian 13)
RUNNER_LAYOUT = {  # roles/backup/layout.py and roles/web/layout.py: the same paths
    "config_dir": "/etc/hosting/backup", "state_root": "/var/lib/hosting/backup",
    "cache_dir": "/var/cache/hosting/backup", "local_repos": "/var/backups/hosting",
    "storage_root": "/srv/backups", "storage_config": "/etc/hosting/backup-storage",
}
PRINCIPALS_DIR = "/etc/ssh/auth_principals"  # model/bootstrap.py
TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"
PURGE_DIR = f"{RUNNER_LAYOUT['storage_config']}/purge"  # <site>.json: when to purge
PURGED_DIR = f"{RUNNER_LAYOUT['state_root']}/purged"  # <site>.json: what was purged, when
# <site>.json on the web host: the site was decommissioned here, written before anything is
# deleted; roles/web refuses to set the site up again while it is there (a `fab deploy` run
# before the model loses the site would otherwise recreate it, empty).
TOMBSTONE_DIR = "/var/lib/hosting/decommissioned"

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def run_command(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
    return subprocess.run(list(argv), capture_output=True, text=True, env=env, timeout=600,
                          stdin=subprocess.DEVNULL, check=False)


@dataclass
class Record:
    """Steps and checks of one run, on one host."""
    site: str
    mode: str
    root: Path = Path("/")
    run: Runner = run_command
    steps: list[dict[str, Any]] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def p(self, path: str) -> Path:
        """A host path under this run's root (/ on a host; a directory in the unit tests)."""
        return self.root / path.lstrip("/")

    def step(self, what: str, where: str, ok: bool, detail: str = "") -> bool:
        self.steps.append({"what": what, "where": where, "ok": ok, "detail": detail[-400:]})
        return ok

    def check(self, what: str, ok: bool, detail: str = "") -> bool:
        self.checks.append({"what": what, "ok": ok, "detail": detail[-400:]})
        return ok

    def cmd(self, what: str, argv: Sequence[str], ok_codes: tuple[int, ...] = (0,)) -> bool:
        try:
            proc = self.run(argv)
        except (OSError, subprocess.SubprocessError) as exc:
            return self.step(what, " ".join(argv), False, str(exc))
        return self.step(what, " ".join(argv), proc.returncode in ok_codes,
                         "" if proc.returncode in ok_codes
                         else f"exit {proc.returncode}: {(proc.stderr or proc.stdout).strip()}")

    def remove(self, path: str) -> bool:
        """Delete a file or a tree (never across a mount point), then check it is gone."""
        target = self.p(path)
        if not (target.exists() or target.is_symlink()):
            self.step("absent already", path, True)
        elif target.is_dir() and not target.is_symlink():
            self.cmd("deleted", ["rm", "-rf", "--one-file-system", "--", str(target)])
        else:
            try:
                target.unlink()
                self.step("deleted", path, True)
            except OSError as exc:
                self.step("deleted", path, False, str(exc))
        gone = not (target.exists() or target.is_symlink())
        return self.check(f"{path} is absent", gone, "" if gone else "still there")

    def remove_glob(self, directory: str, pattern: str) -> None:
        base = self.p(directory)
        for found in sorted(base.glob(pattern)) if base.is_dir() else ():
            self.remove(f"{directory}/{found.name}")

    @property
    def ok(self) -> bool:
        return all(s["ok"] for s in self.steps) and all(c["ok"] for c in self.checks)

    def document(self) -> dict[str, Any]:
        return {"site": self.site, "mode": self.mode, "steps": self.steps,
                "checks": self.checks, **self.extra, "ok": self.ok}


# -- the web host ---------------------------------------------------------------------------------

def web_paths(site: str) -> list[str]:
    """Every place a site leaves data or configuration on its web host (roles/web/layout.py,
    roles/backup/layout.py, onhost/web/hw_dbsnap.py, the metrics textfiles)."""
    cfg, homes = RUNNER_LAYOUT["config_dir"], "/var/lib/hosting/web/home"
    return [
        f"/srv/{site}",  # code, public files, private files (plaintext view + private.enc)
        f"/etc/hosting/{site}",  # DB credentials, hash salt, private-files key, settings
        f"{homes}/{site}", f"{homes}/{site}-code",
        f"/var/lib/hosting/release-db/{site}",  # the database snapshots taken at releases
        f"{RUNNER_LAYOUT['local_repos']}/{site}",  # the local restic repository (R-BKP-1)
        f"{RUNNER_LAYOUT['state_root']}/{site}",
        *(f"{cfg}/{site}{suffix}" for suffix in (
            ".json", ".password", ".id_ed25519", ".id_ed25519.pub", ".id_ed25519-cert.pub",
            ".ssh_config")),
        RUNNER_LAYOUT["cache_dir"],  # restic's cache of the site's repositories
        f"/etc/php/{PHP_VERSION}/fpm/pool.d/{site}.conf",
        *(f"/etc/systemd/system/{unit}" for unit in web_units(site)),
        f"{TEXTFILE_DIR}/hosting_backup_{site}.prom", f"{TEXTFILE_DIR}/hosting_site_{site}.prom",
        f"/var/lib/hosting/maintenance/{site}",
    ]


def web_units(site: str) -> list[str]:
    return [f"hosting-cron-{site}.timer", f"hosting-cron-{site}.service",
            f"hosting-backup-{site}.timer", f"hosting-backup-{site}.service",
            f"hosting-private-{site}.service"]


def stop_units(rec: Record, units: list[str]) -> None:
    """Stopped (5: a unit not loaded is stopped) and disabled (a static unit has nothing to
    disable: tolerated), then each checked inactive."""
    rec.cmd("stopped", ["systemctl", "stop", *units], ok_codes=(0, 5))
    rec.cmd("disabled", ["systemctl", "disable", *units], ok_codes=(0, 1))
    for unit in units:
        active = rec.run(["systemctl", "is-active", "--quiet", unit]).returncode == 0
        rec.check(f"{unit} is not running", not active)


def mariadb(rec: Record, sql: str) -> subprocess.CompletedProcess[str]:
    return rec.run(["mariadb", "--protocol=socket", "-N", "-B", "-e", sql])


def drop_databases(rec: Record, site: str, database: str) -> None:
    """The site's database, its release side copies (`<db>_rollback`, `<db>_failed`, ...) and
    its MariaDB accounts."""
    listed = mariadb(rec, "SHOW DATABASES")
    if not rec.step("listed databases", "mariadb", listed.returncode == 0, listed.stderr):
        return
    ours = [d for d in listed.stdout.split() if d == database or d.startswith(database + "_")]
    for name in ours:
        rec.cmd(f"dropped database {name}", ["mariadb", "--protocol=socket", "-e",
                                              f"DROP DATABASE `{name}`"])
    users = mariadb(rec, f"SELECT CONCAT(User, '@', Host) FROM mysql.user WHERE User IN "
                         f"('{site}', '{site}-code')")
    if rec.step("listed accounts", "mariadb", users.returncode == 0, users.stderr):
        for account in users.stdout.split():
            user, host = account.split("@", 1)
            rec.cmd(f"dropped account {account}", ["mariadb", "--protocol=socket", "-e",
                                                    f"DROP USER '{user}'@'{host}'"])
    again = mariadb(rec, "SHOW DATABASES")
    left = [d for d in again.stdout.split() if d == database or d.startswith(database + "_")]
    rec.check(f"no database {database} or {database}_* in MariaDB",
              again.returncode == 0 and not left, again.stderr or ", ".join(left))
    again = mariadb(rec, f"SELECT COUNT(*) FROM mysql.user WHERE User IN ('{site}', "
                         f"'{site}-code')")
    rec.check(f"no MariaDB account {site}", again.returncode == 0 and
              again.stdout.strip() == "0", again.stderr or again.stdout.strip())


def write_tombstone(rec: Record) -> bool:
    path = rec.p(f"{TOMBSTONE_DIR}/{rec.site}.json")
    try:
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"site": rec.site, "decommissioned_at": datetime.now(UTC)
                                   .strftime("%Y-%m-%dT%H:%M:%SZ")}) + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        return rec.step("marked the site decommissioned", str(path), False, str(exc))
    return rec.step("marked the site decommissioned (fab deploy refuses to set it up again)",
                    f"{TOMBSTONE_DIR}/{rec.site}.json", True)


def decommission_web(rec: Record, database: str) -> None:
    site = rec.site
    # 0. First of all, so that a deploy during or after this never sets the site up again.
    if not write_tombstone(rec):
        return
    # 1. Nothing of the site runs any more: its timers (cron, backup), PHP, nginx (this VM
    # serves only this site), and the private files' mount (gocryptfs) is closed.
    units = [*web_units(site), f"php{PHP_VERSION}-fpm.service", "nginx.service"]
    stop_units(rec, units)
    private = f"/srv/{site}/private"
    if is_mounted(rec, private):
        rec.cmd("unmounted the private files", ["umount", str(rec.p(private))])
    rec.check(f"{private} is not mounted", not is_mounted(rec, private))
    # 2. The database, then the files, keys and configuration.
    drop_databases(rec, site, database)
    for path in web_paths(site):
        rec.remove(path)
    logs = "/var/log/nginx"  # this VM's own logs are this site's visitors' (IP addresses)
    rec.remove_glob(logs, "*")
    rec.remove_glob("/var/log", f"php{PHP_VERSION}-fpm.log*")
    # 3. The site's Unix users and group.
    for user in (f"{site}-code", site):
        if user_exists(rec, user):
            rec.cmd(f"deleted user {user}", ["userdel", user])
    if group_exists(rec, site):
        rec.cmd(f"deleted group {site}", ["groupdel", site])
    rec.cmd("reloaded systemd", ["systemctl", "daemon-reload"])
    for user in (site, f"{site}-code"):
        rec.check(f"no Unix user {user}", not user_exists(rec, user))
    rec.check(f"no Unix group {site}", not group_exists(rec, site))


def is_mounted(rec: Record, path: str) -> bool:
    target = str(rec.p(path)).rstrip("/")
    try:
        mounts = Path("/proc/mounts").read_text()
    except OSError:
        return False
    return any(line.split()[1] == target for line in mounts.splitlines() if line.strip())


def user_exists(rec: Record, name: str) -> bool:
    return rec.run(["getent", "passwd", name]).returncode == 0


def group_exists(rec: Record, name: str) -> bool:
    return rec.run(["getent", "group", name]).returncode == 0


# -- the storage servers ---------------------------------------------------------------------------

def storage_paths(site: str) -> list[str]:
    """Everything of a site on a storage server (roles/storage/role.py)."""
    conf, state = RUNNER_LAYOUT["storage_config"], RUNNER_LAYOUT["state_root"]
    unit = f"hosting-backup-rotate-{site}"
    return [f"{RUNNER_LAYOUT['storage_root']}/{site}",  # the repository and restic's cache
            f"{state}/storage-{site}", f"{conf}/{site}.password", f"{conf}/{site}.json",
            f"/etc/systemd/system/{unit}.service", f"/etc/systemd/system/{unit}.timer",
            f"{PRINCIPALS_DIR}/backup-{site}", f"{PURGE_DIR}/{site}.json"]


def close_access(rec: Record) -> None:
    """The site's backup principal lets nobody in any more (its certificate is revoked in the
    KRL by the admin side too): the repository stays as it is, append-only to nobody."""
    rec.remove(f"{PRINCIPALS_DIR}/backup-{rec.site}")


def purge_storage(rec: Record) -> None:
    site = rec.site
    unit = f"hosting-backup-rotate-{site}"
    stop_units(rec, [f"{unit}.timer", f"{unit}.service"])
    schedule = f"{PURGE_DIR}/{site}.json"
    for path in storage_paths(site):
        if path != schedule:
            rec.remove(path)
    rec.remove_glob(TEXTFILE_DIR, f"hosting_backup_{site}_*.prom")
    user = f"backup-{site}"
    if user_exists(rec, user):
        rec.cmd(f"deleted user {user}", ["userdel", user])
    rec.cmd("reloaded systemd", ["systemctl", "daemon-reload"])
    rec.check(f"no Unix user {user}", not user_exists(rec, user))
    if rec.ok:  # else the schedule stays: the timer tries again tomorrow (and its unit fails)
        rec.remove(schedule)


def schedule_purge(rec: Record, purge_at: datetime, now: datetime) -> None:
    path = rec.p(f"{PURGE_DIR}/{rec.site}.json")
    doc = {"site": rec.site, "purge_at": iso(purge_at), "scheduled_at": iso(now),
           "paths": storage_paths(rec.site)}
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
        rec.step(f"purge scheduled at {iso(purge_at)}", str(PURGE_DIR), True)
    except OSError as exc:
        rec.step(f"purge scheduled at {iso(purge_at)}", str(PURGE_DIR), False, str(exc))
    try:
        written = json.loads(path.read_text())["purge_at"] == iso(purge_at)
    except (OSError, ValueError, KeyError):
        written = False
    rec.check(f"{PURGE_DIR}/{rec.site}.json holds the purge date", written)
    rec.extra["purge_at"] = iso(purge_at)
    # Its metrics go now (backup.metrics publish withdraws them while the schedule exists): a
    # site that no longer backs up must not raise BackupStale until its purge.
    rec.remove_glob(TEXTFILE_DIR, f"hosting_backup_{rec.site}_*.prom")


def purge_due(root: Path, now: datetime, run: Runner = run_command) -> list[Record]:
    """Every scheduled purge whose date has come (the storage server's timer): purge, then
    leave a record of what was deleted, when (what `fab audit` and the client may ask for)."""
    done = []
    base = root / PURGE_DIR.lstrip("/")
    for entry in sorted(base.glob("*.json")) if base.is_dir() else ():
        try:
            doc = json.loads(entry.read_text())
            site, when = str(doc["site"]), parse_time(str(doc["purge_at"]))
        except (OSError, ValueError, KeyError) as exc:
            rec = Record(entry.stem, "purge-due", root, run)
            rec.step("read the schedule", str(entry), False, str(exc))
            done.append(rec)
            continue
        if not SAFE.match(site) or site != entry.stem or when > now:
            continue
        rec = Record(site, "purge-due", root, run)
        purge_storage(rec)
        rec.extra.update(purged_at=iso(now), scheduled=doc)
        write_purged(rec)
        done.append(rec)
    return done


def write_purged(rec: Record) -> None:
    path = rec.p(f"{PURGED_DIR}/{rec.site}.json")
    try:
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        path.write_text(json.dumps(rec.document(), indent=2) + "\n")
    except OSError as exc:
        rec.step("wrote the purge record", str(path), False, str(exc))


# -- command line ---------------------------------------------------------------------------------

def iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if when.tzinfo is None:
        raise ValueError(f"{text!r}: give a UTC offset (e.g. Z or +01:00)")
    return when


def _time(text: str) -> datetime:
    try:
        return parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _site(text: str) -> str:
    if not SAFE.match(text):
        raise argparse.ArgumentTypeError(f"--site {text!r}: not a site name")
    return text


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python3 -m backup.decommission")
    sub = p.add_subparsers(dest="what", required=True)
    web = sub.add_parser("web", help="delete the site's live data on its web host")
    web.add_argument("--site", type=_site, required=True)
    web.add_argument("--database", type=_site, required=True)
    store = sub.add_parser("storage", help="close the site's backup access; purge or schedule")
    store.add_argument("--site", type=_site, required=True)
    how = store.add_mutually_exclusive_group(required=True)
    how.add_argument("--purge-now", action="store_true")
    how.add_argument("--purge-at", type=_time)
    due = sub.add_parser("purge-due", help="run the purges whose date has come (the timer)")
    due.add_argument("--now", type=_time)
    for one in (web, store, due):
        one.add_argument("--root", type=Path, default=Path("/"), help=argparse.SUPPRESS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    now = datetime.now(UTC)
    if args.what == "purge-due":
        records = purge_due(args.root, args.now or now)
        print(json.dumps({"purged": [r.document() for r in records]}, indent=2))
        return 0 if all(r.ok for r in records) else 1
    if args.what == "web":
        rec = Record(args.site, "web", args.root)
        decommission_web(rec, args.database)
    else:
        rec = Record(args.site, "purge-now" if args.purge_now else "scheduled", args.root)
        close_access(rec)
        if args.purge_now:
            purge_storage(rec)
            rec.extra["purged_at"] = iso(now)
            write_purged(rec)
        else:
            schedule_purge(rec, args.purge_at, now)
    print(json.dumps(rec.document(), indent=2))
    return 0 if rec.ok else 1


if __name__ == "__main__":
    sys.exit(main())
