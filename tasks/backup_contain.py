"""`fab backup.contain --site NAME [--since TIME]`: contain a compromised web host's backup
identity (issue 19; R-INC-1, R-INC-4, R-GDPR-9, R-GDPR-2).

Run it once the web host is rebuilt (or isolated), before restoring onto it. In order, each
step checked, each one safe to run again (a failure stops the procedure, says what was done and
what is left, and a second run takes it up):
  1. revoke every backup certificate ever issued for the site's principal (the CA's register,
     not what the host says it holds) and push the user KRL to every host: the old identity can
     no longer reach A or B;
  2. on A and B, from the trusted side (the site's storage user): a new repository password,
     added as a key with the old one, then every other key removed (the old one and any the
     host added), the removed key files kept in the state directory; the new password file
     is installed only after that succeeded (backup.rekey);
  3. with --since: every snapshot that ARRIVED on A or B since then is marked suspect in their
     ledgers (backup.ledger): restores skip them (tasks/backup_ledger.py);
  4. on the web host: its local repository is moved aside (kept, never used again by a
     restore: `fab restore --before` reads A or B), its backup key and certificate removed, the
     new password installed; its backup role makes a new key, `fab backup.setup` signs a new
     certificate and creates a new local repository from A. The host never sees the old
     password again, nor the new one before it is rebuilt (the procedure assumes it is);
  5. one incident record on ops (R-INC-4), whatever happened.
Secrets travel as sensitive files through the deploy agent's stdin, never on a command line.
"""
from __future__ import annotations

import json
import secrets
import shlex
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from backup.restore_choose import parse_at
from backup.restore_db import RestoreError
from engine import ca_admin
from engine.access import Access, credentials
from engine.inventory import Inventory, InventoryError, load
from engine.resources import Absent, File
from engine.role import Settings
from engine.run import converge_hosts
from roles.backup.layout import PYTHON, RUNNER_DIR, BackupLayout
from sshtrust import ca
from tasks.backup_setup import backup_roles, converge_files, setup_site, sudo
from tasks.incident_record import record_incident

# The site's backup sessions on a storage server: the forced command and the server it runs.
SESSION_PATTERN = "backup[.]serve|rclone serve restic"


class ContainError(RuntimeError):
    pass


def backup_serials(ca_dir: Path, principal: str) -> list[int]:
    """Every user certificate the CA issued for `principal` (R-INC-3's register)."""
    return [c.serial for c in ca.issued(ca_admin.paths(ca_dir)["user_ca"])
            if principal in c.principals]


def storage_argv(site: str, module: str, *args: str) -> list[str]:
    """A module of the backup package on a storage server, as the site's storage user."""
    return ["runuser", "-u", BackupLayout(site).storage_user, "--", "env",
            f"PYTHONPATH={RUNNER_DIR}", PYTHON, "-m", module, "--site", site, *args]


def parse_since(text: str, zone: str) -> datetime:
    if len(text) == 10:
        raise ContainError(f"--since {text!r}: give the time of the suspected compromise, "
                           "not a day")
    try:
        return parse_at(text, ZoneInfo(zone))
    except RestoreError as exc:
        raise ContainError(str(exc).replace("--at", "--since")) from None


def run_contain(env: str, site: str, since: str = "", inventory: str = "", identity: str = "",
                ca_dir: str = "", emit: Callable[[str], None] = print) -> dict[str, Any]:
    t0 = time.monotonic()
    inv = load(env, inventory or None)
    creds = credentials(env, identity, ca_dir, inv=inv)
    try:
        s = inv.site(site)
    except InventoryError as exc:
        raise ContainError(str(exc)) from None
    since_t = parse_since(since, inv.backup_timezone) if since else None
    done: list[str] = []
    result: dict[str, Any] = {"site": site, "since": since_t.isoformat() if since_t else None,
                              "done": done, "ok": False}
    try:
        _contain(inv, creds, site, s.host, since_t, done, result, emit)
        result["ok"] = True
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        raise ContainError(f"contain {site} stopped: {exc}; done so far: "
                           f"{'; '.join(done) or 'nothing'}; run it again to go on") from exc
    finally:
        result["seconds"] = round(time.monotonic() - t0, 1)
        a = Access(inv, creds)
        try:
            record_incident(inv, a, {
                "kind": "backup-contain", "site": site, "host": s.host,
                "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "result": "ok" if result["ok"] else "failed", "since": result["since"],
                "what": "; ".join(done), "error": result.get("error", "")}, emit)
        finally:
            a.close()
    return result


