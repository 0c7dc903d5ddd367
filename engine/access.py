"""How this machine reaches the hosts: credentials per environment, and connections.

Every connection verifies the host's certificate against the environment's host CA
(sshtrust.hostkey: signature, principals include the host's name, validity, host KRL): never
trust on first use, never AutoAddPolicy. The bastion (ops) is reached on its public address;
every other host through it (ProxyJump: one SSH connection to the bastion, one direct-tcpip
channel per host), as an admin would. The only exception is `fab ca.sign-hosts`, which runs
before hosts have a certificate: it pins the host key fingerprint from the inventory instead.

Credentials (user key + its certificate, the CA directory), first found wins:
  user key       --identity KEY; the inventory's `ssh.identity`; $HOSTING_SSH_IDENTITY;
                 ~/.ssh/id_ed25519. Its certificate is KEY-cert.pub.
  CA directory   --ca-dir DIR; the inventory's `ssh.ca_dir`; $HOSTING_CA_DIR/ENV;
                 ~/.local/share/hosting/ca/ENV.
The lab's inventory names its state directory's user key and CAs (and `python -m lab
inventory` renews the 8-hour certificate before printing); Pulumi's names neither. Nothing
here knows how the inventory was made (no import of lab/: issue 12).
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fabric import Connection
from paramiko import MissingHostKeyPolicy, PKey, SSHClient
from paramiko.ssh_exception import SSHException

from engine import tls_ca
from engine.inventory import Host, Inventory
from engine.role import Settings
from sshtrust.hostkey import HostTrust, load_user_key, make_connection, quiet_config
from sshtrust.keys import fingerprint_blob, parse_pubkey_line

CONNECT_TIMEOUT = 15


class AccessError(RuntimeError):
    pass


@dataclass(frozen=True)
class Credentials:
    user_key: Path
    user_cert: Path
    ca_dir: Path  # user_ca, host_ca (private, 0600), their .pub and .krl

    @property
    def user_krl(self) -> Path:
        """Revoked user certificates: pushed to every host (sshd RevokedKeys)."""
        return self.ca_dir / "user_ca.krl"

    @property
    def host_krl(self) -> Path:
        """Revoked host certificates: checked here, by every connection we make."""
        return self.ca_dir / "host_ca.krl"

    def settings(self, inv: Inventory | None = None,
                 emit: Callable[[str], None] | None = None) -> Settings:
        """What every converge with the baseline needs from this machine: the user and host
        KRLs, when it holds them (a host converged without them would keep its first-boot,
        empty ones), and, given the inventory, the proxy -> web hop's certificates from the
        internal CA, issued or renewed here (engine.tls_ca): a web host converged without them
        (a restore onto a fresh host, say) could not load its nginx configuration."""
        internal = None
        if inv is not None:
            try:
                internal = tls_ca.ensure(self.ca_dir, inv, emit=emit)
            except tls_ca.TlsCaError as exc:
                raise AccessError(str(exc)) from exc
        return Settings(user_krl=self.user_krl.read_bytes() if self.user_krl.is_file() else None,
                        host_krl=self.host_krl.read_bytes() if self.host_krl.is_file() else None,
                        internal_tls=internal)


def default_ca_dir(env: str) -> Path:
    base = os.environ.get("HOSTING_CA_DIR")
    return Path(base) / env if base else Path.home() / ".local/share/hosting/ca" / env


def resolve_ca_dir(env: str, ca_dir: str = "", inv: Inventory | None = None) -> Path:
    if ca_dir:
        return Path(ca_dir).expanduser()
    if inv is not None and inv.ssh_ca_dir is not None:
        return inv.ssh_ca_dir
    if env == "lab":  # the lab's CAs live in its state directory: only its inventory knows
        raise AccessError("the lab's CA directory comes from its inventory (`python -m lab "
                          "inventory`, ssh.ca_dir): load it first, or give --ca-dir")
    return default_ca_dir(env)


def credentials(env: str, identity: str = "", ca_dir: str = "", *,
                inv: Inventory | None) -> Credentials:
    """The user key, its certificate and the CA directory for `env` (module docstring)."""
    if identity:
        key = Path(identity).expanduser()
    elif inv is not None and inv.ssh_identity is not None:
        key = inv.ssh_identity
    else:
        key = Path(os.environ.get("HOSTING_SSH_IDENTITY")
                   or Path.home() / ".ssh/id_ed25519").expanduser()
    cert = key.with_name(key.name + "-cert.pub")
    cas = resolve_ca_dir(env, ca_dir, inv)
    if not cert.is_file():
        raise AccessError(f"no user certificate {cert}: get one with `fab ca.sign-user "
                          f"--env {env} --key {key}.pub --principal sysadmin`")
    return Credentials(key, cert, cas)


class PinnedHostKey(MissingHostKeyPolicy):
    """Bootstrap only: accept exactly the host key whose fingerprint the inventory pinned
    (it comes from provisioning, not from the network: no trust on first use)."""

    def __init__(self, name: str, fingerprint: str) -> None:
        self.name = name
        self.fingerprint = fingerprint

    def missing_host_key(self, client: SSHClient, hostname: str, key: PKey) -> None:
        seen = fingerprint_blob(key.asbytes())
        if seen != self.fingerprint:
            raise SSHException(f"host key of {self.name} ({hostname}) is {seen}, but the "
                               f"inventory pins {self.fingerprint}: refusing to connect")


class Access:
    """Connections to one environment's hosts, sharing one bastion connection."""

    def __init__(self, inv: Inventory, creds: Credentials, *, pinned: bool = False,
                 connect_timeout: int = CONNECT_TIMEOUT) -> None:
        self.inv = inv
        self.creds = creds
        self.pinned = pinned
        self.timeout = connect_timeout
        krl = creds.host_krl if creds.host_krl.is_file() else None
        ca = parse_pubkey_line(inv.host_ca_public_key, "inventory ssh.host_ca_public_key")
        self.trust = HostTrust((ca.blob,), krl)
        self._lock = threading.Lock()
        self._gateway: Connection | None = None
        self._gateway_error: Exception | None = None
        self._opened: list[Connection] = []

    def _connect(self, host: Host, address: str, gateway: Connection | None) -> Connection:
        if not self.pinned:
            return make_connection(address, self.inv.login_user, expected_name=host.name,
                                   trust=self.trust, user_key=self.creds.user_key,
                                   user_cert=self.creds.user_cert, gateway=gateway,
                                   connect_timeout=self.timeout)
        kwargs: dict[str, Any] = {"look_for_keys": False, "allow_agent": False,
                                  "pkey": load_user_key(self.creds.user_key, self.creds.user_cert)}
        conn = Connection(address, user=self.inv.login_user, gateway=gateway or False,
                          connect_kwargs=kwargs, connect_timeout=self.timeout,
                          config=quiet_config())
        conn.client.set_missing_host_key_policy(PinnedHostKey(host.name, host.fingerprint))
        return conn

    def gateway(self) -> Connection:
        """The bastion's connection, opened once (under a lock: hosts ask from many threads)."""
        with self._lock:
            if self._gateway_error is not None:
                raise AccessError(f"bastion unreachable: {self._gateway_error}")
            if self._gateway is None:
                bastion = self.inv.bastion
                conn = self._connect(bastion, bastion.public_ip or bastion.private_ip, None)
                try:
                    conn.open()
                except Exception as exc:
                    self._gateway_error = exc
                    raise AccessError(f"bastion {bastion.name} unreachable: {exc}") from exc
                self._gateway = conn
                self._opened.append(conn)
            return self._gateway

    def connection(self, host: Host) -> Connection:
        # A connection of its own, the bastion's too: sshd allows 2 sessions per connection
        # (MaxSessions, lynis SSH-7408), so commands on the bastion must not share the
        # gateway's connection with other threads' commands.
        if host.name == self.inv.bastion.name:
            self.gateway()  # an unreachable bastion is reported once, as for the others
            conn = self._connect(host, host.public_ip or host.private_ip, None)
        else:
            conn = self._connect(host, host.private_ip, self.gateway())
        with self._lock:
            self._opened.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            # Targets first: their channels run through the bastion's transport.
            for conn in reversed(self._opened):
                try:
                    conn.close()
                except Exception:  # noqa: BLE001,S110 - closing is best effort
                    pass
            self._opened.clear()
            self._gateway = None
