"""The CA as the admin uses it (R-GDPR-5): keys private, short-lived user certificates for known
principals only, revocation, and host signing pinned to the inventory's fingerprint."""
from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import paramiko
import pytest

from engine import ca_admin as ca
from engine.access import PinnedHostKey
from engine.facts import MISSING, PathFact
from engine.inventory import Inventory
from engine.resources import File
from roles.base import sshd
from sshtrust import ca as sshca
from sshtrust.certificate import load_certificate
from sshtrust.keys import fingerprint


def keypair(tmp_path: Path, name: str) -> Path:
    key = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    d = tmp_path / "ca"
    ca.create(d, "prod")
    return d


def test_create_makes_private_cas_and_empty_krls_and_is_idempotent(ca_dir: Path) -> None:
    assert oct(ca_dir.stat().st_mode & 0o777) == oct(0o700)
    for name in ("user_ca", "host_ca"):
        assert (ca_dir / name).stat().st_mode & 0o777 == 0o600
        assert (ca_dir / f"{name}.krl").is_file()
    first = (ca_dir / "user_ca").read_bytes()
    pubs = ca.create(ca_dir, "prod")
    assert (ca_dir / "user_ca").read_bytes() == first
    assert pubs["user_ca"].startswith("ssh-ed25519 ") and "prod-user-ca" in pubs["user_ca"]


@pytest.mark.parametrize("text,expected", [("30m", timedelta(minutes=30)),
                                           ("8h", timedelta(hours=8)),
                                           ("1d", timedelta(days=1))])
def test_parse_ttl_units(text: str, expected: timedelta) -> None:
    assert ca.parse_ttl(text) == expected


@pytest.mark.parametrize("text", ["2d", "0h", "8", "eight hours", "-1h"])
def test_parse_ttl_long_lived_or_malformed_is_refused(text: str) -> None:
    with pytest.raises(ca.CaTaskError):
        ca.parse_ttl(text)


def test_sign_user_known_principal_short_lived_with_serial_and_forwarding_for_proxyjump(
        ca_dir: Path, tmp_path: Path) -> None:
    key = keypair(tmp_path, "id_ed25519")
    cert_path = ca.sign_user(ca_dir, key.with_name("id_ed25519.pub"), ["sysadmin"],
                             timedelta(hours=8), ["sysadmin", "ci-deploy"], key_id="alice@x")
    cert = load_certificate(cert_path)
    assert cert.principals == ("sysadmin",) and cert.key_id == "alice@x"
    assert cert.serial >= 1
    assert cert.valid_before - cert.valid_after <= 8 * 3600 + 300
    assert set(cert.extensions) == {"permit-pty", "permit-port-forwarding"}
    again = load_certificate(ca.sign_user(ca_dir, key.with_name("id_ed25519.pub"),
                                          ["sysadmin"], timedelta(hours=1), ["sysadmin"]))
    assert again.serial != cert.serial


def test_sign_user_ci_certificate_has_no_terminal(ca_dir: Path, tmp_path: Path) -> None:
    key = keypair(tmp_path, "ci")
    cert = load_certificate(ca.sign_user(ca_dir, key.with_name("ci.pub"), ["ci-deploy"],
                                         timedelta(hours=1), ["ci-deploy"], ci=True))
    assert set(cert.extensions) == {"permit-port-forwarding"}


def test_sign_user_unknown_principal_is_refused(ca_dir: Path, tmp_path: Path) -> None:
    key = keypair(tmp_path, "id")
    with pytest.raises(ca.CaTaskError, match="unknown principal"):
        ca.sign_user(ca_dir, key.with_name("id.pub"), ["root"], timedelta(hours=1),
                     ["sysadmin"])


def test_revoke_by_serial_lands_in_the_user_krl(ca_dir: Path, tmp_path: Path) -> None:
    key = keypair(tmp_path, "id")
    cert_path = ca.sign_user(ca_dir, key.with_name("id.pub"), ["sysadmin"], timedelta(hours=1),
                             ["sysadmin"])
    krl = ca.revoke(ca_dir, serials=[load_certificate(cert_path).serial])
    assert krl == ca_dir / "user_ca.krl"
    assert sshca.is_revoked(krl, cert_path)


def test_krl_role_pushes_the_krl_bytes_unchanged() -> None:
    [r] = ca.krl_role(b"SSHKRL\x00").resources
    assert isinstance(r, File) and r.path == "/etc/ssh/revoked_keys.krl"
    assert r.content == b"SSHKRL\x00" and r.mode == 0o644 and not r.create_only


def test_host_cert_resources_debian_sshd_config_gets_a_drop_in() -> None:
    res = ca.host_cert_resources("ssh-ed25519-cert-v01@openssh.com AAAA", MISSING)
    assert [r.path for r in res] == [sshd.HOST_CERT, sshd.HOST_CERT_DROPIN]
    assert all(r.notify == ("reload-sshd",) for r in res)


def test_host_cert_resources_our_sshd_config_needs_only_the_certificate() -> None:
    ours = f"HostCertificate {sshd.HOST_CERT}\n".encode()
    res = ca.host_cert_resources("cert", PathFact(True, "file", 0o600, "root", "root", "",
                                                  ours))
    assert [r.path for r in res] == [sshd.HOST_CERT]


def test_sign_host_pinned_key_is_signed_for_the_inventory_principals(
        ca_dir: Path, tmp_path: Path, prod: Inventory) -> None:
    key = keypair(tmp_path, "host")
    pub = key.with_name("host.pub")
    host = prod.host("web-villeparisis")
    pinned = type(host)(**{**host.__dict__, "fingerprint": fingerprint(pub)})
    text = ca.sign_host(ca_dir, "prod", pinned, pub.read_text())
    out = tmp_path / "c-cert.pub"
    out.write_text(text)
    cert = load_certificate(out)
    assert cert.principals == pinned.cert_principals
    assert cert.key_id == "prod-host-web-villeparisis"


def test_sign_host_other_key_than_the_pinned_one_is_refused(
        ca_dir: Path, tmp_path: Path, prod: Inventory) -> None:
    key = keypair(tmp_path, "mitm")
    with pytest.raises(sshca.FingerprintMismatch):
        ca.sign_host(ca_dir, "prod", prod.host("proxy"), key.with_name("mitm.pub").read_text())


def test_pinned_host_key_policy_accepts_only_the_pinned_fingerprint(tmp_path: Path) -> None:
    key = paramiko.Ed25519Key.from_private_key_file(str(keypair(tmp_path, "h")))
    other = paramiko.Ed25519Key.from_private_key_file(str(keypair(tmp_path, "o")))
    pin = fingerprint(str(tmp_path / "h.pub"))
    policy = PinnedHostKey("proxy", pin)
    policy.missing_host_key(paramiko.SSHClient(), "10.0.0.1", key)  # no exception
    with pytest.raises(paramiko.SSHException, match="pins"):
        policy.missing_host_key(paramiko.SSHClient(), "10.0.0.1", other)
