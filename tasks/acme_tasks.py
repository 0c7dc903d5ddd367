"""`fab acme.*`: the wildcard certificate by ACME DNS-01 on the OVH zone (issue 14,
R-SCOPE-2, docs/tls.md). certbot runs on ops (roles/acme); these tasks do what needs the
admin: the OVH credentials, the SSH certificate of the deploy hook, the first issuance.

  fab acme.credentials [--env ENV] [--zone Z]   the access rules to request the consumer key
                                                with (JSON, least privilege), nothing else
  fab acme.set-credentials [--env ENV]          the application key, secret and consumer key,
                                                read from stdin (KEY=VALUE lines) or typed,
                                                written 0600 on ops: never in argv or logs
  fab acme.setup [--env ENV]                    certify ops' deploy key with the user CA:
                                                principal acme-deploy, the proxy's installer
                                                as forced command, ops' address only
  fab acme.issue [--env ENV]                    first issuance of every certificate set (one
                                                certbot lineage each, certonly on ops; the
                                                deploy hook pushes each to the proxy)
  fab acme.renew [--env ENV] [--force] [--lineage L]
                                                run certbot's renewal now (--force: new
                                                certificates even if not due)
  fab acme.deploy [--env ENV] [--lineage L]     push the current certificates to the proxy
                                                again (the deploy hook, without renewing)
  fab acme.status [--env ENV]                   the certificate on ops and the hook's last result
"""
from __future__ import annotations

import getpass
import json
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from invoke import task
from invoke.exceptions import Exit

from engine.access import AccessError, resolve_ca_dir
from engine.ca_admin import paths as ca_paths
from engine.channel import run_on
from engine.inventory import Host, Inventory, InventoryError, load
from roles.acme import config as c
from roles.acme.role import hook_command, install_command
from sshtrust import ca
from sshtrust.certificate import parse_certificate
from sshtrust.keys import parse_pubkey_line
from tasks.web_tasks import connected

ENV_HELP = "lab | prod | preprod (default lab)"
CERT_TTL = timedelta(days=365)  # restricted: forced command + ops' address only
RENEW_BEFORE = timedelta(days=60)
CREDENTIAL_FIELDS = ("application_key", "application_secret", "consumer_key")
ISSUE_TIMEOUT = 900


class AcmeError(RuntimeError):
    pass


def rules_document(zone: str) -> str:
    """What `fab acme.credentials` prints: the body of OVH's POST /1.0/auth/credential."""
    return json.dumps(c.credential_request(zone), indent=2) + "\n"


def parse_credentials(text: str) -> dict[str, str]:
    """KEY=VALUE lines (application_key, application_secret, consumer_key); an AcmeError
    naming the field that is missing, unknown or malformed (never its value)."""
    out: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or key not in CREDENTIAL_FIELDS:
            raise AcmeError(f"credentials line {n}: expected one of "
                            f"{', '.join(f + '=...' for f in CREDENTIAL_FIELDS)}")
        if not value.isalnum() or len(value) > 128:
            raise AcmeError(f"credentials: {key}: expected letters and digits only")
        out[key] = value
    missing = [f for f in CREDENTIAL_FIELDS if f not in out]
    if missing:
        raise AcmeError(f"credentials: {', '.join(missing)} missing")
    return out


def credentials_ini(endpoint: str, creds: dict[str, str]) -> str:
    """certbot-dns-ovh's credentials file."""
    return ("# Managed by fab acme.set-credentials (docs/tls.md). Secret: 0600 root.\n"
            f"dns_ovh_endpoint = {endpoint}\n"
            + "".join(f"dns_ovh_{f} = {creds[f]}\n" for f in CREDENTIAL_FIELDS))


def write_credentials_argv() -> list[str]:
    """Root on ops: the file from stdin, 0600, atomically (never the value in argv)."""
    path = c.CREDENTIALS
    return ["sh", "-c", f"umask 077 && mkdir -p {c.CREDENTIALS_DIR} && cat > {path}.new && "
                        f"chmod 0600 {path}.new && mv -f {path}.new {path}"]


def read_credentials(stream: Any = None) -> dict[str, str]:
    stream = stream or sys.stdin
    if stream.isatty():
        text = "".join(f"{f}={getpass.getpass(f'OVH {f}: ')}\n" for f in CREDENTIAL_FIELDS)
    else:
        text = stream.read(64 * 1024)
    return parse_credentials(text)


def cert_options(inv: Inventory, ops: Host) -> tuple[str, ...]:
    tls = inv.tls
    if tls is None:
        raise AcmeError("inventory names no tls.certificate / tls.key for the proxy")
    return (f"force-command={install_command()}",
            f"source-address={ops.private_ip}/32")


