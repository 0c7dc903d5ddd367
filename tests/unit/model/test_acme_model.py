"""`hosting:acme` in the stack file (issue 14): optional, typed with its defaults, checked by the
schema with the field named, copied into the inventory for roles/acme."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from model import load_stack
from model.errors import ConfigErrors
from model.inventory import build_inventory

ROOT = Path(__file__).resolve().parents[3]


def stack_with(tmp_path: Path, acme: dict | None) -> Path:
    doc = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    doc["config"].pop("hosting:acme", None)
    if acme is not None:
        doc["config"]["hosting:acme"] = acme
    path = tmp_path / "Pulumi.prod.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_load_stack_without_acme_has_none(tmp_path: Path):
    assert load_stack(stack_with(tmp_path, None)).acme is None


def test_load_stack_acme_defaults_filled(tmp_path: Path):
    acme = load_stack(stack_with(tmp_path, {"enabled": True, "email": "a@villeparisis.fr",
                                            "directory": "staging"})).acme
    assert acme is not None and acme.enabled and acme.directory == "staging"
    assert (acme.key_type, acme.elliptic_curve, acme.ovh_endpoint, acme.propagation_seconds,
            acme.certificates) == ("ecdsa", "secp256r1", "ovh-eu", 120, ())


def test_load_stack_prod_and_preprod_files_one_set_each_preprod_on_staging():
    prod = load_stack(ROOT / "Pulumi.prod.yaml").acme
    preprod = load_stack(ROOT / "Pulumi.preprod.yaml").acme
    assert prod is not None and preprod is not None and prod.enabled and preprod.enabled
    assert (prod.directory, preprod.directory) == ("production", "staging")
    assert [c.names for c in prod.certificates] == [("villeparisis.fr", "*.villeparisis.fr")]
    assert [c.lineage for c in preprod.certificates] == ["preprod.villeparisis.fr"]
    assert (prod.key_type, prod.elliptic_curve) == ("ecdsa", "secp256r1")


@pytest.mark.parametrize(("acme", "field"), [
    ({"enabled": "yes"}, "acme.enabled"),
    ({"directory": "http://x"}, "acme.directory"),
    ({"elliptic_curve": "p521"}, "acme.elliptic_curve"),
    ({"names": ["villeparisis.fr"]}, "acme.names"),
    ({"certificates": [{"names": ["bad name"]}]}, "acme.certificates[0].names[0]"),
    ({"certificates": [{"names": []}]}, "acme.certificates[0].names"),
    ({"certificates": []}, "acme.certificates"),
    ({"certificates": [{"names": ["villeparisis.fr"], "nmae": "x"}]},
     "acme.certificates[0].nmae"),
    ({"certificates": [{"name": "*.villeparisis.fr", "names": ["villeparisis.fr"]}]},
     "acme.certificates[0].name"),
    ({"key_type": "dsa"}, "acme.key_type"),
    ({"key_type": "rsa", "rsa_key_size": 1024}, "acme.rsa_key_size"),
    ({"propagation_seconds": 99999}, "acme.propagation_seconds"),
    ({"stagging": True}, "acme.stagging"),
])
def test_load_stack_bad_acme_field_names_it(tmp_path: Path, acme: dict, field: str):
    with pytest.raises(ConfigErrors) as err:
        load_stack(stack_with(tmp_path, acme))
    assert any(e.path == field for e in err.value.errors), err.value.errors


def test_build_inventory_acme_section_read_by_role(tmp_path: Path):
    from engine.inventory import Inventory
    from model.inventory import HostAddresses, validate_inventory
    from model.topology import plan_hosts, private_addresses
    from roles.acme.config import acme as role_acme

    stack = load_stack(stack_with(tmp_path, {"enabled": True, "email": "a@villeparisis.fr"}))
    addrs = private_addresses(stack)
    site_ips = tuple(str(s.public_ip) for s in stack.sites)
    hosts = [HostAddresses(p.name, str(addrs[p.name]), "198.51.100.20"
                           if p.name in ("proxy", "ops") else None,
                           site_ips if p.role == "proxy" else ()) for p in plan_hosts(stack)]
    doc = build_inventory(stack, source="pulumi", hosts=hosts,
                          site_public_ips={s.name: str(s.public_ip) for s in stack.sites},
                          host_key_fingerprints={p.name: "SHA256:" + "A" * 43
                                                 for p in plan_hosts(stack)})
    validate_inventory(doc)
    assert "certificates" not in doc["acme"]
    acme = role_acme(Inventory.from_doc(doc))
    assert acme is not None
    assert [(x.lineage, x.names) for x in acme.certificates] == \
        [("villeparisis.fr", ("*.villeparisis.fr", "villeparisis.fr"))]


@pytest.mark.parametrize(("acme", "field", "says"), [
    ({"enabled": True}, "acme.email", "required when enabled"),
    ({"email": "a@villeparisis.fr", "certificates": [{"names": ["*.example.org"]}]},
     "acme.certificates[0].names[0]", "outside the DNS zone"),
    ({"email": "a@villeparisis.fr",
      "certificates": [{"names": ["villeparisis.fr", "villeparisis.fr"]}]},
     "acme.certificates[0].names[1]", "duplicate name"),
    ({"email": "a@villeparisis.fr", "certificates": [{"names": ["villeparisis.fr"]},
                                                     {"names": ["villeparisis.fr",
                                                                "*.villeparisis.fr"]}]},
     "acme.certificates[1].name", "duplicate lineage"),
    ({"email": "a@villeparisis.fr", "rsa_key_size": 4096}, "acme.rsa_key_size",
     "only with key_type: rsa"),
])
def test_load_stack_acme_rule_broken_names_field(tmp_path: Path, acme: dict, field: str,
                                                 says: str):
    with pytest.raises(ConfigErrors) as err:
        load_stack(stack_with(tmp_path, acme))
    assert any(e.path == field and says in e.message for e in err.value.errors), \
        err.value.errors


def test_build_inventory_two_sets_lineages_named_in_order(tmp_path: Path):
    from model.inventory import acme_doc

    stack = load_stack(stack_with(tmp_path, {
        "enabled": True, "email": "a@villeparisis.fr", "key_type": "rsa",
        "rsa_key_size": 3072,
        "certificates": [{"names": ["participation.villeparisis.fr"]},
                         {"name": "main", "names": ["villeparisis.fr", "*.villeparisis.fr"]}]}))
    assert stack.acme is not None
    doc = acme_doc(stack.acme)
    assert doc["certificates"] == [
        {"name": "participation.villeparisis.fr", "names": ["participation.villeparisis.fr"]},
        {"name": "main", "names": ["villeparisis.fr", "*.villeparisis.fr"]}]
    assert (doc["key_type"], doc["rsa_key_size"]) == ("rsa", 3072) and "lab" not in doc
