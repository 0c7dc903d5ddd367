"""First-boot trust for a host: exactly what cloud-init writes on OVH and the lab writes locally.

A new host trusts the user CA, accepts certificates only, and presents a host key generated
ahead of time (so its fingerprint is in the inventory before the host exists: no trust on first
use) with a certificate from the host CA (R-GDPR-5). The full hardening comes later with
`fab deploy`; this is the minimum that makes the first certificate login possible and safe.
"""
from __future__ import annotations

from dataclasses import dataclass

import yaml

from model.topology import HostPlan
from model.types import Stack

HOST_KEY = "/etc/ssh/ssh_host_ed25519_key"
USER_CA = "/etc/ssh/user_ca.pub"
KRL = "/etc/ssh/revoked_keys.krl"
# Revoked HOST certificates, for the SSH clients on the hosts (the web hosts' backup pushes to
# the storage servers: RevokedHostKeys). Pushed by every deploy (roles/base/sshd.py).
HOST_KRL = "/etc/ssh/revoked_host_keys.krl"
PRINCIPALS_DIR = "/etc/ssh/auth_principals"
# sshd's AllowGroups (roles/base/sshd.py): every account that logs in over SSH is a member
# (the admins' login, the certificate-pushing and backup accounts of roles acme and storage).
SSH_GROUP = "hosting-ssh"
SSHD_DROPIN = "/etc/ssh/sshd_config.d/00-bootstrap.conf"


@dataclass(frozen=True)
class BootFile:
    path: str
    mode: int
    content: str
    owner: str = "root:root"


def sshd_dropin(certificate: bool = True) -> str:
    # sshd takes the FIRST value it reads for each keyword, and Debian's sshd_config includes
    # sshd_config.d/*.conf at its top: this file wins over the packaged defaults.
    return "\n".join([
        "# First-boot SSH trust (model/bootstrap.py): certificates only (R-GDPR-5).",
        f"HostKey {HOST_KEY}",
        *([f"HostCertificate {HOST_KEY}-cert.pub"] if certificate else []),
        f"TrustedUserCAKeys {USER_CA}",
        f"AuthorizedPrincipalsFile {PRINCIPALS_DIR}/%u",
        "AuthorizedKeysFile none",
        f"RevokedKeys {KRL}",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin no",
        "",
    ])


def bootstrap_files(stack: Stack, host: HostPlan, *, host_key_private: str,
                    host_key_public: str, host_certificate: str | None) -> tuple[BootFile, ...]:
    """Files for first boot. Without a certificate (OVH: the host CA key stays on the admin's
    machine) the host presents its plain key, pinned by fingerprint in the inventory, until
    `fab ca.sign-hosts` installs the certificate."""
    user = stack.ssh.login_user
    principals = "".join(f"{p}\n" for p in stack.ssh.principals_for(host.role))
    cert = (BootFile(f"{HOST_KEY}-cert.pub", 0o644, host_certificate.strip() + "\n"),
            ) if host_certificate else ()
    return (
        BootFile(SSHD_DROPIN, 0o644, sshd_dropin(certificate=bool(host_certificate))),
        BootFile(USER_CA, 0o644, stack.ssh.user_ca_public_key.strip() + "\n"),
        # An empty key list is a valid RevokedKeys file; a MISSING one makes sshd refuse
        # every public-key login, so it exists from the first boot.
        BootFile(KRL, 0o644, ""),
        BootFile(f"{PRINCIPALS_DIR}/{user}", 0o644, principals),
        BootFile(f"/etc/sudoers.d/{user}", 0o440, f"{user} ALL=(ALL:ALL) NOPASSWD: ALL\n"),
        BootFile(HOST_KEY, 0o600, host_key_private.strip() + "\n"),
        BootFile(f"{HOST_KEY}.pub", 0o644, host_key_public.strip() + "\n"),
        *cert,
        BootFile("/etc/hostname", 0o644, host.name + "\n"),
    )


def bootstrap_commands(stack: Stack, host: HostPlan) -> tuple[tuple[str, ...], ...]:
    """Commands (argv lists, no shell) run once at first boot, after the files are written."""
    user = stack.ssh.login_user
    return (
        ("sh", "-c", f"id -u {user} >/dev/null 2>&1 || useradd --create-home "
                     f"--shell /bin/bash {user}"),
        ("passwd", "--lock", user),  # no password login, ever
        ("passwd", "--lock", "root"),
        ("rm", "-f", "/etc/ssh/ssh_host_rsa_key", "/etc/ssh/ssh_host_rsa_key.pub",
         "/etc/ssh/ssh_host_ecdsa_key", "/etc/ssh/ssh_host_ecdsa_key.pub"),
        ("systemctl", "restart", "ssh"),
    )


def cloud_config(stack: Stack, host: HostPlan, *, host_key_private: str,
                 host_key_public: str, host_certificate: str | None = None) -> str:
    """The OVH instance user data: the same files and commands as a #cloud-config document."""
    files = bootstrap_files(stack, host, host_key_private=host_key_private,
                            host_key_public=host_key_public, host_certificate=host_certificate)
    doc = {
        "hostname": host.name,
        "ssh_pwauth": False,
        "disable_root": True,
        "ssh_deletekeys": True,
        "ssh_genkeytypes": [],
        "users": [],  # no default user with a plain authorized key
        "write_files": [{"path": f.path, "permissions": f"0{f.mode:o}", "owner": f.owner,
                         "content": f.content} for f in files],
        "runcmd": [list(c) for c in bootstrap_commands(stack, host)],
    }
    return "#cloud-config\n" + yaml.dump(doc, Dumper=_BlockDumper, sort_keys=False, width=1000)


class _BlockDumper(yaml.SafeDumper):
    """Multi-line file contents as YAML literal blocks: user data a human can review."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str)
