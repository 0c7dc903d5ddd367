"""lab/tls.py: the lab's TLS CA issues the proxy's certificate into the directory the inventory
names (tls.source), in the layout the proxy role reads (roles.proxy.certificate.from_directory),
renewed when near expiry or when the sites' names change, kept otherwise (issue 12)."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from lab import tls
from roles.proxy import certificate

ROOT = Path(__file__).resolve().parents[3]
NAMES = ("*.villeparisis.fr", "villeparisis.fr")


def leaf(directory: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate((directory / certificate.CHAIN_FILE).read_bytes())


def test_issue_fresh_directory_gives_what_the_proxy_role_reads(tmp_path: Path) -> None:
    out = tls.issue(tmp_path, "prod", NAMES)
    material = certificate.from_directory(out)
    got = certificate.check(material, ("www.villeparisis.fr", "villeparisis.fr"))
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.pem").read_bytes())
    got.verify_directly_issued_by(ca)  # raises if the lab CA did not sign it
    assert out == tmp_path / "prod"
    assert (out / certificate.KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "ca.key").stat().st_mode & 0o777 == 0o600


def pair(directory: Path) -> tuple[bytes, bytes]:
    return ((directory / certificate.CHAIN_FILE).read_bytes(),
            (directory / certificate.KEY_FILE).read_bytes())


def test_issue_current_certificate_kept(tmp_path: Path) -> None:
    out = tls.issue(tmp_path, "prod", NAMES)
    before = pair(out)
    tls.issue(tmp_path, "prod", tuple(reversed(NAMES)))
    assert pair(out) == before


def test_issue_other_names_reissued(tmp_path: Path) -> None:
    out = tls.issue(tmp_path, "prod", NAMES)
    tls.issue(tmp_path, "prod", ("*.example.org", "example.org"))
    assert sorted(certificate.dns_names(leaf(out))) == ["*.example.org", "example.org"]
    certificate.check(certificate.from_directory(out), ("a.example.org",))


def test_issue_near_expiry_reissued(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tls.issue(tmp_path, "prod", NAMES)
    first = leaf(out).serial_number
    # 90-day certificate, renewed when fewer than RENEW_BEFORE days are left: make it "now".
    monkeypatch.setattr(tls, "RENEW_BEFORE", timedelta(days=tls.LEAF_DAYS + 1))
    tls.issue(tmp_path, "prod", NAMES)
    assert leaf(out).serial_number != first
    assert leaf(out).not_valid_after_utc > datetime.now(UTC) + timedelta(days=tls.LEAF_DAYS - 1)


@pytest.mark.parametrize("env", ["prod", "preprod"])
def test_ensure_for_inventory_covers_every_site_name(tmp_path: Path, env: str,
                                                      request: pytest.FixtureRequest) -> None:
    doc: dict[str, Any] = json.loads(json.dumps(request.getfixturevalue(env).doc))
    source = tls.ensure_for_inventory(tmp_path, doc)
    names = tls.site_names(doc)
    assert len(names) >= 2
    certificate.check(certificate.from_directory(Path(source["directory"])), names)
    assert source == {"directory": str(tmp_path / doc["environment"]),
                      "client_ca": str(tmp_path / "ca.pem")}
