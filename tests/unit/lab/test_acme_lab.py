"""lab/acme.py: the lab's ACME switch and stand-ins' settings (issue 14): off by default, its
inventory section passes the role's own checks, pebble validates every order again through the
DNS the fake OVH API publishes to, the state file carries the rules `fab acme.credentials`
prints."""
from __future__ import annotations

from pathlib import Path

from engine.inventory import Inventory
from lab import acme, tls
from roles.acme import config as c


def test_enabled_default_off_only_explicit_one():
    assert not acme.enabled({})
    assert not acme.enabled({"LAB_ACME": "0"})
    assert acme.enabled({"LAB_ACME": "1"})


def test_acme_section_passes_role_checks(prod: Inventory):
    doc = acme.with_acme(prod.doc)
    typed = c.acme(Inventory.from_doc(doc))
    assert typed is not None and typed.lab and typed.directory == acme.DIRECTORY
    assert [x.names for x in typed.certificates] == [("villeparisis.fr", "*.villeparisis.fr")]


def test_acme_section_keeps_stack_sets_and_keys_replaces_directory(prod: Inventory):
    stack = prod.doc["acme"]
    section = acme.acme_section(prod.doc)
    assert section["certificates"] == stack["certificates"]
    assert (section["key_type"], section["elliptic_curve"]) == \
        (stack["key_type"], stack["elliptic_curve"])
    assert section["directory"] == acme.DIRECTORY != stack["directory"]
    assert section["lab"] is True and section["propagation_seconds"] == 1


def test_with_acme_certificates_given_one_lineage_each(prod: Inventory):
    doc = acme.with_acme(prod.doc, [["participation.villeparisis.fr"],
                                    ["villeparisis.fr", "*.villeparisis.fr"]])
    typed = c.acme(Inventory.from_doc(doc))
    assert typed is not None
    assert [x.lineage for x in typed.certificates] == ["participation.villeparisis.fr",
                                                       "villeparisis.fr"]


def test_units_pebble_no_authz_reuse_dns_from_challtestsrv():
    units = acme.units()
    pebble = units["hosting-lab-pebble.service"]
    assert "PEBBLE_AUTHZREUSE=0" in pebble and f"-dnsserver {acme.CHALLTESTSRV_DNS}" in pebble
    fake = units["hosting-lab-fake-ovh.service"]
    assert f"--publish-url http://{acme.CHALLTESTSRV_MANAGEMENT}" in fake
    assert f"--fail-file {acme.FAIL_FILE}" in fake


def test_fake_state_grants_exactly_requested_rules():
    creds = acme.new_credentials()
    state = acme.fake_state("villeparisis.fr", creds)
    consumer = state["consumers"][creds["consumer_key"]]
    assert consumer["rules"] == c.access_rules("villeparisis.fr")
    assert state["applications"] == {creds["application_key"]: creds["application_secret"]}


def test_apply_with_bundle_points_client_ca_at_it(prod: Inventory, tmp_path: Path):
    doc = acme.with_acme(prod.doc)
    doc["tls"]["source"] = {"directory": str(tmp_path), "client_ca": "/x/ca.pem"}
    acme.apply(doc, tmp_path)
    assert doc["tls"]["source"]["client_ca"] == "/x/ca.pem"  # no bundle yet: unchanged
    root = tls.ensure_ca(tmp_path / "other")[0].read_text()
    bundle = acme.write_client_bundle(tmp_path, root)
    acme.apply(doc, tmp_path)
    assert doc["tls"]["source"]["client_ca"] == str(bundle)
    assert bundle.read_text().count("BEGIN CERTIFICATE") == 2


def test_lab_inventory_switch_on_stack_sets_on_pebble_off_no_section(monkeypatch, tmp_path):
    """LAB_ACME=1: the lab's inventory keeps Pulumi.prod.yaml's acme sets, on pebble's
    directory; off: no acme section at all (never the stack's real directory from the lab)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from lab.config import REPO_ROOT, LabConfig
    from lab.inventory import inventory_document
    from lab.plan import make_plan
    from model import load_stack

    def ca_public() -> str:
        return ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    cfg = LabConfig(prefix="unit", state_dir=tmp_path, stack_file=REPO_ROOT / "Pulumi.prod.yaml")
    plan = make_plan(cfg, ca_public(), ca_public())
    fps = {h.name: "SHA256:" + "A" * 43 for h in plan.hosts}
    monkeypatch.setenv("LAB_ACME", "1")
    typed = c.acme(Inventory.from_doc(inventory_document(plan, fps)))
    stack = load_stack(REPO_ROOT / "Pulumi.prod.yaml").acme
    assert typed is not None and stack is not None
    assert typed.directory == acme.DIRECTORY and typed.lab
    assert [x.names for x in typed.certificates] == [x.names for x in stack.certificates]
    monkeypatch.setenv("LAB_ACME", "0")
    assert "acme" not in inventory_document(plan, fps)
