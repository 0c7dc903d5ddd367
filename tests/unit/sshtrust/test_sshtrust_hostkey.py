"""sshtrust.hostkey end to end: paramiko/Fabric against real sshd daemons on 127.0.0.1.

Host side: only a valid host certificate for the name connected to is accepted.
User side: sshd (TrustedUserCAKeys, AuthorizedPrincipalsFile, AuthorizedKeysFile none,
RevokedKeys) accepts only a valid user certificate from the user CA (R-GDPR-5).
"""

from __future__ import annotations

import socket
from pathlib import Path

import paramiko
import pytest
from fabric import Connection
from sshtrust_helpers import HOST_NAME, Pki, Sshd, keygen, pub

from sshtrust import ca
from sshtrust._run import SshTrustError
from sshtrust.hostkey import (
    CERT_HOST_KEY_ALGORITHMS,
    CertificateCheckingTransport,
    HostCertificatePolicy,
    HostKeyRefused,
    HostTrust,
    harden,
    load_user_key,
    make_connection,
)


@pytest.fixture(scope="module")
def admin_key(pki: Pki) -> Path:
    return pki.user_key("admin")


@pytest.fixture(scope="module")
def good_sshd(sshd) -> Sshd:
    return sshd.start("good")


def connect(pki: Pki, daemon: Sshd, key: Path | None, name: str = HOST_NAME, **kw) -> Connection:
    return make_connection(
        "127.0.0.1",
        "root",
        daemon.port,
        host_ca_pub=pub(pki.host_ca),
        krl=kw.pop("krl", pki.host_krl),
        expected_name=name,
        user_key=key,
        **kw,
    )


def run(conn: Connection, command: str = "echo certified") -> str:
    try:
        return conn.run(command, hide=True, in_stream=False).stdout.strip()
    finally:
        conn.close()


# --- host side -----------------------------------------------------------------------------


@pytest.mark.parametrize("key_type", ["ed25519", "ecdsa", "rsa"])
def test_make_connection_good_host_cert_runs_command(sshd, pki, admin_key, key_type) -> None:
    daemon = sshd.start("good", key_type=key_type)
    conn = connect(pki, daemon, admin_key)
    conn.open()
    assert conn.transport.host_key_type in CERT_HOST_KEY_ALGORITHMS
    assert conn.host_certificate is not None
    assert conn.host_certificate.key_fingerprint == ca.fingerprint(daemon.host_pub)
    assert run(conn, "echo certified; id -un") == "certified\nroot"


def test_make_connection_through_gateway_both_certs_verified(sshd, pki) -> None:
    bastion = sshd.start("good", principals=["ops", "bastion.example"])
    target = sshd.start("good", principals=["web-b"])
    # The bastion hop needs port forwarding, which default certs do not grant.
    jumper = pki.user_key("jumper", options=("permit-pty", "permit-port-forwarding"))
    gateway = connect(pki, bastion, jumper, name="bastion.example")
    conn = connect(pki, target, jumper, name="web-b", gateway=gateway)
    try:
        assert run(conn) == "certified"
        assert gateway.host_certificate.principals == ("ops", "bastion.example")
        assert conn.host_certificate.principals == ("web-b",)
    finally:
        gateway.close()


def test_make_connection_rogue_bastion_refused_before_target(sshd, pki) -> None:
    bastion = sshd.start("rogue", principals=["bastion.example"])
    target = sshd.start("good")
    jumper = pki.user_key("jumper-rogue", options=("permit-pty", "permit-port-forwarding"))
    gateway = connect(pki, bastion, jumper, name="bastion.example")
    conn = connect(pki, target, jumper, gateway=gateway)
    with pytest.raises(HostKeyRefused, match="untrusted CA"):
        run(conn)
    assert "publickey" not in bastion.log()  # no credential was offered to the rogue bastion


def test_make_connection_unverified_gateway_refused(good_sshd, pki, admin_key) -> None:
    plain_gateway = Connection("127.0.0.1", user="root", port=good_sshd.port)
    with pytest.raises(SshTrustError, match="gateway"):
        connect(pki, good_sshd, admin_key, gateway=plain_gateway)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("rogue", "untrusted CA"),
        ("expired", "expired"),
        ("none", "offers no host certificate"),
    ],
)
def test_make_connection_bad_host_refused_no_credential_sent(
    sshd, pki, admin_key, kind, message
) -> None:
    daemon = sshd.start(kind)
    with pytest.raises(HostKeyRefused, match=message):
        run(connect(pki, daemon, admin_key))
    assert "publickey" not in daemon.log()  # refused during key exchange, before user auth