def needs_new_cert(cert_text: str, pub_text: str, options: tuple[str, ...],
                   now: datetime) -> str:
    """Why ops' deploy certificate must be (re)signed, or "" when it is fine."""
    if not cert_text.strip():
        return "no certificate"
    try:
        cert = parse_certificate(parse_pubkey_line(cert_text, "acme certificate").blob)
        key = parse_pubkey_line(pub_text, "acme key").blob
    except Exception as exc:  # noqa: BLE001 - any unreadable cert is replaced
        return f"unreadable certificate ({exc})"
    if cert.principals != (c.PRINCIPAL,):
        return f"principals {cert.principals}"
    if cert.public_key_blob != key:
        return "certificate of another key"
    want = dict(o.split("=", 1) for o in options)
    if dict(cert.critical_options) != want:
        return "other restrictions"
    if cert.valid_before - now.timestamp() < RENEW_BEFORE.total_seconds():
        return f"expires within {RENEW_BEFORE.days} days"
    return ""


def sign(ca_dir: Path, env: str, pub_text: str, options: tuple[str, ...]) -> str:
    with tempfile.TemporaryDirectory(prefix="acme-sign-") as tmp:
        pub = Path(tmp) / "id_ed25519.pub"
        pub.write_text(pub_text.strip() + "\n")
        cert = ca.sign_user_key(ca_paths(ca_dir)["user_ca"], pub,
                                ca.make_key_id(f"{env}-{c.PRINCIPAL}@ops"), [c.PRINCIPAL],
                                ttl=CERT_TTL, options=options)
        return cert.read_text()


def issue_argv(cert: c.CertSet) -> list[str]:
    """certbot certonly on ops for one certificate set (one lineage): cli.ini (roles/acme)
    holds the server, key type, DNS-01 settings and the deploy hook; here only what names the
    lineage. `--keep-until-expiring`: a set already issued is left alone."""
    argv = ["certbot", "certonly", "--cert-name", cert.lineage, "--keep-until-expiring"]
    for name in cert.names:
        argv += ["-d", name]
    return argv


def issue_all(acme: c.Acme, run: Any) -> list[str]:
    """Each set in config order; every set is tried and every failure reported (AcmeError)."""
    out, errors = [], []
    for cert in acme.certificates:
        try:
            out.append(run(issue_argv(cert), f"certbot certonly ({cert.lineage})"))
        except AcmeError as exc:
            errors.append(str(exc))
    if errors:
        raise AcmeError("; ".join(errors))
    return out


def selected(acme: c.Acme, lineage: str) -> tuple[c.CertSet, ...]:
    try:
        return (acme.lineage(lineage),) if lineage else acme.certificates
    except c.AcmeConfigError as exc:
        raise AcmeError(str(exc)) from exc


def renew_argv(acme: c.Acme, force: bool, lineage: str = "") -> list[str]:
    """certbot renew: every lineage (certbot's own loop), or the one named."""
    argv = ["certbot", "renew", "--no-random-sleep-on-renew"]
    if lineage:
        argv[2:2] = ["--cert-name", selected(acme, lineage)[0].lineage]
    return argv + (["--force-renewal"] if force else [])


def _acme(inv: Inventory) -> c.Acme:
    try:
        acme = c.acme(inv)
    except c.AcmeConfigError as exc:
        raise AcmeError(str(exc)) from exc
    if acme is None:
        raise AcmeError("ACME is off in this inventory (no acme section with enabled: true)")
    return acme


def _fail(exc: Exception) -> Exit:
    return Exit(f"acme: {exc}", code=1)


def _run(conn: Any, argv: list[str], what: str, stdin: bytes = b"",
         timeout: int = 60) -> str:
    code, out, err = run_on(conn, argv, stdin=stdin, sudo=True, timeout=timeout)
    if code != 0:
        tail = (err or out).decode(errors="replace").strip()[-600:]
        raise AcmeError(f"{what} failed on ops (exit {code}): {tail}")
    return out.decode(errors="replace")


@task(help={"env": ENV_HELP, "zone": "DNS zone (default: the inventory's dns_zone)",
            "inventory": "inventory JSON file"})
def credentials(c_, env="lab", zone="", inventory=""):
    """Print the OVH access rules the consumer key needs (JSON for POST /auth/credential)."""
    try:
        zone = zone or str(load(env, inventory or None).doc["dns_zone"])
        sys.stdout.write(rules_document(zone))
    except (InventoryError, c.AcmeConfigError) as exc:
        raise _fail(exc) from exc


@task(help={"env": ENV_HELP, "inventory": "inventory JSON file",
            "identity": "your key (with KEY-cert.pub)"})
def set_credentials(c_, env="lab", inventory="", identity=""):
    """Write the OVH credentials on ops (0600), read from stdin or typed."""
    try:
        creds = read_credentials()
        with connected(env, inventory, identity) as (inv, connect):
            write_credentials(inv, connect, creds)
    except (InventoryError, AccessError, AcmeError) as exc:
        raise _fail(exc) from exc
    print(f"acme: OVH credentials written to {c.CREDENTIALS} on ops (0600)")


def write_credentials(inv: Inventory, connect: Any, creds: dict[str, str]) -> None:
    """certbot's credentials file on ops, through stdin (the task, and the lab's set-up)."""
    ini = credentials_ini(_acme(inv).ovh_endpoint, creds)
    _run(connect(inv.bastion.name), write_credentials_argv(), "writing credentials",
         stdin=ini.encode())