def _contain(inv: Inventory, creds: Any, site: str, web_name: str, since: datetime | None,
             done: list[str], result: dict[str, Any], emit: Callable[[str], None]) -> None:
    lay = BackupLayout(site)
    web = inv.host(web_name)

    def access() -> Access:
        return Access(inv, creds)

    # 1. Revoke the identity, whatever the host holds, and push the KRL everywhere.
    serials = backup_serials(creds.ca_dir, lay.principal)
    if serials:
        ca_admin.revoke(creds.ca_dir, serials=serials)
    krl = creds.user_krl.read_bytes()
    report = converge_hosts(inv, access(), list(inv.hosts),
                            lambda _ctx: ca_admin.krl_role(krl), Settings(user_krl=krl),
                            emit=lambda _m: None)
    if not report.ok:
        raise ContainError("pushing the user KRL failed on " + ", ".join(
            r.host for r in report.results if not r.ok))
    result["revoked_serials"] = serials
    done.append(f"revoked {len(serials)} backup certificate(s) of {lay.principal}, KRL pushed "
                f"to {len(report.results)} hosts")
    emit(f"contain {site}: {done[-1]}")
    # A session opened before the revocation outlives it: end the site's backup sessions on
    # A and B (the forced command and its server), never the rotation.
    for tier in ("a", "b"):
        host = inv.storage_host(tier)
        a = access()
        try:
            res = sudo(a.connection(host), ["pkill", "-u", lay.storage_user, "-f",
                                            SESSION_PATTERN], warn=True)
        finally:
            a.close()
        if res.exited not in (0, 1):  # 1: no session was running
            raise ContainError(f"ending the backup sessions on {host.name}: "
                               f"{res.stderr.strip()[-300:]}")
    done.append("live backup sessions of the site ended on A and B")

    # 2. New password and keys on A and B, from the trusted side.
    password = secrets.token_urlsafe(32)
    staged = f"{lay.storage_state}/contain.password"
    result["keys"] = {}
    for tier in ("a", "b"):
        host = inv.storage_host(tier)
        converge_files(inv, access(), host, [
            File(staged, password, 0o600, lay.storage_user, lay.storage_user, sensitive=True)],
            emit)
        a = access()
        try:
            res = sudo(a.connection(host), storage_argv(site, "backup.rekey",
                                                         "--new-password-file", staged,
                                                         "--drop-locks-of", web.name),
                       timeout=900, warn=True)
        finally:
            a.close()
        if res.exited != 0:
            raise ContainError(f"new key on {host.name}: {res.stderr.strip()[-800:]}")
        keys = json.loads(res.stdout)
        converge_files(inv, access(), host, [
            File(lay.storage_password, password, 0o640, "root", lay.storage_user,
                 sensitive=True), Absent(staged)], emit)
        result["keys"][tier] = keys
        done.append(f"{host.name}: new key {keys['added'][:8]}, {len(keys['removed'])} "
                    f"key(s) removed (saved in {keys['saved']})")
        emit(f"contain {site}: {done[-1]}")

    # 3. Snapshots that arrived since the suspected compromise are suspect.
    if since is not None:
        for tier in ("a", "b"):
            host = inv.storage_host(tier)
            a = access()
            try:
                res = sudo(a.connection(host), storage_argv(
                    site, "backup.ledger", "--mark-since", since.isoformat(), "--reason",
                    "fab backup.contain: arrived after the suspected compromise"), warn=True)
            finally:
                a.close()
            if res.exited != 0:
                raise ContainError(f"ledger mark on {host.name}: {res.stderr.strip()[-800:]}")
        done.append(f"arrivals since {since.isoformat()} marked suspect on A and B")
        emit(f"contain {site}: {done[-1]}")

    # 4. The web host: old local repository aside, new identity, new password.
    moved = f"{lay.local_repo}.contained-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    a = access()
    try:
        conn = a.connection(web)
        script = (f"if [ -d {shlex.quote(lay.local_repo)} ]; then mv {shlex.quote(lay.local_repo)} "
                  f"{shlex.quote(moved)}; echo moved; fi; rm -f {shlex.quote(lay.ssh_key)} "
                  f"{shlex.quote(lay.ssh_pub)} {shlex.quote(lay.ssh_cert)}")
        res = sudo(conn, ["sh", "-c", script], warn=True)
    finally:
        a.close()
    if res.exited != 0:
        raise ContainError(f"{web.name}: {res.stderr.strip()[-800:]}")
    if "moved" in res.stdout:
        result["local_repository_kept_at"] = moved
        done.append(f"{web.name}: local repository moved aside to {moved}")
    converge_files(inv, access(), web, [File(lay.password, password, 0o600, sensitive=True)],
                   emit)
    report = converge_hosts(inv, access(), [web], backup_roles, creds.settings(inv),
                            emit=lambda _m: None)
    if not report.ok:
        r = report.results[0]
        raise ContainError(f"{web.name}: backup role: "
                           f"{r.error or [o.error for o in r.outcomes if not o.ok]}")
    setup = setup_site(inv, access, creds.ca_dir, site, emit)
    done.append(f"{web.name}: new backup key, password and certificate ("
                f"{'; '.join(setup.actions) or 'set up'})")
    emit(f"contain {site}: {done[-1]}")
