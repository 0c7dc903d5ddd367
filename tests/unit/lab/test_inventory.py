"""lab/inventory.py: the lab's inventory names where the deploy finds the lab's access and
certificates (ssh.ca_dir, ssh.identity, tls.source), validated against the same schema, so the
engine and the roles need no lab import (issue 12)."""
from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from engine.inventory import Inventory
from lab.config import REPO_ROOT, LabConfig
from lab.inventory import inventory_document
from lab.plan import LabPlan, make_plan
from roles.proxy import certificate

FP = "SHA256:" + "A" * 43


def ca_public() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH,
                            serialization.PublicFormat.OpenSSH).decode()


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> LabPlan:
    cfg = LabConfig(prefix="unit", state_dir=tmp_path_factory.mktemp("state"),
                    stack_file=REPO_ROOT / "Pulumi.prod.yaml")
    return make_plan(cfg, ca_public(), ca_public())


def test_inventory_document_admin_paths_set_and_typed(plan: LabPlan, tmp_path: Path) -> None:
    doc = inventory_document(plan, {h.name: FP for h in plan.hosts}, ca_dir=tmp_path / "ca",
                             identity=tmp_path / "user/id_ed25519", tls_dir=tmp_path / "tls")
    inv = Inventory.from_doc(doc)  # validated against the schema
    assert inv.ssh_ca_dir == tmp_path / "ca"
    assert inv.ssh_identity == tmp_path / "user/id_ed25519"
    assert inv.tls_client_ca == tmp_path / "tls/ca.pem"
    assert inv.tls_source_dir == tmp_path / "tls" / inv.environment
    names = [n for s in doc["sites"] for n in (s["domain"], *s["aliases"])]
    certificate.check(certificate.from_directory(inv.tls_source_dir), tuple(names))


def test_inventory_document_without_paths_names_none(plan: LabPlan) -> None:
    inv = Inventory.from_doc(inventory_document(plan, {h.name: FP for h in plan.hosts}))
    assert (inv.ssh_ca_dir, inv.ssh_identity, inv.tls_source_dir, inv.tls_client_ca) == (
        None, None, None, None)
