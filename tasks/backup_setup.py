"""`fab backup.setup`: make the backup chain whole, idempotently (issue 6, R-BKP-7).

1. converge the web hosts' backup role and the storage servers' storage role (the engine);
2. per site, the things that need the CA or another host's secret:
   - sign the web host's backup key with the user CA: principal backup-<site>, a
     force-command equal to the storage server's (the append-only restic server), the web
     host's address as the only source; re-signed when missing, for another key, or within
     RENEW_BEFORE of its end; the certificate it replaces, if still valid, is revoked in the
     user KRL and the KRL pushed to every host (else it would stay usable until it expires);
   - copy the repository password from the web host to both storage servers (through this
     machine's SSH connections and the engine's agent stdin: never in argv);
   - create the missing repositories (`backup.run --init`: the web host creates A and B
     through the append-only server, with the local repository's chunker parameters).
A second run changes nothing and says so.
"""
from __future__ import annotations

import shlex
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from engine import ca_admin
from engine.access import Access, credentials
from engine.ca_admin import paths as ca_paths
from engine.inventory import Host, Inventory, load
from engine.resources import File, Resource
from engine.role import Desired, HostContext, Role, Settings
from engine.run import RunReport, converge_hosts
from roles.backup.layout import PYTHON, RUNNER_DIR, BackupLayout
from roles.backup.role import backup
from roles.storage.role import storage
from sshtrust import ca
from sshtrust.certificate import parse_certificate
from sshtrust.keys import parse_pubkey_line

CERT_TTL = timedelta(days=90)
RENEW_BEFORE = timedelta(days=30)  # monitoring warns from 21 days (backup.status)


class SetupError(RuntimeError):
    pass


def backup_roles(ctx: HostContext) -> Desired:
    """The backup side of a host (also in `fab deploy`, roles.registry): what backup.setup
    converges before its own steps, so it works on hosts deployed by an older stack."""
    if ctx.host.role == "web":
        return backup(ctx)
    if ctx.host.role == "storage":
        return storage(ctx)
    return Desired()


def cert_options(lay: BackupLayout, web: Host) -> tuple[str, ...]:
    # -O clear first (sshtrust): no pty, no forwarding, no agent; then only these.
    return (f"force-command={lay.forced_command()}", f"source-address={web.private_ip}/32")


def sudo(conn: Any, argv: list[str], timeout: int = 600, warn: bool = False) -> Any:
    # in_stream=False: never read this process's stdin (cron, CI, pytest have none).
    return conn.run("sudo -n " + shlex.join(argv), hide=True, warn=warn, timeout=timeout,
                    in_stream=False)


def needs_new_cert(cert_text: str, pub_text: str, lay: BackupLayout, web: Host,
                   now: datetime) -> str:
    """Why the host's certificate must be (re)signed, or "" when it is fine."""
    if not cert_text.strip():
        return "no certificate"
    try:
        cert = parse_certificate(parse_pubkey_line(cert_text, "backup certificate").blob)
        key = parse_pubkey_line(pub_text, "backup key").blob
    except Exception as exc:  # noqa: BLE001 - any unreadable cert is replaced
        return f"unreadable certificate ({exc})"
    if cert.principals != (lay.principal,):
        return f"principals {cert.principals}"
    if cert.public_key_blob != key:
        return "certificate of another key"
    if dict(cert.critical_options).get("force-command") != lay.forced_command():
        return "another force-command"
    if dict(cert.critical_options).get("source-address") != f"{web.private_ip}/32":
        return "another source address"
    if cert.valid_before - now.timestamp() < RENEW_BEFORE.total_seconds():
        return "expires within 30 days"
    return ""


def sign(ca_dir: Path, env: str, lay: BackupLayout, web: Host, pub_text: str) -> str:
    with tempfile.TemporaryDirectory(prefix="backup-sign-") as tmp:
        pub = Path(tmp) / "id_ed25519.pub"
        pub.write_text(pub_text.strip() + "\n")
        key_id = ca.make_key_id(f"{env}-{lay.principal}@{web.name}")
        cert = ca.sign_user_key(ca_paths(ca_dir)["user_ca"], pub, key_id, [lay.principal],
                                ttl=CERT_TTL, options=cert_options(lay, web))
        return cert.read_text()


def previous_serial(cert_text: str, ca_dir: Path, now: datetime) -> int | None:
    """The serial of the certificate a re-sign replaces, when this user CA signed it and it is
    still valid: left alone it would open the storage servers until it expires (up to
    CERT_TTL), so it goes into the KRL (R-GDPR-5, R-BKP-7). None for no certificate, an
    unreadable one, an expired one, or one of another CA (its serial would name one of ours)."""
    if not cert_text.strip():
        return None
    try:
        old = parse_certificate(parse_pubkey_line(cert_text, "backup certificate").blob)
        ca_blob = parse_pubkey_line(ca_paths(ca_dir)["user_ca"].with_name("user_ca.pub")
                                    .read_text(), "user CA").blob
    except Exception:  # noqa: BLE001 - nothing that can be revoked
        return None
    if old.signature_key != ca_blob or not old.serial or old.valid_before <= now.timestamp():
        return None
    return old.serial


