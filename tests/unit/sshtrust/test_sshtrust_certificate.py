"""sshtrust.certificate against certificates made by the real ssh-keygen."""

from __future__ import annotations

import base64
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sshtrust_helpers import keygen, sign_raw

from sshtrust import ca
from sshtrust._wire import string
from sshtrust.certificate import (
    FOREVER,
    CertificateError,
    CertType,
    SignatureError,
    load_certificate,
    parse_certificate,
)
from sshtrust.keys import KeyFormatError, fingerprint, read_pubkey

KEY_TYPES = ["ed25519", "ecdsa", "rsa"]


def ssh_keygen_L(cert: Path) -> str:
    return subprocess.run(
        ["ssh-keygen", "-L", "-f", str(cert)], capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("keys")
    return {kind: keygen(d / f"id_{kind}", kind) for kind in KEY_TYPES}


@pytest.fixture(scope="module")
def cas(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """CA keys of every type OpenSSH signs with (our CAs are ed25519; others must parse too)."""
    d = tmp_path_factory.mktemp("cas")
    return {kind: keygen(d / f"ca_{kind}", kind).with_suffix("") for kind in KEY_TYPES}


def pub_of(private: Path) -> Path:
    return private.with_name(private.name + ".pub")


def fresh_copy(pub: Path, tmp_path: Path) -> Path:
    target = tmp_path / pub.name
    target.write_bytes(pub.read_bytes())
    return target


@pytest.mark.parametrize("key_kind", KEY_TYPES)
@pytest.mark.parametrize("ca_kind", KEY_TYPES)
def test_parse_certificate_host_cert_all_key_and_ca_types_fields_and_signature(
    tmp_path: Path, keys: dict[str, Path], cas: dict[str, Path], key_kind: str, ca_kind: str
) -> None:
    pub = fresh_copy(keys[key_kind], tmp_path)
    cert_path = sign_raw(
        cas[ca_kind],
        pub,
        "-h",
        "-I",
        f"web-a-{key_kind}",
        "-n",
        "web-a,10.77.0.11",
        "-V",
        "20260101000000:20270101000000",
        "-z",
        "4242",
    )
    cert = load_certificate(cert_path)
    cert.verify_signature()
    listing = ssh_keygen_L(cert_path)
    assert cert.cert_type is CertType.HOST
    assert cert.key_id == f"web-a-{key_kind}"
    assert cert.serial == 4242
    assert cert.principals == ("web-a", "10.77.0.11")
    assert cert.key_fingerprint == ca.fingerprint(pub)
    assert cert.ca_fingerprint == ca.fingerprint(cas[ca_kind].with_name(cas[ca_kind].name + ".pub"))
    assert cert.key_fingerprint in listing and cert.ca_fingerprint in listing
    assert cert.valid_after == int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
    assert cert.valid_before == int(datetime(2027, 1, 1, tzinfo=UTC).timestamp())
    assert cert.public_key_blob == read_pubkey(pub).blob
    assert cert.signature_key == read_pubkey(pub_of(cas[ca_kind])).blob
    assert len(cert.nonce) >= 16
    if ca_kind == "rsa":
        assert cert.signature_type == "rsa-sha2-512"  # ssh-keygen's default for RSA CAs


def test_parse_certificate_user_cert_options_extensions(tmp_path: Path, keys, cas) -> None:
    pub = fresh_copy(keys["ed25519"], tmp_path)
    cert_path = sign_raw(
        cas["ed25519"],
        pub,
        "-I",
        "alice@laptop",
        "-n",
        "sysadmin,backup",
        "-O",
        "clear",
        "-O",
        "force-command=/bin/true arg",
        "-O",
        "source-address=10.0.0.0/8",
        "-O",
        "permit-pty",
        "-O",
        "permit-port-forwarding",
        "-V",
        "always:forever",
    )
    cert = load_certificate(cert_path)
    cert.verify_signature()
    assert cert.cert_type is CertType.USER
    assert cert.principals == ("sysadmin", "backup")
    assert dict(cert.critical_options) == {
        "force-command": "/bin/true arg",
        "source-address": "10.0.0.0/8",
    }
    assert dict(cert.extensions) == {"permit-port-forwarding": "", "permit-pty": ""}
    assert cert.valid_after == 0 and cert.valid_before == FOREVER
    assert cert.valid_before_dt is None
    assert cert.valid_at(datetime(2100, 1, 1, tzinfo=UTC))
    assert "principals=sysadmin,backup" in cert.describe() and "forever" in cert.describe()


def test_valid_at_boundaries_match_openssh_rule(tmp_path: Path, keys, cas) -> None:
    pub = fresh_copy(keys["ed25519"], tmp_path)
    cert = load_certificate(
        sign_raw(cas["ed25519"], pub, "-I", "x", "-n", "x", "-V", "20260101000000:20260102000000")
    )
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = datetime(2026, 1, 2, tzinfo=UTC)
    assert not cert.valid_at(datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC))
    assert cert.valid_at(start)
    assert not cert.valid_at(end)  # valid_before is exclusive, as in OpenSSH


def test_verify_signature_tampered_field_fails(tmp_path: Path, keys, cas) -> None:
    pub = fresh_copy(keys["ed25519"], tmp_path)
    cert = load_certificate(sign_raw(cas["ed25519"], pub, "-h", "-I", "web-a", "-n", "web-a"))
    forged = cert.blob.replace(b"web-a", b"web-b")  # key id and principal renamed
    with pytest.raises(SignatureError):
        parse_certificate(forged).verify_signature()


def test_verify_signature_ca_key_swapped_fails(tmp_path: Path, keys, cas) -> None:
    """A rogue cert relabelled with the trusted CA's key must not verify (another key type:
    refused when parsed; the same type: refused by the signature check)."""
    pub = fresh_copy(keys["ed25519"], tmp_path)
    trusted = read_pubkey(pub_of(cas["ed25519"])).blob
    cert = load_certificate(sign_raw(cas["rsa"], pub, "-h", "-I", "h", "-n", "h"))
    forged = cert.blob.replace(string(cert.signature_key), string(trusted))
    with pytest.raises((CertificateError, SignatureError)):
        parse_certificate(forged).verify_signature()
    rogue = load_certificate(sign_raw(cas["ed25519"], pub, "-h", "-I", "h", "-n", "h"))
    forged = rogue.blob.replace(string(rogue.signature_key), string(read_pubkey(pub).blob))
    with pytest.raises(SignatureError, match="does not verify"):
        parse_certificate(forged).verify_signature()


def test_load_certificate_plain_key_refused(keys) -> None:
    with pytest.raises(CertificateError, match="plain key"):
        load_certificate(keys["ed25519"])


def test_read_pubkey_mislabelled_line_refused(tmp_path: Path, keys, cas) -> None:
    pub = fresh_copy(keys["ed25519"], tmp_path)
    cert_line = sign_raw(cas["ed25519"], pub, "-I", "x", "-n", "x").read_text()
    relabelled = "ssh-ed25519 " + cert_line.split()[1]
    with pytest.raises(KeyFormatError, match="label"):
        read_pubkey(relabelled)


def test_parse_certificate_trailing_bytes_refused(tmp_path: Path, keys, cas) -> None:
    pub = fresh_copy(keys["ed25519"], tmp_path)
    cert = load_certificate(sign_raw(cas["ed25519"], pub, "-I", "x", "-n", "x"))
    with pytest.raises(CertificateError, match="unparsed data|trailing"):
        parse_certificate(cert.blob + b"\0")


@pytest.fixture(scope="module")
def sample_blob(tmp_path_factory: pytest.TempPathFactory, keys, cas) -> bytes:
    d = tmp_path_factory.mktemp("sample")
    pub = fresh_copy(keys["ecdsa"], d)
    path = sign_raw(cas["ed25519"], pub, "-h", "-I", "fuzz", "-n", "a,b", "-z", "7")
    return base64.b64decode(path.read_text().split()[1])


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_parse_certificate_corrupted_blob_clean_error_only(sample_blob: bytes, data) -> None:
    """Any truncation or byte flip gives CertificateError/SignatureError, never a crash, and
    never a certificate that still verifies."""
    blob = bytearray(sample_blob)
    if data.draw(st.booleans()):
        blob = blob[: data.draw(st.integers(0, len(blob) - 1))]
    else:
        i = data.draw(st.integers(0, len(blob) - 1))
        blob[i] ^= data.draw(st.integers(1, 255))
    try:
        parse_certificate(bytes(blob)).verify_signature()
    except (CertificateError, SignatureError):
        return
    pytest.fail("a corrupted certificate parsed and verified")


def test_verify_signature_sha1_rsa_ca_signature_refused(tmp_path: Path, keys, cas) -> None:
    """cryptography verifies ssh-rsa (SHA-1) CA signatures; OpenSSH >= 8.2 does not, nor we."""
    pub = fresh_copy(keys["ed25519"], tmp_path)
    cert = load_certificate(sign_raw(cas["rsa"], pub, "-t", "ssh-rsa", "-I", "h", "-n", "h"))
    assert cert.signature_type == "ssh-rsa"
    with pytest.raises(SignatureError, match="'ssh-rsa' refused"):
        cert.verify_signature()


def test_verify_signature_small_rsa_ca_refused(tmp_path: Path, keys) -> None:
    small = tmp_path / "ca_small"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "rsa", "-b", "1024", "-N", "", "-f", str(small)],
        check=True, stdin=subprocess.DEVNULL,
    )
    pub = fresh_copy(keys["ed25519"], tmp_path)
    cert = load_certificate(sign_raw(small, pub, "-I", "h", "-n", "h"))
    with pytest.raises(SignatureError, match="1024 bits is too small"):
        cert.verify_signature()


