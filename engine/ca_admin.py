"""The SSH certificate authority as the admin uses it (R-GDPR-5): thin layer over sshtrust.ca.

CA directory (one per environment, on the admin's machine, 0700; private keys 0600, never
copied anywhere by these functions):
  user_ca, user_ca.pub, user_ca.krl   signs people and CI; its KRL is pushed to every host
  host_ca, host_ca.pub, host_ca.krl   signs hosts; its KRL is checked by our connections
  *.serial, *.issued                  serial counter and register of every certificate (R-INC-3)
"""
from __future__ import annotations

import getpass
import re
import socket
import tempfile
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from engine.facts import PathFact
from engine.inventory import Host
from engine.resources import File, Resource
from engine.role import Desired
from model.bootstrap import HOST_KEY, KRL
from roles.base import sshd
from sshtrust import ca
from sshtrust.keys import fingerprint, parse_pubkey_line

MAX_USER_TTL = timedelta(hours=24)  # user certificates are short-lived: hours, not weeks
# ProxyJump through the bastion is a direct-tcpip channel: without permit-port-forwarding in
# the certificate the private hosts are unreachable. sshd allows it on the bastion only, and
# only to the hosts' SSH ports (PermitOpen); every other host has DisableForwarding.
ADMIN_OPTIONS = ("permit-pty", "permit-port-forwarding")
CI_OPTIONS = ("permit-port-forwarding",)
_TTL = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class CaTaskError(RuntimeError):
    pass


def paths(ca_dir: Path) -> dict[str, Path]:
    d = Path(ca_dir)
    return {"user_ca": d / "user_ca", "host_ca": d / "host_ca",
            "user_krl": d / "user_ca.krl", "host_krl": d / "host_ca.krl"}


def create(ca_dir: Path, env: str) -> dict[str, str]:
    """Both CAs and their (empty) KRLs; idempotent. Returns the public keys to put in
    Pulumi.<env>.yaml (hosting:ssh user_ca_public_key / host_ca_public_key)."""
    p = paths(ca_dir)
    Path(ca_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
    Path(ca_dir).chmod(0o700)
    for which in ("user_ca", "host_ca"):
        key = ca.create_ca(p[which], f"villeparisis-{env}-{which.replace('_', '-')}")
        ca.init_krl(p[which.replace("_ca", "_krl")], key.with_name(key.name + ".pub"))
    return {w: p[w].with_name(w + ".pub").read_text().strip() for w in ("user_ca", "host_ca")}


def parse_ttl(text: str) -> timedelta:
    m = _TTL.match(text.strip())
    if not m:
        raise CaTaskError(f"ttl {text!r}: a number and a unit, e.g. 30m, 8h, 1d")
    ttl = timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    if not timedelta(0) < ttl <= MAX_USER_TTL:
        raise CaTaskError(f"ttl {text!r}: between 1s and {MAX_USER_TTL} (short-lived certificates)")
    return ttl


def sign_user(ca_dir: Path, pubkey: Path, principals: Sequence[str], ttl: timedelta,
              known_principals: Sequence[str], key_id: str = "", ci: bool = False) -> Path:
    """Sign a person's (or CI's) key. Principals must be ones the model knows (who may log in
    where is data: hosting:ssh.principals), so a typo cannot mint a useless or surprising cert."""
    unknown = [p for p in principals if p not in known_principals]
    if unknown:
        raise CaTaskError(f"unknown principal(s) {', '.join(unknown)}; the model knows "
                          f"{', '.join(known_principals)}")
    kid = key_id or ca.make_key_id(f"{getpass.getuser()}@{socket.gethostname()}")
    return ca.sign_user_key(paths(ca_dir)["user_ca"], Path(pubkey).expanduser(), kid,
                            list(principals), ttl=ttl,
                            options=CI_OPTIONS if ci else ADMIN_OPTIONS)


def revoke(ca_dir: Path, *, serials: Sequence[int] = (), key_ids: Sequence[str] = (),
           certificates: Sequence[Path] = (), host: bool = False) -> Path:
    p = paths(ca_dir)
    which = "host_ca" if host else "user_ca"
    krl = p["host_krl" if host else "user_krl"]
    return ca.revoke(krl, p[which].with_name(which + ".pub"), serials=serials, key_ids=key_ids,
                     certificates=certificates)


# --- roles used by the CA tasks ---


def krl_role(krl: bytes) -> Desired:
    """Push the user KRL: sshd reads RevokedKeys at every login, no reload needed."""
    return Desired(resources=(File(KRL, krl, 0o644),))


def host_cert_resources(cert: str, sshd_config: PathFact) -> list[Resource]:
    """The certificate, plus (on a host still on Debian's sshd_config + the first-boot
    drop-in) a drop-in that makes sshd present it. Our deployed sshd_config names it already."""
    out: list[Resource] = [File(sshd.HOST_CERT, cert.strip() + "\n", 0o644,
                                notify=(sshd.RELOAD,))]
    ours = sshd_config.data is not None and f"HostCertificate {sshd.HOST_CERT}".encode() in \
        sshd_config.data
    if not ours:
        out.append(File(sshd.HOST_CERT_DROPIN,
                        f"HostKey {HOST_KEY}\nHostCertificate {sshd.HOST_CERT}\n", 0o644,
                        validate="/usr/sbin/sshd -t -f {}", notify=(sshd.RELOAD,)))
    return out


def sign_host(ca_dir: Path, env: str, host: Host, host_pub_text: str,
              validity: str = ca.DEFAULT_HOST_VALIDITY) -> str:
    """Sign the key a host presented, only if it is the key the inventory pinned."""
    line = parse_pubkey_line(host_pub_text, f"{host.name}:{HOST_KEY}.pub")
    with tempfile.TemporaryDirectory(prefix="sign-host-") as tmp:
        pub = Path(tmp) / "ssh_host_ed25519_key.pub"
        pub.write_text(line.line() + "\n")
        if fingerprint(pub) != host.fingerprint:
            raise ca.FingerprintMismatch(f"{host.name}: host key {fingerprint(pub)} is not the "
                                         f"pinned {host.fingerprint}; not signing")
        cert = ca.sign_host_key(paths(ca_dir)["host_ca"], pub, f"{env}-host-{host.name}",
                                list(host.cert_principals), validity,
                                expected_fingerprint=host.fingerprint)
        return cert.read_text()