def setup_cert(inv: Inventory, connect: Any, ca_dir: Path,
               now: datetime | None = None) -> str:
    """Certify ops' deploy key when needed; what was done."""
    ops = inv.bastion
    conn = connect(ops.name)
    pub = _run(conn, ["cat", f"{c.SSH_KEY}.pub"], "reading the deploy key")
    code, out, _err = run_on(conn, ["cat", c.SSH_CERT], sudo=True)
    options = cert_options(inv, ops)
    why = needs_new_cert(out.decode() if code == 0 else "", pub, options,
                         now or datetime.now(UTC))
    if not why:
        return "deploy certificate is current"
    cert = sign(ca_dir, inv.environment, pub, options)
    _run(conn, ["sh", "-c", f"cat > {c.SSH_CERT}.new && chmod 0644 {c.SSH_CERT}.new && "
                            f"mv -f {c.SSH_CERT}.new {c.SSH_CERT}"],
         "writing the deploy certificate", stdin=cert.encode())
    return f"signed the {c.PRINCIPAL} certificate for ops ({why})"


@task(help={"env": ENV_HELP, "inventory": "inventory JSON file",
            "identity": "your key (with KEY-cert.pub)", "ca_dir": "CA directory"})
def setup(c_, env="lab", inventory="", identity="", ca_dir=""):
    """Certify ops' deploy key (principal acme-deploy, forced installer, ops' address)."""
    try:
        with connected(env, inventory, identity) as (inv, connect):
            _acme(inv)
            print(f"acme: {setup_cert(inv, connect, resolve_ca_dir(env, ca_dir, inv))}")
    except (InventoryError, AccessError, AcmeError) as exc:
        raise _fail(exc) from exc


@task(help={"env": ENV_HELP, "inventory": "inventory JSON file",
            "identity": "your key (with KEY-cert.pub)"})
def issue(c_, env="lab", inventory="", identity=""):
    """Obtain the certificate on ops (certbot certonly); the deploy hook installs it."""
    try:
        with connected(env, inventory, identity) as (inv, connect):
            conn = connect(inv.bastion.name)
            outs = issue_all(_acme(inv), lambda argv, what: _run(conn, argv, what,
                                                                 timeout=ISSUE_TIMEOUT))
    except (InventoryError, AccessError, AcmeError) as exc:
        raise _fail(exc) from exc
    print("\n".join(o.strip() for o in outs if o.strip()) or "acme: issued")


@task(help={"env": ENV_HELP, "force": "renew even if not due",
            "lineage": "one certificate set (default: every one)",
            "inventory": "inventory JSON file", "identity": "your key (with KEY-cert.pub)"})
def renew(c_, env="lab", force=False, lineage="", inventory="", identity=""):
    """Run certbot's renewal now on ops (the timer does it twice a day)."""
    try:
        with connected(env, inventory, identity) as (inv, connect):
            out = _run(connect(inv.bastion.name), renew_argv(_acme(inv), force, lineage),
                       "certbot renew", timeout=ISSUE_TIMEOUT)
    except (InventoryError, AccessError, AcmeError) as exc:
        raise _fail(exc) from exc
    print(out.strip() or "acme: renewal run")


def deploy_argv(cert: c.CertSet) -> list[str]:
    """The deploy hook run by hand on ops for one lineage (roles/acme)."""
    return [*hook_command().split(), "--lineage", cert.live_dir]


@task(help={"env": ENV_HELP, "lineage": "one certificate set (default: every one)",
            "inventory": "inventory JSON file", "identity": "your key (with KEY-cert.pub)"})
def deploy(c_, env="lab", lineage="", inventory="", identity=""):
    """Push the current certificates to the proxy again (the deploy hook, no renewal)."""
    try:
        with connected(env, inventory, identity) as (inv, connect):
            conn = connect(inv.bastion.name)
            outs = [_run(conn, deploy_argv(cert), f"the deploy hook ({cert.lineage})",
                         timeout=300) for cert in selected(_acme(inv), lineage)]
    except (InventoryError, AccessError, AcmeError) as exc:
        raise _fail(exc) from exc
    print("\n".join(o.strip() for o in outs))


@task(help={"env": ENV_HELP, "inventory": "inventory JSON file",
            "identity": "your key (with KEY-cert.pub)"})
def status(c_, env="lab", inventory="", identity=""):
    """The certificate on ops (names, expiry) and the deploy hook's last result."""
    try:
        with connected(env, inventory, identity) as (inv, connect):
            acme = _acme(inv)
            conn = connect(inv.bastion.name)
            out = "\n".join(_run(conn, ["certbot", "certificates", "--cert-name",
                                         cert.lineage], "certbot certificates")
                            for cert in acme.certificates)
            code, last, _ = run_on(conn, ["cat", c.STATUS], sudo=True)
    except (InventoryError, AccessError, AcmeError) as exc:
        raise _fail(exc) from exc
    print(out.strip())
    print("last deploy:", last.decode().strip() if code == 0 else "none yet")
