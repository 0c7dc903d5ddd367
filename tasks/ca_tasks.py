"""`fab ca.*`: the SSH certificate authority (R-GDPR-5). Thin wrappers over engine.ca_admin."""
from __future__ import annotations

import time
from pathlib import Path

from invoke import task
from invoke.exceptions import Exit

from engine import ca_admin as ops
from engine import remote, tls_ca
from engine.access import Access, AccessError, credentials, resolve_ca_dir
from engine.converge import HostResult, converge
from engine.facts import FactRequest
from engine.inventory import REPO, InventoryError, load
from engine.parallel import run_all
from engine.report import details, summary_table
from engine.role import Desired, Settings
from engine.run import converge_hosts
from model import load_stack
from model.bootstrap import HOST_KEY
from roles.base import sshd
from sshtrust._run import SshTrustError

ENV_HELP = "lab | prod | preprod (default lab)"
CA_HELP = ("CA directory (default: the inventory's ssh.ca_dir, as the lab's, or "
           "$HOSTING_CA_DIR/ENV, ~/.local/share/hosting/ca/ENV)")


def _fail(exc: Exception) -> Exit:
    return Exit(f"ca: {exc}", code=2)


def _ca_dir(env: str, ca_dir: str, inventory: str = "") -> Path:
    """--ca-dir, else the inventory's ssh.ca_dir (read for the lab, or from --inventory), else
    $HOSTING_CA_DIR/ENV or ~/.local/share/hosting/ca/ENV."""
    inv = load(env, inventory or None) if not ca_dir and (env == "lab" or inventory) else None
    return resolve_ca_dir(env, ca_dir, inv)


@task(help={"env": ENV_HELP, "ca-dir": CA_HELP})
def create(c, env="lab", ca_dir=""):
    """Create the user CA and host CA (0600 keys) and their empty KRLs, and the internal
    X.509 CA of the proxy -> web hop; idempotent."""
    try:
        d = _ca_dir(env, ca_dir)
        pubs = ops.create(d, env)
        tls_ca.create(d, env)
    except (SshTrustError, InventoryError, AccessError, tls_ca.TlsCaError) as exc:
        raise _fail(exc) from exc
    print(f"CA directory {d} (keep it on this machine; back it up offline)")
    print(f"Pulumi.{env}.yaml, hosting:ssh:")
    print(f"  user_ca_public_key: {pubs['user_ca']}")
    print(f"  host_ca_public_key: {pubs['host_ca']}")


def known_principals(env: str, inventory: str = "") -> list[str]:
    if env == "lab" or inventory:
        return list(load(env, inventory or None).principals)
    return [p for p, _roles in load_stack(REPO / f"Pulumi.{env}.yaml").ssh.principals]


@task(help={"principal": "comma-separated principals (default sysadmin)",
            "key": "public key to certify (default ~/.ssh/id_ed25519.pub)",
            "ttl": "validity: 30m, 8h, 1d (default 8h, at most 24h)",
            "key-id": "key id logged by sshd (default user@machine-date)",
            "ci": "for a pipeline: no terminal", "env": ENV_HELP, "ca-dir": CA_HELP,
            "inventory": "inventory JSON file (lab: read from the lab)"})
def sign_user(c, principal="sysadmin", key="~/.ssh/id_ed25519.pub", ttl="8h", key_id="",
              ci=False, env="lab", ca_dir="", inventory=""):
    """Sign a user certificate (principals, TTL, unique serial, key id)."""
    try:
        names = [p.strip() for p in principal.split(",") if p.strip()]
        cert = ops.sign_user(_ca_dir(env, ca_dir, inventory), Path(key).expanduser(), names,
                             ops.parse_ttl(ttl), known_principals(env, inventory), key_id, ci)
    except (ops.CaTaskError, SshTrustError, InventoryError, AccessError) as exc:
        raise _fail(exc) from exc
    print(f"signed {cert}")


@task(help={"env": ENV_HELP, "hosts": "comma-separated host names (default: all)",
            "ca-dir": CA_HELP, "inventory": "inventory JSON file",
            "identity": "private key with KEY-cert.pub", "validity": "ssh-keygen -V (+52w)",
            "check": "show what would change; change nothing"})
