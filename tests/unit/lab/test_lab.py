"""lab/lab.py refresh_credentials and lab/cli.py cmd_inventory: before the lab hands out its
inventory (`python -m lab inventory`, what `fab --env lab` reads first), the user certificate
it names (ssh.identity) is renewed when near expiry and the proxy's TLS certificate it names
(tls.source) is issued or re-issued, so a deploy only reads them (issue 12). Real CAs and
ssh-keygen in a temporary state directory; no root, no host."""
from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lab import cli
from lab.config import REPO_ROOT, LabConfig
from lab.inventory import dump, inventory_document
from lab.lab import Lab
from roles.proxy import certificate
from sshtrust.certificate import load_certificate

FP = "SHA256:" + "A" * 43


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    """A lab whose state directory holds CAs, a user key and an inventory, as `up` leaves it
    (no host: nothing here needs one)."""
    lab = Lab(LabConfig(prefix="unit", state_dir=tmp_path / "state",
                        stack_file=REPO_ROOT / "Pulumi.prod.yaml"))
    lab.trust.ensure_cas()
    plan = lab.plan()
    lab.trust.ensure_user_cert(["sysadmin"], timedelta(hours=8))
    doc = inventory_document(plan, {h.name: FP for h in plan.hosts}, ca_dir=lab.trust.dir,
                             identity=lab.trust.user_key, tls_dir=lab.tls_dir)
    lab.inventory_path.write_text(dump(doc))
    return lab


def valid_before(cert: Path) -> datetime:
    return datetime.fromtimestamp(load_certificate(cert).valid_before, UTC)


def test_refresh_credentials_user_certificate_near_expiry_renewed(lab: Lab) -> None:
    lab.trust.user_cert.unlink()
    lab.trust.ensure_user_cert(["sysadmin"], timedelta(minutes=10))  # < 30 min left
    lab.refresh_credentials()
    assert valid_before(lab.trust.user_cert) > datetime.now(UTC) + timedelta(hours=7)


def test_refresh_credentials_current_certificates_kept(lab: Lab) -> None:
    doc = json.loads(lab.inventory_path.read_text())
    source = Path(doc["tls"]["source"]["directory"])
    before = (lab.trust.user_cert.read_bytes(), (source / certificate.KEY_FILE).read_bytes())
    lab.refresh_credentials()
    assert (lab.trust.user_cert.read_bytes(), (source / certificate.KEY_FILE).read_bytes()) == \
        before


def test_refresh_credentials_missing_tls_certificate_issued_for_the_sites(lab: Lab) -> None:
    doc = json.loads(lab.inventory_path.read_text())
    source = Path(doc["tls"]["source"]["directory"])
    for f in source.iterdir():
        f.unlink()
    lab.refresh_credentials()
    names = tuple(n for s in doc["sites"] for n in (s["domain"], *s["aliases"]))
    certificate.check(certificate.from_directory(source), names)


def test_cmd_inventory_renews_then_prints_the_document(lab: Lab,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    lab.trust.user_cert.unlink()
    assert cli.cmd_inventory(lab, argparse.Namespace()) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(lab.inventory_path.read_text())
    assert Path(printed["ssh"]["identity"] + "-cert.pub").is_file()


def test_cmd_inventory_renewal_failure_exits_1_naming_it(
        lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    lab.trust.user_ca.unlink()  # the CA is gone: nothing can be signed
    lab.trust.user_cert.unlink()
    assert cli.cmd_inventory(lab, argparse.Namespace()) == 1
    out = capsys.readouterr()
    assert out.out == ""  # no inventory naming a certificate that is not there
    assert "cannot renew the user or TLS certificate" in out.err


def test_ensure_inotify_instances_low_limit_raised_high_one_kept(tmp_path) -> None:
    from lab.limits import ensure_inotify_instances

    knob = tmp_path / "max_user_instances"
    knob.write_text("128\n")
    assert "raised from 128 to 512" in ensure_inotify_instances(knob, 512)
    assert knob.read_text().strip() == "512"
    knob.write_text("8192\n")
    assert ensure_inotify_instances(knob, 512) == "" and knob.read_text().strip() == "8192"
