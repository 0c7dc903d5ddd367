"""sshd, hardened to dev-sec ssh-baseline's bar, certificates only (R-GDPR-5).

The whole /etc/ssh/sshd_config is ours (no Include): sshd keeps the FIRST value it reads, so a
drop-in could silently weaken it; the first-boot drop-ins are removed once it is in place.
Algorithms: our preference order, filtered by what the host's OpenSSH supports (`ssh -Q`), so
the same role serves OpenSSH 10 (post-quantum key exchange first) and an older sshd in tests.
"""
from __future__ import annotations

from collections.abc import Mapping

from engine.render import render
from engine.resources import Absent, Check, Directory, File, Handler, Resource, Service
from engine.role import HostContext
from model.bootstrap import HOST_KEY, HOST_KRL, KRL, PRINCIPALS_DIR, SSH_GROUP, SSHD_DROPIN, USER_CA

SSHD_CONFIG = "/etc/ssh/sshd_config"
HOST_CERT = f"{HOST_KEY}-cert.pub"
# Written by `fab ca.sign-hosts` on hosts that booted without a certificate (OVH).
HOST_CERT_DROPIN = "/etc/ssh/sshd_config.d/01-host-certificate.conf"
RELOAD = "reload-sshd"
HANDLER = Handler(RELOAD, ("systemctl", "reload-or-restart", "ssh.service"))

# Best first. Post-quantum hybrids (OpenSSH >= 9.9 / Debian 13) lead; curve25519 stays for
# clients without them (paramiko, hence Fabric, speaks curve25519-sha256@libssh.org only).
PREFERRED: dict[str, tuple[str, ...]] = {
    "kex": ("mlkem768x25519-sha256", "sntrup761x25519-sha512",
            "sntrup761x25519-sha512@openssh.com", "curve25519-sha256",
            "curve25519-sha256@libssh.org"),
    "cipher": ("chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com",
               "aes128-gcm@openssh.com", "aes256-ctr", "aes192-ctr", "aes128-ctr"),
    "mac": ("hmac-sha2-512-etm@openssh.com", "hmac-sha2-256-etm@openssh.com",
            "umac-128-etm@openssh.com"),
    # The host presents its certificate; the plain key stays for pinned-fingerprint bootstrap
    # (`fab ca.sign-hosts`) and for scanners.
    "hostkey": ("ssh-ed25519-cert-v01@openssh.com", "ssh-ed25519"),
    # Users: certificates only (a plain key is refused before any file is looked at).
    "pubkey": ("ssh-ed25519-cert-v01@openssh.com", "sk-ssh-ed25519-cert-v01@openssh.com",
               "ecdsa-sha2-nistp256-cert-v01@openssh.com",
               "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
               "rsa-sha2-512-cert-v01@openssh.com", "rsa-sha2-256-cert-v01@openssh.com"),
}
# Which `ssh -Q` list each setting is checked against.
_QUERY = {"kex": "kex", "cipher": "cipher", "mac": "mac", "hostkey": "key", "pubkey": "key"}


def algorithms(supported: Mapping[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """Our preference order, keeping only what the host's OpenSSH knows (`ssh -Q`). Unknown
    support (no facts yet) keeps everything; an empty intersection is an error, never an
    empty line that would fall back to OpenSSH's defaults."""
    out = {}
    for setting, preferred in PREFERRED.items():
        known = supported.get(_QUERY[setting])
        chosen = tuple(a for a in preferred if a in known) if known else preferred
        if not chosen:
            raise ValueError(f"the host's OpenSSH supports none of our {setting} algorithms "
                             f"{', '.join(preferred)}")
        out[setting] = chosen
    return out


# The monitoring UIs on the bastion's loopback (roles/monitoring, docs/monitoring.md): reached
# only through an SSH tunnel (`ssh -L 9090:127.0.0.1:9090 ops`), never on a network address.
MONITORING_UIS = ("127.0.0.1:9090", "127.0.0.1:9093")


def permit_open(ctx: HostContext) -> tuple[str, ...]:
    """The bastion forwards ProxyJump's direct-tcpip only to the other hosts' SSH ports, and
    tunnels to its own loopback's Prometheus and Alertmanager."""
    inv, me = ctx.inventory, ctx.host
    if me.name != inv.bastion.name:
        return ()
    return (*(f"{h.private_ip}:22" for h in inv.hosts if h.name != me.name), *MONITORING_UIS)


def sshd_config(ctx: HostContext) -> str:
    return render("base/sshd_config.j2", algorithms=algorithms(ctx.system.ssh_algorithms),
                  host=ctx.host, permit_open=permit_open(ctx), host_key=HOST_KEY,
                  host_cert=HOST_CERT, user_ca=USER_CA, krl=KRL,
                  principals_dir=PRINCIPALS_DIR, login_user=ctx.inventory.login_user,
                  login_group=SSH_GROUP)


def principals_file(ctx: HostContext) -> str:
    return "".join(f"{p}\n" for p in ctx.inventory.principals_for(ctx.host.role))


def login_group_check(login: str) -> Check:
    member = f"id -nG {login} | tr ' ' '\\n' | grep -qx {SSH_GROUP}"
    return Check(f"ssh-group-{login}",
                 ("sh", "-c", f"{member} || {{ echo '{login} is not in {SSH_GROUP}'; exit 3; }}"),
                 ("sh", "-c", f"groupadd --force --system {SSH_GROUP} && "
                              f"usermod --append --groups {SSH_GROUP} {login}"),
                 summary=f"{login} in {SSH_GROUP} (sshd AllowGroups)")


def resources(ctx: HostContext) -> list[Resource]:
    inv = ctx.inventory
    # sshd refuses every key when RevokedKeys names a missing file (and ssh every host key
    # when RevokedHostKeys does): without the CA's KRL here, an empty one is created, but a
    # KRL pushed earlier is never overwritten (this machine may not hold the CA).
    krl, host_krl = (File(path, data, 0o644) if data is not None
                     else File(path, b"", 0o644, create_only=True)
                     for path, data in ((KRL, ctx.settings.user_krl),
                                        (HOST_KRL, ctx.settings.host_krl)))
    login = inv.login_user
    return [
        Directory("/etc/ssh", 0o755),  # sshd-04
        File(USER_CA, inv.user_ca_public_key + "\n", 0o644, notify=(RELOAD,)),
        krl,
        host_krl,
        Directory(PRINCIPALS_DIR, 0o755),
        File(f"{PRINCIPALS_DIR}/{login}", principals_file(ctx), 0o644),
        # Before sshd_config names the group in AllowGroups: the admins' login is a member.
        login_group_check(login),
        # sshd-05: readable by root only. Validated with the host's own sshd before it
        # replaces the live file.
        File(SSHD_CONFIG, sshd_config(ctx), 0o600, validate="/usr/sbin/sshd -t -f {}",
             notify=(RELOAD,)),
        # Only after sshd_config is in place (a failed validation stops the run before this):
        Absent(SSHD_DROPIN, notify=(RELOAD,)),
        Absent(HOST_CERT_DROPIN, notify=(RELOAD,)),
        File(f"/etc/sudoers.d/{login}", f"{login} ALL=(ALL:ALL) NOPASSWD: ALL\n", 0o440,
             validate="/usr/sbin/visudo -c -q -f {}"),
        Service("ssh.service", enabled=True, running=True),
    ]
