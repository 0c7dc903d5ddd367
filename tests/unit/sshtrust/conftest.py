"""Fixtures for sshtrust: real ssh-keygen CAs and real sshd daemons on 127.0.0.1.

Each sshd gets its own temp directory and config (HostKey + HostCertificate, TrustedUserCAKeys,
AuthorizedPrincipalsFile, AuthorizedKeysFile none, RevokedKeys) and is killed by its fixture.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
for _path in (str(REPO), str(HERE)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import pytest  # noqa: E402
from sshtrust_helpers import Pki, SshdFactory  # noqa: E402


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Host CA, user CA, a rogue CA, an admin key with a good user cert, empty KRLs."""
    return Pki.create(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory, pki: Pki):
    """Start sshd daemons on demand: ``sshd(host_cert="good")``; all killed at module end."""
    factory = SshdFactory(tmp_path_factory.mktemp("sshd"), pki)
    try:
        yield factory
    finally:
        factory.stop_all()