def revoke_and_push(inv: Inventory, make_access: Callable[[], Access], ca_dir: Path,
                    serial: int) -> None:
    """`serial` into the user KRL, the KRL onto every host (sshd reads it at each login)."""
    krl_path = ca_admin.revoke(ca_dir, serials=[serial])
    krl = krl_path.read_bytes()
    report = converge_hosts(inv, make_access(), list(inv.hosts),
                            lambda _ctx: ca_admin.krl_role(krl), Settings(user_krl=krl),
                            emit=lambda _m: None)
    if not report.ok:
        failed = [f"{r.host}: {r.error or [o.error for o in r.outcomes if not o.ok]}"
                  for r in report.results if not r.ok]
        raise SetupError(f"serial {serial} revoked in {krl_path}, but pushing the KRL "
                         f"failed: {'; '.join(failed)} (fab ca.push-krl)")


@dataclass
class SiteSetup:
    site: str
    actions: list[str] = field(default_factory=list)


def converge_files(inv: Inventory, access: Access, host: Host, files: Sequence[Resource],
                   emit: Callable[[str], None]) -> RunReport:
    role: Role = lambda _ctx: Desired(tuple(files))  # noqa: E731
    report = converge_hosts(inv, access, [host], role, Settings(), emit=lambda _m: None)
    if not report.ok:
        r = report.results[0]
        raise SetupError(f"{host.name}: {r.error or [o.error for o in r.outcomes if not o.ok]}")
    return report


def setup_site(inv: Inventory, make_access: Callable[[], Access], ca_dir: Path, site: str,
               emit: Callable[[str], None], now: datetime | None = None) -> SiteSetup:
    now = now or datetime.now(UTC)
    out = SiteSetup(site)
    lay = BackupLayout(site)
    web = inv.host(inv.site(site).host)
    access = make_access()
    try:
        conn = access.connection(web)
        pub = sudo(conn, ["cat", lay.ssh_pub]).stdout
        cert = sudo(conn, ["cat", lay.ssh_cert], warn=True).stdout
        why = needs_new_cert(cert, pub, lay, web, now)
        password = sudo(conn, ["cat", lay.password]).stdout
    finally:
        access.close()
    if not password.strip():
        raise SetupError(f"{web.name}: {lay.password} is empty")
    if why:
        old = previous_serial(cert, ca_dir, now)
        cert = sign(ca_dir, inv.environment, lay, web, pub)
        converge_files(inv, make_access(), web, [File(lay.ssh_cert, cert, 0o644)], emit)
        out.actions.append(f"signed {lay.principal} certificate for {web.name} ({why})")
        if old is not None:  # only once the new one is in place: the pushes never stop
            revoke_and_push(inv, make_access, ca_dir, old)
            out.actions.append(f"revoked the previous {lay.principal} certificate (serial "
                               f"{old}) and pushed the user KRL to every host")
    for tier in ("a", "b"):
        host = inv.storage_host(tier)
        report = converge_files(inv, make_access(), host, [
            File(lay.storage_password, password, 0o640, "root", lay.storage_user,
                 sensitive=True)], emit)
        if report.results[0].changed:
            out.actions.append(f"password of {site} installed on {host.name}")
    access = make_access()
    try:
        res = sudo(access.connection(web), ["env", f"PYTHONPATH={RUNNER_DIR}", PYTHON, "-m",
                                            "backup.run", "--site", site, "--init"],
                   warn=True)
    finally:
        access.close()
    if res.exited != 0:
        raise SetupError(f"{web.name}: creating the repositories failed: "
                         f"{(res.stderr or res.stdout).strip()[-800:]}")
    created = res.stdout.strip().rsplit(":", 1)[-1].strip()
    if created != "none":
        out.actions.append(f"repositories of {site} created: {created}")
    return out


def run_setup(env: str = "lab", sites: str = "", inventory: str = "", identity: str = "",
              ca_dir: str = "", emit: Callable[[str], None] = print) -> list[SiteSetup]:
    inv = load(env, inventory or None)
    creds = credentials(env, identity, ca_dir, inv=inv)
    names = [s.name for s in inv.sites]
    chosen = [n.strip() for n in sites.split(",") if n.strip()] or names
    unknown = [n for n in chosen if n not in names]
    if unknown:
        raise SetupError(f"unknown site(s) {', '.join(unknown)}; sites: {', '.join(names)}")
    hosts = [h for h in inv.hosts if h.role == "storage"
             or (h.role == "web" and any(n in h.sites for n in chosen))]
    report = converge_hosts(inv, Access(inv, creds), hosts, backup_roles,
                            creds.settings(inv), emit=lambda _m: None)
    for r in report.results:
        changed = r.changed
        emit(f"{r.host}: {'FAILED ' + (r.error or '') if not r.ok else f'{changed} changed'}")
    if not report.ok:
        failures = [f"{r.host}: {r.error or [o.error for o in r.outcomes if not o.ok]}"
                    for r in report.results if not r.ok]
        raise SetupError("converging the backup roles failed: " + "; ".join(failures))
    results = []
    for name in chosen:
        done = setup_site(inv, lambda: Access(inv, creds), creds.ca_dir, name, emit)
        for line in done.actions or ["nothing to do"]:
            emit(f"{name}: {line}")
        results.append(done)
    return results