def test_make_connection_wrong_name_refused(good_sshd, pki, admin_key) -> None:
    with pytest.raises(HostKeyRefused, match="'web-z' is not among the principals"):
        run(connect(pki, good_sshd, admin_key, name="web-z"))


def test_make_connection_revoked_host_cert_refused(sshd, pki, admin_key, tmp_path) -> None:
    daemon = sshd.start("good")
    krl = ca.init_krl(tmp_path / "host.krl", pub(pki.host_ca))
    assert run(connect(pki, daemon, admin_key, krl=krl)) == "certified"
    ca.revoke(krl, pub(pki.host_ca), certificates=[daemon.host_cert])
    with pytest.raises(HostKeyRefused, match="revoked"):
        run(connect(pki, daemon, admin_key, krl=krl))


def test_make_connection_default_host_name_is_principal(good_sshd, pki, admin_key) -> None:
    """Connecting by address works when the address is a principal (the lab signs both)."""
    conn = make_connection(
        "127.0.0.1", "root", good_sshd.port, host_ca_pub=pub(pki.host_ca), user_key=admin_key
    )
    assert run(conn) == "certified"


def test_transport_rekey_same_cert_keeps_working(good_sshd, pki, admin_key) -> None:
    conn = connect(pki, good_sshd, admin_key)
    conn.open()
    first = conn.host_certificate
    conn.transport.renegotiate_keys()
    assert conn.host_certificate == first
    assert run(conn) == "certified"


def test_policy_plain_paramiko_transport_plain_key_refused(good_sshd, pki, admin_key) -> None:
    """The policy alone (stock Transport, which prefers plain keys) still refuses."""
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(
        HostCertificatePolicy(HostTrust.from_files(pub(pki.host_ca)), HOST_NAME)
    )
    try:
        with pytest.raises(HostKeyRefused, match="plain"):
            client.connect(
                "127.0.0.1",
                good_sshd.port,
                "root",
                pkey=load_user_key(admin_key),
                look_for_keys=False,
                allow_agent=False,
            )
    finally:
        client.close()


def test_harden_fabric_connection_enforces_certificates(sshd, pki, admin_key) -> None:
    daemon = sshd.start("rogue")
    conn = Connection(
        "127.0.0.1",
        user="root",
        port=daemon.port,
        connect_kwargs={"pkey": load_user_key(admin_key), "look_for_keys": False},
    )
    harden(conn, HostTrust.from_files(pub(pki.host_ca)), HOST_NAME)
    with pytest.raises(HostKeyRefused, match="untrusted CA"):
        run(conn)


# --- the kex hook itself (no network): paramiko's signature check stays in force ------------


@pytest.fixture
def kex_transport(pki: Pki):
    left, right = socket.socketpair()
    t = CertificateCheckingTransport(
        left, trust=HostTrust.from_files(pub(pki.host_ca)), expected_name=HOST_NAME
    )
    t.host_key_type = "ssh-ed25519-cert-v01@openssh.com"
    t.H = b"exchange hash of this session"
    yield t
    left.close()
    right.close()


@pytest.fixture(scope="module")
def host_key_and_cert(pki: Pki, tmp_path_factory) -> tuple[paramiko.PKey, bytes]:
    d = tmp_path_factory.mktemp("kex")
    key_pub = keygen(d / "host")
    cert = ca.sign_host_key(pki.host_ca, key_pub, "kex", [HOST_NAME])
    return paramiko.PKey.from_path(d / "host"), paramiko.PublicBlob.from_file(str(cert)).key_blob


def test_verify_key_signature_by_certified_key_accepted(kex_transport, host_key_and_cert) -> None:
    key, cert_blob = host_key_and_cert
    kex_transport._verify_key(cert_blob, key.sign_ssh_data(kex_transport.H).asbytes())
    assert kex_transport.host_certificate.principals == (HOST_NAME,)


def test_verify_key_stolen_cert_other_private_key_refused(
    kex_transport, host_key_and_cert, tmp_path
) -> None:
    """A server replaying a valid certificate without its private key fails the kex check."""
    _, cert_blob = host_key_and_cert
    keygen(tmp_path / "impostor")
    impostor = paramiko.PKey.from_path(tmp_path / "impostor")
    with pytest.raises(paramiko.SSHException, match="Signature verification"):
        kex_transport._verify_key(cert_blob, impostor.sign_ssh_data(kex_transport.H).asbytes())
    assert kex_transport.host_certificate is None


