"""sshtrust.ca against the real ssh-keygen: keys, serials, pinning, options, KRLs."""

from __future__ import annotations

import re
import stat
import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sshtrust_helpers import keygen, pub

from sshtrust import ca
from sshtrust._run import ToolError
from sshtrust.certificate import CertType, load_certificate


@pytest.fixture
def host_ca(tmp_path: Path) -> Path:
    return ca.create_ca(tmp_path / "ca" / "host_ca", "test host CA")


@pytest.fixture
def user_ca(tmp_path: Path) -> Path:
    return ca.create_ca(tmp_path / "ca" / "user_ca", "test user CA")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_create_ca_new_path_private_key_0600_and_pub_beside(tmp_path: Path) -> None:
    key = ca.create_ca(tmp_path / "cas" / "user_ca", "villeparisis user CA")
    assert key == tmp_path / "cas" / "user_ca"
    assert mode(key) == 0o600
    assert mode(key.parent) == 0o700
    line = pub(key).read_text()
    assert line.startswith("ssh-ed25519 ") and line.rstrip().endswith("villeparisis user CA")


def test_create_ca_existing_key_left_unchanged(host_ca: Path) -> None:
    before = host_ca.read_bytes(), pub(host_ca).read_bytes()
    assert ca.create_ca(host_ca, "another comment") == host_ca
    assert (host_ca.read_bytes(), pub(host_ca).read_bytes()) == before


def test_create_ca_missing_pub_regenerated_from_private(host_ca: Path) -> None:
    fp = ca.fingerprint(pub(host_ca))
    pub(host_ca).unlink()
    ca.create_ca(host_ca, "test host CA")
    assert ca.fingerprint(pub(host_ca)) == fp


def test_create_ca_world_readable_key_refused(host_ca: Path) -> None:
    host_ca.chmod(0o644)
    with pytest.raises(ca.CaError, match="0644"):
        ca.create_ca(host_ca, "x")