@pytest.mark.parametrize(
    "label",
    [f"{t}-cert-v01@openssh.com" for t in ("sk-ssh-ed25519", "ssh-dss", "x")],
)
def test_parse_certificate_unknown_key_type_refused(tmp_path: Path, keys, cas, label) -> None:
    pub = fresh_copy(keys["ed25519"], tmp_path)
    cert = load_certificate(sign_raw(cas["ed25519"], pub, "-I", "h", "-n", "h"))
    relabelled = string(label.encode()) + cert.blob[len(string(cert.key_type.encode())) :]
    with pytest.raises(CertificateError, match="malformed certificate"):
        parse_certificate(relabelled)


def test_parse_certificate_plain_key_blob_refused(keys) -> None:
    with pytest.raises(CertificateError, match="plain key"):
        parse_certificate(read_pubkey(keys["ed25519"]).blob)


def test_fingerprint_certificate_is_certified_key_fingerprint(tmp_path: Path, keys, cas) -> None:
    pub = fresh_copy(keys["ecdsa"], tmp_path)
    cert_path = sign_raw(cas["ed25519"], pub, "-I", "h", "-n", "h")
    assert fingerprint(cert_path) == fingerprint(pub) == load_certificate(cert_path).key_fingerprint
    assert fingerprint(cert_path) in ssh_keygen_L(cert_path)
