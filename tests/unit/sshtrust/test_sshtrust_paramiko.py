"""sshtrust._paramiko: what its overrides of paramiko's private API rely on, checked against the
installed paramiko. A paramiko upgrade that renames, re-signs or stops calling any of them must
fail HERE, loudly, not silently disable the host-certificate check (R-GDPR-5, R-BKP-7)."""

from __future__ import annotations

import inspect
import socket

import paramiko
import pytest
from paramiko.transport import Transport

from sshtrust import _paramiko
from sshtrust.openssh import CERT_HOST_KEY_ALGORITHMS

KEY_CLASSES = {
    "ssh-ed25519-cert-v01@openssh.com": paramiko.Ed25519Key,
    "ecdsa-sha2-nistp256-cert-v01@openssh.com": paramiko.ECDSAKey,
    "ecdsa-sha2-nistp384-cert-v01@openssh.com": paramiko.ECDSAKey,
    "ecdsa-sha2-nistp521-cert-v01@openssh.com": paramiko.ECDSAKey,
    "rsa-sha2-512-cert-v01@openssh.com": paramiko.RSAKey,
    "rsa-sha2-256-cert-v01@openssh.com": paramiko.RSAKey,
}


@pytest.mark.parametrize(("name", "params"), list(_paramiko.OVERRIDDEN.items()))
def test_transport_overridden_members_exist_with_same_signature(name, params) -> None:
    member = inspect.getattr_static(Transport, name)
    if params is None:
        assert isinstance(member, property), f"Transport.{name} is no longer a property"
    else:
        assert callable(member), f"Transport.{name} is gone"
        got = tuple(inspect.signature(member).parameters)[1:]
        assert got == params, f"Transport.{name}{got} changed (we override it as {params})"


def test_transport_read_attributes_set_by_constructor() -> None:
    left, right = socket.socketpair()
    try:
        t = Transport(left)
        missing = [a for a in _paramiko.READ_ATTRIBUTES if not hasattr(t, a)]
        assert not missing, f"paramiko Transport no longer sets {missing}"
        assert isinstance(t.disabled_algorithms, dict)
    finally:
        left.close()
        right.close()


def test_transport_key_info_maps_every_certificate_algorithm() -> None:
    """We no longer extend _key_info: paramiko must map each certificate algorithm itself."""
    assert set(KEY_CLASSES) == set(CERT_HOST_KEY_ALGORITHMS)
    for algorithm, cls in KEY_CLASSES.items():
        assert Transport._key_info.get(algorithm) is cls, f"_key_info[{algorithm!r}] changed"


def test_every_client_kex_calls_verify_key() -> None:
    """Our certificate check runs inside _verify_key: every non-GSS kex must still call it."""
    for name, kex in Transport._kex_info.items():
        if name.startswith("gss-"):
            continue
        sources = "".join(inspect.getsource(inspect.getmodule(c)) for c in kex.__mro__[:-1])
        assert "transport._verify_key(" in sources, f"kex {name} no longer calls _verify_key"


def test_ssh_client_connect_accepts_transport_factory() -> None:
    assert "transport_factory" in inspect.signature(paramiko.SSHClient.connect).parameters


def test_transport_factory_marks_certificate_checking_factories() -> None:
    assert _paramiko.checks_host_certificates(_paramiko.transport_factory(object(), "web-a"))
    assert not _paramiko.checks_host_certificates(Transport)
    assert not _paramiko.checks_host_certificates(None)
