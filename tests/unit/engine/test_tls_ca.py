"""engine/tls_ca.py: the internal X.509 CA of the proxy -> web hop (issue 19 item 6, R-GDPR-2,
R-HOST-1): the CA, the proxy's client leaf, each web host's server leaf, renewal."""
from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from engine import tls_ca


def _cert(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def _eku(cert: x509.Certificate) -> list:
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_create_empty_directory_writes_p256_ca_key_0600_for_ten_years(tmp_path):
    assert tls_ca.create(tmp_path / "ca", "prod") is True
    key, cert = tls_ca.ca_paths(tmp_path / "ca")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    c = _cert(cert.read_bytes())
    assert c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert c.public_key().curve.name == "secp256r1"
    assert c.not_valid_after_utc - datetime.now(UTC) > timedelta(days=3640)


def test_create_existing_ca_keeps_it(tmp_path):
    tls_ca.create(tmp_path, "prod")
    before = tls_ca.ca_paths(tmp_path)[1].read_bytes()
    assert tls_ca.create(tmp_path, "prod") is False
    assert tls_ca.ca_paths(tmp_path)[1].read_bytes() == before


def test_create_key_without_certificate_refuses_naming_the_file(tmp_path):
    tls_ca.create(tmp_path, "prod")
    tls_ca.ca_paths(tmp_path)[1].unlink()
    with pytest.raises(tls_ca.TlsCaError, match="internal_ca.key"):
        tls_ca.create(tmp_path, "prod")


def test_ensure_without_ca_returns_none(tmp_path, prod):
    assert tls_ca.ensure(tmp_path, prod) is None
    assert not (tmp_path / tls_ca.LEAF_DIR).exists()


def test_ensure_proxy_leaf_is_a_client_certificate_of_the_ca(tmp_path, prod):
    tls_ca.create(tmp_path, "prod")
    tls = tls_ca.ensure(tmp_path, prod)
    leaf = _cert(tls.client("proxy").cert_pem)
    leaf.verify_directly_issued_by(_cert(tls.ca_pem))
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "proxy"
    assert _eku(leaf) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert timedelta(days=89) < leaf.not_valid_after_utc - datetime.now(UTC) <= timedelta(days=90)


def test_ensure_web_leaf_is_a_server_certificate_for_its_name_and_private_ip(tmp_path, prod):
    tls_ca.create(tmp_path, "prod")
    tls = tls_ca.ensure(tmp_path, prod)
    host = prod.host("web-villeparisis")
    leaf = _cert(tls.server("web-villeparisis").cert_pem)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["web-villeparisis"]
    assert san.get_values_for_type(x509.IPAddress) == [ip_address(host.private_ip)]
    assert _eku(leaf) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert {n for n, _ in tls.servers} == {"web-villeparisis", "web-participation"}


def test_ensure_leaf_keys_are_0600(tmp_path, prod):
    tls_ca.create(tmp_path, "prod")
    tls_ca.ensure(tmp_path, prod)
    keys = list((tmp_path / tls_ca.LEAF_DIR).glob("*.key"))
    # proxy + 2 web hosts, 6 log clients (every host) and the log server (issue 17)
    assert len(keys) == 10 and all(stat.S_IMODE(k.stat().st_mode) == 0o600 for k in keys)


def test_ensure_second_run_keeps_every_leaf(tmp_path, prod):
    tls_ca.create(tmp_path, "prod")
    first = tls_ca.ensure(tmp_path, prod)
    said: list[str] = []
    assert tls_ca.ensure(tmp_path, prod, emit=said.append) == first
    assert said == []


def test_ensure_leaf_with_under_30_days_left_is_reissued(tmp_path, prod):
    tls_ca.create(tmp_path, "prod")
    first = tls_ca.ensure(tmp_path, prod)
    later = datetime.now(UTC) + timedelta(days=61)
    said: list[str] = []
    again = tls_ca.ensure(tmp_path, prod, now=later, emit=said.append)
    assert again.client("proxy") != first.client("proxy")
    assert len(said) == 10 and all("expires" in s for s in said)


def test_ensure_log_client_leaves_are_client_certificates_of_every_host(tmp_path, prod):
    """Central logging (issue 17): each host's rsyslog authenticates to ops with a leaf of
    its own name, in files apart from the proxy -> web leaves."""
    tls_ca.create(tmp_path, "prod")
    tls = tls_ca.ensure(tmp_path, prod)
    assert {n for n, _ in tls.log_clients} == {h.name for h in prod.hosts}
    leaf = _cert(tls.log_client("web-villeparisis").cert_pem)
    leaf.verify_directly_issued_by(_cert(tls.ca_pem))
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["web-villeparisis"]
    assert _eku(leaf) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert tls.log_client("web-villeparisis") != tls.server("web-villeparisis")
    assert (tmp_path / tls_ca.LEAF_DIR / "web-villeparisis.log-client.pem").is_file()


def test_ensure_log_server_leaf_is_the_bastions_server_certificate(tmp_path, prod):
    tls_ca.create(tmp_path, "prod")
    tls = tls_ca.ensure(tmp_path, prod)
    ops = prod.bastion
    leaf = _cert(tls.log_server(ops.name).cert_pem)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [ops.name]
    assert san.get_values_for_type(x509.IPAddress) == [ip_address(ops.private_ip)]
    assert _eku(leaf) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert [n for n, _ in tls.log_servers] == [ops.name]


def test_ensure_log_leaves_leave_the_proxy_leaf_files_untouched(tmp_path, prod):
    """The logging leaves have files of their own: the proxy's nginx leaf stays the same."""
    tls_ca.create(tmp_path, "prod")
    d = tmp_path / tls_ca.LEAF_DIR
    proxy = tls_ca.ensure_leaf(tmp_path, tls_ca.load_ca(tmp_path), "proxy", (), (),
                               client=True)[0]
    tls = tls_ca.ensure(tmp_path, prod)
    assert tls.client("proxy") == proxy
    assert (d / "proxy.pem").read_bytes() == proxy.cert_pem
    assert tls.log_client("proxy") != proxy


def test_internal_tls_without_log_leaves_raises_naming_the_host(tmp_path, prod):
    tls = tls_ca.InternalTls(b"ca", (), ())
    with pytest.raises(tls_ca.TlsCaError, match="log client certificate for host 'ops'"):
        tls.log_client("ops")


def test_ensure_web_host_address_changed_reissues_its_leaf(tmp_path, prod):
    tls_ca.create(tmp_path, "prod")
    first = tls_ca.ensure(tmp_path, prod)
    ca = tls_ca.load_ca(tmp_path)
    leaf, why = tls_ca.ensure_leaf(tmp_path, ca, "web-villeparisis", ("web-villeparisis",),
                                   ("10.99.0.7",), client=False)
    assert why == "names changed" and leaf != first.server("web-villeparisis")


def test_ensure_leaf_signed_by_another_ca_is_reissued(tmp_path, prod):
    other = tmp_path / "other"
    tls_ca.create(other, "prod")
    tls_ca.ensure(other, prod)
    mine = tmp_path / "mine"
    tls_ca.create(mine, "prod")
    (mine / tls_ca.LEAF_DIR).mkdir()
    for f in (other / tls_ca.LEAF_DIR).iterdir():
        (mine / tls_ca.LEAF_DIR / f.name).write_bytes(f.read_bytes())
    said: list[str] = []
    tls = tls_ca.ensure(mine, prod, emit=said.append)
    _cert(tls.client("proxy").cert_pem).verify_directly_issued_by(_cert(tls.ca_pem))
    assert any("not signed by the internal CA" in s for s in said)


def test_internal_tls_unknown_host_raises_naming_it(tmp_path, prod):
    tls_ca.create(tmp_path, "prod")
    tls = tls_ca.ensure(tmp_path, prod)
    with pytest.raises(tls_ca.TlsCaError, match="'ops'"):
        tls.server("ops")


def test_leaf_repr_hides_the_key(tmp_path, prod):
    tls_ca.create(tmp_path, "prod")
    leaf = tls_ca.ensure(tmp_path, prod).client("proxy")
    assert b"PRIVATE" in leaf.key_pem and "PRIVATE" not in repr(leaf)
