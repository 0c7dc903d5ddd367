"""sshtrust.hostcert: the acceptance rules for a host certificate, without a network."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sshtrust_helpers import keygen, pub, sign_raw

from sshtrust import ca
from sshtrust.hostcert import HostCertificateError, HostTrust, verify_host_certificate
from sshtrust.keys import read_pubkey


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("hostcert")
    host_ca = ca.create_ca(d / "host_ca", "host CA")
    return {
        "dir": d,
        "host_ca": host_ca,
        "next_ca": ca.create_ca(d / "next_host_ca", "next host CA"),
        "rogue_ca": ca.create_ca(d / "rogue_ca", "rogue CA"),
        "krl": ca.init_krl(d / "host.krl", pub(host_ca)),
    }


def blob(cert: Path) -> bytes:
    return base64.b64decode(cert.read_text().split()[1])


def host_cert(env, name: str, *, ca_key: str = "host_ca", principals=("web-a",), **kw) -> Path:
    key_pub = keygen(env["dir"] / name)
    return ca.sign_host_key(env[ca_key], key_pub, name, list(principals), **kw)


def trust(env, **kw) -> HostTrust:
    return HostTrust.from_files(pub(env["host_ca"]), env["krl"], **kw)


def test_check_good_host_cert_accepted(env) -> None:
    cert = trust(env).check(blob(host_cert(env, "good")), "web-a")
    assert cert.principals == ("web-a",)


def test_check_name_case_insensitive_accepted(env) -> None:
    trust(env).check(blob(host_cert(env, "case")), "WEB-A")


def test_check_wrong_name_refused(env) -> None:
    with pytest.raises(HostCertificateError, match="not among the principals"):
        trust(env).check(blob(host_cert(env, "wrongname")), "web-b")


def test_check_rogue_ca_refused(env) -> None:
    with pytest.raises(HostCertificateError, match="untrusted CA"):
        trust(env).check(blob(host_cert(env, "rogue", ca_key="rogue_ca")), "web-a")


def test_check_ca_rollover_both_cas_accepted(env) -> None:
    both = HostTrust.from_files([pub(env["host_ca"]), pub(env["next_ca"])], env["krl"])
    both.check(blob(host_cert(env, "old-ca")), "web-a")
    both.check(blob(host_cert(env, "new-ca", ca_key="next_ca")), "web-a")


def test_check_plain_host_key_refused(env) -> None:
    plain = read_pubkey(keygen(env["dir"] / "plain")).blob
    with pytest.raises(HostCertificateError, match="plain ssh-ed25519 key"):
        trust(env).check(plain, "web-a")


def test_check_user_cert_presented_as_host_refused(env) -> None:
    key_pub = keygen(env["dir"] / "usercert")
    cert = ca.sign_user_key(env["host_ca"], key_pub, "web-a", ["web-a"])
    with pytest.raises(HostCertificateError, match="user certificate"):
        trust(env).check(blob(cert), "web-a")


def test_check_expired_cert_refused(env) -> None:
    cert = host_cert(env, "shortlived", validity="-10m:+5m")
    later = HostTrust.from_files(
        pub(env["host_ca"]), env["krl"], clock=lambda: datetime.now(UTC) + timedelta(minutes=6)
    )
    with pytest.raises(HostCertificateError, match="expired"):
        later.check(blob(cert), "web-a")


def test_check_not_yet_valid_cert_refused(env) -> None:
    cert = host_cert(env, "future", validity="+1h:+2h")
    with pytest.raises(HostCertificateError, match="not yet valid"):
        trust(env).check(blob(cert), "web-a")


def test_check_cert_without_principals_refused(env) -> None:
    # OpenSSH's client would take an empty list as "any host"; our CA refuses to issue one.
    key_pub = keygen(env["dir"] / "wildcard")
    cert = sign_raw(env["host_ca"], key_pub, "-h", "-I", "wildcard")
    with pytest.raises(HostCertificateError, match="no principals"):
        trust(env).check(blob(cert), "web-a")


def test_check_revoked_serial_refused_other_cert_accepted(env, tmp_path: Path) -> None:
    krl = ca.init_krl(tmp_path / "host.krl", pub(env["host_ca"]))
    revoked = host_cert(env, "revoked")
    kept = host_cert(env, "kept")
    ca.revoke(krl, pub(env["host_ca"]), certificates=[revoked])
    t = HostTrust.from_files(pub(env["host_ca"]), krl)
    with pytest.raises(HostCertificateError, match="revoked"):
        t.check(blob(revoked), "web-a")
    t.check(blob(kept), "web-a")


def test_check_revoked_key_id_refused(env, tmp_path: Path) -> None:
    krl = ca.init_krl(tmp_path / "host.krl", pub(env["host_ca"]))
    cert = host_cert(env, "byid")
    ca.revoke(krl, pub(env["host_ca"]), key_ids=["byid"])
    with pytest.raises(HostCertificateError, match="revoked"):
        HostTrust.from_files(pub(env["host_ca"]), krl).check(blob(cert), "web-a")


def test_check_missing_krl_refused(env, tmp_path: Path) -> None:
    t = HostTrust.from_files(pub(env["host_ca"]), tmp_path / "absent.krl")
    with pytest.raises(HostCertificateError, match="KRL .* is missing"):
        t.check(blob(host_cert(env, "nokrl")), "web-a")


def test_check_no_krl_configured_accepted(env) -> None:
    HostTrust.from_files(pub(env["host_ca"])).check(blob(host_cert(env, "nokrlcfg")), "web-a")


def test_verify_host_certificate_garbage_refused(env) -> None:
    ca_blob = read_pubkey(pub(env["host_ca"])).blob
    with pytest.raises(HostCertificateError, match="unreadable"):
        verify_host_certificate(b"\x00\x00", "web-a", [ca_blob])


def test_host_trust_no_ca_refused() -> None:
    with pytest.raises(Exception, match="at least one"):
        HostTrust(())


def test_host_trust_certificate_as_ca_refused(env) -> None:
    with pytest.raises(Exception, match="plain key"):
        HostTrust.from_files(host_cert(env, "notaca"))