def test_verify_key_plain_algorithm_negotiated_refused(kex_transport, host_key_and_cert) -> None:
    key, cert_blob = host_key_and_cert
    kex_transport.host_key_type = "ssh-ed25519"
    with pytest.raises(HostKeyRefused, match="not a cert"):
        kex_transport._verify_key(cert_blob, key.sign_ssh_data(kex_transport.H).asbytes())


def test_preferred_keys_only_certificate_algorithms(kex_transport) -> None:
    assert kex_transport.preferred_keys == CERT_HOST_KEY_ALGORITHMS
    kex_transport.disabled_algorithms = {"keys": ["ssh-rsa", "rsa-sha2-512"]}
    assert "rsa-sha2-512-cert-v01@openssh.com" not in kex_transport.preferred_keys
    assert "ssh-ed25519-cert-v01@openssh.com" in kex_transport.preferred_keys


# --- user side: what sshd accepts --------------------------------------------------------------


def test_sshd_user_cert_from_user_ca_logs_in_with_empty_krl(good_sshd, pki, admin_key) -> None:
    assert pki.user_krl.stat().st_size > 0  # RevokedKeys points at the empty KRL from init_krl
    assert run(connect(pki, good_sshd, admin_key)) == "certified"


@pytest.mark.parametrize(
    "case",
    ["expired", "other_ca", "wrong_principal", "host_cert_as_user"],
)
def test_sshd_bad_user_cert_refused(good_sshd, pki, case) -> None:
    if case == "expired":
        key = pki.user_key(
            "expired-user", raw=["-I", "old", "-n", "sysadmin", "-V", "20200101:20200102"]
        )
    elif case == "other_ca":
        key = pki.user_key("rogue-user", ca_key=pki.rogue_ca)
    elif case == "wrong_principal":
        key = pki.user_key("intern", principals=["webmaster"])
    else:
        key = pki.user_key("host-as-user", raw=["-h", "-I", "h", "-n", "sysadmin"])
        conn = connect(pki, good_sshd, None)
        pkey = paramiko.PKey.from_path(key)  # loads the (host) -cert.pub beside it
        conn.connect_kwargs = {**conn.connect_kwargs, "pkey": pkey}
        with pytest.raises(paramiko.AuthenticationException):
            run(conn)
        return
    with pytest.raises(paramiko.AuthenticationException):
        run(connect(pki, good_sshd, key))


def test_sshd_plain_user_key_refused(good_sshd, pki, tmp_path) -> None:
    keygen(tmp_path / "plain")
    conn = connect(pki, good_sshd, None)
    conn.connect_kwargs = {
        **conn.connect_kwargs,
        "pkey": paramiko.PKey.from_path(tmp_path / "plain"),
    }
    with pytest.raises(paramiko.AuthenticationException):
        run(conn)


def test_sshd_revoked_user_cert_refused(sshd, pki, tmp_path) -> None:
    krl = ca.init_krl(tmp_path / "user.krl", pub(pki.user_ca))
    daemon = sshd.start("good", revoked_keys=krl)
    key = pki.user_key("leaver")
    assert run(connect(pki, daemon, key)) == "certified"
    ca.revoke(krl, pub(pki.user_ca), certificates=[Path(f"{key}-cert.pub")])
    with pytest.raises(paramiko.AuthenticationException):
        run(connect(pki, daemon, key))


def test_sshd_missing_revoked_keys_file_refuses_everyone(sshd, pki, admin_key, tmp_path) -> None:
    """Why init_krl exists: RevokedKeys naming a missing file makes sshd refuse every login."""
    daemon = sshd.start("good", revoked_keys=tmp_path / "never-created.krl")
    with pytest.raises(paramiko.AuthenticationException):
        run(connect(pki, daemon, admin_key))


def test_load_user_key_missing_cert_refused(tmp_path) -> None:
    keygen(tmp_path / "nocert")
    with pytest.raises(SshTrustError, match="missing"):
        load_user_key(tmp_path / "nocert")


def test_load_user_key_cert_of_other_key_refused(pki, admin_key, tmp_path) -> None:
    keygen(tmp_path / "other")
    with pytest.raises(SshTrustError, match="another key"):
        load_user_key(tmp_path / "other", Path(f"{admin_key}-cert.pub"))


def test_load_user_key_host_cert_refused(pki, tmp_path) -> None:
    key_pub = keygen(tmp_path / "hostish")
    ca.sign_host_key(pki.host_ca, key_pub, "h", ["h"])
    with pytest.raises(SshTrustError, match="host certificate"):
        load_user_key(tmp_path / "hostish")