def test_fingerprint_plain_and_cert_match_ssh_keygen(tmp_path: Path, host_ca: Path) -> None:
    for kind in ("ed25519", "ecdsa", "rsa"):
        key_pub = keygen(tmp_path / f"h_{kind}", kind)
        cert = ca.sign_host_key(host_ca, key_pub, f"h-{kind}", ["h"])
        out = subprocess.run(
            ["ssh-keygen", "-l", "-E", "sha256", "-f", str(key_pub)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()[1]
        assert ca.fingerprint(key_pub) == out
        assert ca.fingerprint(cert) == out  # a cert's fingerprint is its key's, as ssh-keygen -l
        assert ca.fingerprint(key_pub.read_text()) == out  # key text works too


def test_sign_host_key_serials_unique_and_increasing(tmp_path: Path, host_ca: Path) -> None:
    serials = []
    for i in range(5):
        cert = ca.sign_host_key(host_ca, keygen(tmp_path / f"h{i}"), f"h{i}", [f"h{i}"])
        serials.append(load_certificate(cert).serial)
    assert serials == sorted(set(serials)) and serials[0] >= 1


def test_sign_user_key_concurrent_signers_unique_serials(tmp_path: Path, user_ca: Path) -> None:
    pubs = [keygen(tmp_path / f"u{i}") for i in range(16)]

    def sign(p: Path) -> int:
        cert = ca.sign_user_key(user_ca, p, p.stem, ["sysadmin"])
        return load_certificate(cert).serial

    with ThreadPoolExecutor(8) as pool:
        serials = list(pool.map(sign, pubs))
    assert sorted(serials) == list(range(1, 17))
    assert [e.serial for e in ca.issued(user_ca)] == sorted(serials)


def test_sign_host_key_pinned_fingerprint_match_signs(tmp_path: Path, host_ca: Path) -> None:
    key_pub = keygen(tmp_path / "ssh_host_ed25519_key")
    cert = ca.sign_host_key(
        host_ca,
        key_pub,
        "web-a",
        ["web-a", "10.77.0.11"],
        expected_fingerprint=ca.fingerprint(key_pub),
    )
    assert cert == tmp_path / "ssh_host_ed25519_key-cert.pub"
    parsed = load_certificate(cert)
    assert parsed.cert_type is CertType.HOST
    assert parsed.principals == ("web-a", "10.77.0.11")
    assert parsed.valid_before - parsed.valid_after == 52 * 7 * 86400 + 300


def test_sign_host_key_pinned_fingerprint_mismatch_refused(tmp_path: Path, host_ca: Path) -> None:
    trusted = keygen(tmp_path / "expected")
    presented = keygen(tmp_path / "presented")
    with pytest.raises(ca.FingerprintMismatch, match="pinned"):
        ca.sign_host_key(
            host_ca, presented, "web-a", ["web-a"], expected_fingerprint=ca.fingerprint(trusted)
        )
    assert not (tmp_path / "presented-cert.pub").exists()
    assert ca.issued(host_ca) == []


@pytest.mark.parametrize("principals", [[], ["a,b"], ["with space"], "web-a"])
def test_sign_host_key_bad_principals_refused(tmp_path: Path, host_ca: Path, principals) -> None:
    with pytest.raises(ca.CaError):
        ca.sign_host_key(host_ca, keygen(tmp_path / "h"), "h", principals)


def test_sign_host_key_certificate_as_input_refused(tmp_path: Path, host_ca: Path) -> None:
    cert = ca.sign_host_key(host_ca, keygen(tmp_path / "h"), "h", ["h"])
    with pytest.raises(ca.CaError, match="certificate"):
        ca.sign_host_key(host_ca, cert, "h", ["h"])


def test_sign_host_key_missing_ca_refused(tmp_path: Path) -> None:
    with pytest.raises(ca.CaError, match="does not exist"):
        ca.sign_host_key(tmp_path / "nope", keygen(tmp_path / "h"), "h", ["h"])


def test_sign_host_key_corrupt_ca_error_names_ssh_keygen_stderr(tmp_path: Path) -> None:
    bad = tmp_path / "bad_ca"
    bad.write_text("not a key\n")
    bad.chmod(0o600)
    with pytest.raises(ToolError) as err:
        ca.sign_host_key(bad, keygen(tmp_path / "h"), "h", ["h"])
    assert "sign host key" in str(err.value) and err.value.stderr
    assert ca.issued(bad) == []


def test_sign_user_key_defaults_pty_only_and_ttl(tmp_path: Path, user_ca: Path) -> None:
    before = datetime.now(UTC)
    cert = load_certificate(
        ca.sign_user_key(user_ca, keygen(tmp_path / "alice"), "alice@laptop", ["sysadmin"])
    )
    assert cert.cert_type is CertType.USER
    assert dict(cert.extensions) == {"permit-pty": ""}  # no agent/X11/port forwarding, no rc
    assert dict(cert.critical_options) == {}
    lifetime = cert.valid_before - int(before.timestamp())
    assert 8 * 3600 - 5 <= lifetime <= 8 * 3600 + 5
    assert cert.valid_after <= int(before.timestamp()) - 290  # backdated for clock skew


def test_sign_user_key_forced_command_options_recorded(tmp_path: Path, user_ca: Path) -> None:
    cert = load_certificate(
        ca.sign_user_key(
            user_ca,
            keygen(tmp_path / "backup"),
            "backup@web-a",
            ["backup-push"],
            ttl=timedelta(minutes=30),
            options=(
                "force-command=/usr/local/bin/restic-serve --append-only",
                "no-pty",
                "source-address=10.77.0.0/24",
            ),
        )
    )
    assert dict(cert.critical_options) == {
        "force-command": "/usr/local/bin/restic-serve --append-only",
        "source-address": "10.77.0.0/24",
    }
    assert dict(cert.extensions) == {}
    assert cert.valid_before - cert.valid_after == 30 * 60 + 300


def test_sign_user_key_zero_ttl_refused(tmp_path: Path, user_ca: Path) -> None:
    with pytest.raises(ca.CaError, match="ttl"):
        ca.sign_user_key(user_ca, keygen(tmp_path / "u"), "u", ["sysadmin"], ttl=timedelta(0))


def test_make_key_id_given_time_utc_minute_format() -> None:
    when = datetime(2026, 11, 26, 8, 0, 59, tzinfo=UTC) + timedelta(hours=0)
    assert ca.make_key_id("alice@laptop", when) == "alice@laptop-2026-11-26T08:00Z"
    assert re.fullmatch(r"x-\d{4}-\d\d-\d\dT\d\d:\d\dZ", ca.make_key_id("x"))


def test_issued_register_lists_every_certificate(tmp_path: Path, user_ca: Path) -> None:
    key = keygen(tmp_path / "alice")
    ca.sign_user_key(user_ca, key, "alice-1", ["sysadmin"])
    ca.sign_user_key(user_ca, key, "alice-2", ["sysadmin", "backup"])
    entries = ca.issued(user_ca)
    assert [(e.serial, e.key_id, e.principals) for e in entries] == [
        (1, "alice-1", ("sysadmin",)),
        (2, "alice-2", ("sysadmin", "backup")),
    ]
    assert entries[0].key_fingerprint == ca.fingerprint(key)
    assert mode(user_ca.with_name("user_ca.issued")) == 0o600


def test_init_krl_new_path_empty_krl_revokes_nothing(tmp_path: Path, user_ca: Path) -> None:
    krl = ca.init_krl(tmp_path / "krl" / "revoked.krl", pub(user_ca))
    assert krl.is_file() and krl.stat().st_size > 0
    cert = ca.sign_user_key(user_ca, keygen(tmp_path / "u"), "u", ["sysadmin"])
    assert ca.is_revoked(krl, cert) is False
    assert ca.init_krl(krl, pub(user_ca)) == krl  # idempotent


def test_revoke_by_serial_revokes_only_that_cert(tmp_path: Path, user_ca: Path) -> None:
    krl = ca.init_krl(tmp_path / "revoked.krl", pub(user_ca))
    a = ca.sign_user_key(user_ca, keygen(tmp_path / "a"), "a", ["sysadmin"])
    b = ca.sign_user_key(user_ca, keygen(tmp_path / "b"), "b", ["sysadmin"])
    ca.revoke(krl, pub(user_ca), serials=[load_certificate(a).serial])
    assert ca.is_revoked(krl, a) is True
    assert ca.is_revoked(krl, b) is False


def test_revoke_by_key_id_and_certificate_file(tmp_path: Path, user_ca: Path) -> None:
    krl = ca.init_krl(tmp_path / "revoked.krl", pub(user_ca))
    a = ca.sign_user_key(user_ca, keygen(tmp_path / "a"), "alice-2026-11-26T07:00Z", ["s"])
    b = ca.sign_user_key(user_ca, keygen(tmp_path / "b"), "bob", ["s"])
    c = ca.sign_user_key(user_ca, keygen(tmp_path / "c"), "carol", ["s"])
    ca.revoke(krl, pub(user_ca), key_ids=["alice-2026-11-26T07:00Z"])
    ca.revoke(krl, pub(user_ca), certificates=[b])  # -u: earlier revocations are kept
    assert [ca.is_revoked(krl, x) for x in (a, b, c)] == [True, True, False]


def test_revoke_certificate_of_other_ca_refused(
    tmp_path: Path, user_ca: Path, host_ca: Path
) -> None:
    krl = ca.init_krl(tmp_path / "revoked.krl", pub(user_ca))
    foreign = ca.sign_host_key(host_ca, keygen(tmp_path / "h"), "h", ["h"])
    with pytest.raises(ca.CaError, match="not signed by"):
        ca.revoke(krl, pub(user_ca), certificates=[foreign])


@pytest.mark.parametrize("serial", [0, -1, True])
def test_revoke_invalid_serial_refused(tmp_path: Path, user_ca: Path, serial) -> None:
    with pytest.raises(ca.CaError):
        ca.revoke(tmp_path / "k.krl", pub(user_ca), serials=[serial])


def test_revoke_nothing_refused(tmp_path: Path, user_ca: Path) -> None:
    with pytest.raises(ca.CaError, match="nothing"):
        ca.revoke(tmp_path / "k.krl", pub(user_ca))


def test_is_revoked_missing_krl_raises(tmp_path: Path, user_ca: Path) -> None:
    cert = ca.sign_user_key(user_ca, keygen(tmp_path / "u"), "u", ["s"])
    with pytest.raises(ToolError, match="KRL"):
        ca.is_revoked(tmp_path / "missing.krl", cert)


def test_sign_host_key_failed_signing_serial_never_reused(tmp_path: Path, host_ca: Path) -> None:
    key_pub = keygen(tmp_path / "h")
    blocker = tmp_path / "h-cert.pub"
    blocker.mkdir()  # ssh-keygen cannot write the certificate: signing fails after the reserve
    with pytest.raises(ToolError):
        ca.sign_host_key(host_ca, key_pub, "h", ["h"])
    blocker.rmdir()
    cert = load_certificate(ca.sign_host_key(host_ca, key_pub, "h", ["h"]))
    assert cert.serial == 2  # serial 1 was burnt, not handed out twice
    assert [e.serial for e in ca.issued(host_ca)] == [2]