def sign_hosts(c, env="lab", hosts="", ca_dir="", inventory="", identity="",
               validity="-5m:+52w", check=False):
    """Bootstrap: sign each host key, pinned by its inventory fingerprint (never TOFU)."""
    try:
        inv = load(env, inventory or None)
        creds = credentials(env, identity, ca_dir, inv=inv)
    except (InventoryError, AccessError) as exc:
        raise _fail(exc) from exc
    access = Access(inv, creds, pinned=True)
    chosen = inv.select(hosts)
    by_name = {h.name: h for h in chosen}
    pub_path = f"{HOST_KEY}.pub"

    def work(name: str) -> HostResult:
        host = by_name[name]
        try:
            conn = access.connection(host)
            conn.open()
            runner = remote.AgentChannel(conn)
            both = (pub_path, sshd.SSHD_CONFIG)  # their content is read: neither is secret
            facts = remote.gather(runner, FactRequest(paths=both, contents=both))
            pub = facts.path(pub_path).data or b""
            cert = ops.sign_host(creds.ca_dir, env, host, pub.decode(), validity)
        except Exception as exc:  # noqa: BLE001 - reported per host
            return HostResult(host=name, error=f"{type(exc).__name__}: {exc}")
        wanted = Desired(tuple(ops.host_cert_resources(cert, facts.path(sshd.SSHD_CONFIG))),
                         (sshd.HANDLER,))
        return converge(name, lambda: runner, lambda _s: wanted, check=check)

    start = time.monotonic()
    try:
        results = run_all([h.name for h in chosen], work)
    finally:
        access.close()
    for r in results:
        text = details(r)
        if text:
            print(text)
    print(summary_table(results, time.monotonic() - start, check))
    if not all(r.ok for r in results):
        raise Exit("ca.sign-hosts: some hosts failed", code=1)


def _push(env: str, hosts: str, ca_dir: str, inventory: str, identity: str) -> None:
    inv = load(env, inventory or None)
    creds = credentials(env, identity, ca_dir, inv=inv)
    if not creds.user_krl.is_file():
        raise AccessError(f"no user KRL {creds.user_krl}: run `fab ca.create` first")
    krl = creds.user_krl.read_bytes()
    report = converge_hosts(inv, Access(inv, creds), inv.select(hosts),
                            lambda _ctx: ops.krl_role(krl), Settings(user_krl=krl))
    for r in report.results:
        text = details(r)
        if text:
            print(text)
    print(summary_table(report.results, report.seconds, False))
    if not report.ok:
        raise Exit("ca.push-krl: some hosts failed", code=1)


@task(help={"env": ENV_HELP, "hosts": "comma-separated host names (default: all)",
            "ca-dir": CA_HELP, "inventory": "inventory JSON file",
            "identity": "private key with KEY-cert.pub"})
def push_krl(c, env="lab", hosts="", ca_dir="", inventory="", identity=""):
    """Push the user KRL (revoked certificates) to every host."""
    try:
        _push(env, hosts, ca_dir, inventory, identity)
    except (InventoryError, AccessError) as exc:
        raise _fail(exc) from exc


@task(help={"serial": "comma-separated serials to revoke", "key-id": "a key id to revoke",
            "cert": "a certificate file to revoke", "host": "revoke a HOST certificate",
            "push": "push the user KRL to every host afterwards (default yes)",
            "env": ENV_HELP, "ca-dir": CA_HELP, "inventory": "inventory JSON file",
            "identity": "private key with KEY-cert.pub"})
def revoke(c, serial="", key_id="", cert="", host=False, push=True, env="lab", ca_dir="",
           inventory="", identity=""):
    """Revoke certificates into the KRL (serial, key id or file), then push it to the hosts."""
    try:
        serials = [int(s) for s in serial.split(",") if s.strip()]
        krl = ops.revoke(_ca_dir(env, ca_dir, inventory), serials=serials,
                         key_ids=[key_id] if key_id else [],
                         certificates=[Path(cert).expanduser()] if cert else [], host=host)
    except (ValueError, SshTrustError, InventoryError, AccessError) as exc:
        raise _fail(exc) from exc
    print(f"updated {krl}")
    if host:
        print("host KRL: checked by every connection fab makes from this CA directory "
              "(OpenSSH clients: RevokedHostKeys)")
    elif push:
        try:
            _push(env, "", ca_dir, inventory, identity)
        except (InventoryError, AccessError) as exc:
            raise _fail(exc) from exc


